"""Feature row + forecast models -> `PredictionsDocument` (predictions.json of one video)."""

from __future__ import annotations

import json
import math
import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trendflow.contracts.errors import ErrorCode, TrendFlowError
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

# predictions.json is strict JSON with sensible precision: log-scale values and contributions to
# 4 decimals, counts and deltas to whole numbers. A log1p delta past this cap (e^50, far beyond
# any platform's counts) is clipped so the derived counts stay finite.
LOG_DECIMALS = 4
MAX_LOG1P = 50.0


def _log(value: float) -> float:
    return round(float(min(max(value, -MAX_LOG1P), MAX_LOG1P)), LOG_DECIMALS)


def _delta(log1p_delta: float) -> float:
    return float(round(max(math.expm1(min(log1p_delta, MAX_LOG1P)), 0.0)))


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
            contribution=_log(contrib[0][i]),
        )
        for i in order
    ]
    pred = _log(pred)
    low = _log(pred + model.interval.residual_low)
    high = _log(pred + model.interval.residual_high)
    start = getattr(facts, model.target, None)

    def count(delta: float) -> float | None:
        return None if start is None else float(round(float(start) + delta))

    hours = model.horizon_hours
    return TargetPrediction(
        target=model.target,
        horizon=model.horizon,
        horizon_hours=hours,
        target_date=facts.snapshot_at + timedelta(hours=hours) if hours is not None else None,
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
        contributions=Contributions(base_value=_log(base[0]), top=top),
    )


def unseen_category_warnings(row: pd.DataFrame, models: list[ForecastModel]) -> list[str]:
    """A warning per categorical feature whose value was never seen in training (the models
    treat it as unknown)."""
    out: list[str] = []
    seen: set[tuple[str, str]] = set()
    for m in models:
        spec = m.model.spec
        for col in spec.categorical:
            if col not in row.columns or pd.isna(row.at[0, col]):
                continue
            value = str(row.at[0, col])
            if value not in set(spec.categories.get(col, [])) and (col, value) not in seen:
                seen.add((col, value))
                out.append(
                    f"{col} {value!r} was not seen in training ({len(spec.categories.get(col, []))} known "
                    "values): the models treat it as an unknown category"
                )
    return out


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
        warnings=[
            *features.warnings,
            *unseen_category_warnings(features.row, models),
            *synthetic_training_warnings(models),
        ],
    )


def synthetic_training_warnings(models: list[ForecastModel]) -> list[str]:
    """A warning when the models learnt from SYNTHETIC rows: such forecasts show the mechanics only."""
    synthetic = max((m.synthetic_rows or 0 for m in models), default=0)
    if synthetic <= 0:
        return []
    rows = max((m.table_rows or 0 for m in models), default=0)
    share = f" of {rows}" if rows else ""
    return [
        f"trained_on_synthetic_data: the models were trained on a table with {synthetic}{share} SYNTHETIC "
        "rows (generated snapshots and runs, trendflow.dataset.synthetic); these forecasts demonstrate "
        "the pipeline and say nothing about real audiences"
    ]


def write_predictions(doc: PredictionsDocument, path: str | Path) -> Path:
    """Atomic write (temp file + rename) of predictions.json."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".predictions-", dir=path.parent)
    with os.fdopen(fd, "w") as handle:
        handle.write(predictions_json(doc, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def predictions_json(doc: PredictionsDocument, indent: int | None = None) -> str:
    """Strict JSON (RFC 8259): a non-finite number is a bug, never written as Infinity/NaN."""
    try:
        return json.dumps(doc.model_dump(mode="json"), indent=indent, allow_nan=False)
    except ValueError as exc:
        raise TrendFlowError(ErrorCode.INTERNAL, f"predictions for {doc.video.video_id}: {exc}") from exc


def predictions_path(root: str | Path, platform_id: str, video_id: str) -> Path:
    return Path(root) / platform_id / video_id / "predictions.json"
