"""Feature row + forecast models -> `PredictionsDocument` (predictions.json of one video)."""

from __future__ import annotations

import json
import math
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trendflow.inference.features import FeatureRow
from trendflow.inference.models import ForecastModel
from trendflow.inference.schema import (
    Contribution,
    Contributions,
    FeatureReport,
    Interval,
    PredictionsDocument,
    Snapshot1Facts,
    TargetPrediction,
)


def _delta(log1p_delta: float) -> float:
    return float(max(math.expm1(log1p_delta), 0.0))


def _json_value(value: Any) -> float | str | None:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, bool | np.bool_):
        return float(value)
    if isinstance(value, int | float | np.integer | np.floating):
        f = float(value)
        return f if math.isfinite(f) else None
    return str(value)


def predict_one(
    model: ForecastModel, features: FeatureRow, facts: Snapshot1Facts, top_k: int
) -> TargetPrediction:
    row = features.row
    pred = float(model.model.predict(row)[0])
    contrib, base = model.model.contributions(row)
    order = np.argsort(-np.abs(contrib[0]), kind="stable")[:top_k]
    spec = model.model.spec
    top = [
        Contribution(
            feature=spec.features[i],
            value=_json_value(row.at[0, spec.features[i]]),
            contribution=float(contrib[0][i]),
        )
        for i in order
    ]
    low = pred + model.interval.residual_low
    high = pred + model.interval.residual_high
    start = getattr(facts, model.target, None)

    def count(delta: float) -> float | None:
        return None if start is None else float(start) + delta

    return TargetPrediction(
        target=model.target,
        horizon=model.horizon,
        horizon_hours=model.horizon_hours,
        predicted_log1p_delta=pred,
        predicted_delta=_delta(pred),
        predicted_count=count(_delta(pred)),
        interval=Interval(
            level=model.interval.level,
            method=model.interval.method,
            log1p_delta_low=low,
            log1p_delta_high=high,
            delta_low=_delta(low),
            delta_high=_delta(high),
            count_low=count(_delta(low)),
            count_high=count(_delta(high)),
        ),
        model=model.ref,
        contributions=Contributions(base_value=float(base[0]), top=top),
    )


def predict_video(
    features: FeatureRow, models: list[ForecastModel], facts: Snapshot1Facts, top_k: int = 8
) -> PredictionsDocument:
    preds = [
        predict_one(m, features, facts, top_k)
        for m in sorted(models, key=lambda m: (m.target, m.horizon_hours or 0))
    ]
    used = sorted({f for m in models for f in m.model.spec.features})
    numeric = sorted({f for m in models for f in m.model.spec.numeric})  # a missing category is a value
    missing = [f for f in numeric if f not in features.row or pd.isna(features.row.at[0, f])]
    return PredictionsDocument(
        created_at=datetime.now(UTC),
        video=features.video,
        snapshot1=facts.public(),
        predictions=preds,
        features=FeatureReport(count=len(used), missing_values=missing),
        warnings=features.warnings,
    )


def write_predictions(doc: PredictionsDocument, path: str | Path) -> Path:
    """Atomic write (temp file + rename) of predictions.json."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".predictions-", dir=path.parent)
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps(doc.model_dump(mode="json"), indent=2) + "\n")
    os.replace(tmp, path)
    return path


def predictions_path(root: str | Path, platform_id: str, video_id: str) -> Path:
    return Path(root) / platform_id / video_id / "predictions.json"
