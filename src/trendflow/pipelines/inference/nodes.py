"""Nodes of the `inference` pipeline: requests -> feature rows -> predictions.json per video.

The feature rows come from `trendflow.inference.features.build_feature_row`, i.e. from the
dataset build's own functions (no second feature implementation).
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.dataset.schema import KEY
from trendflow.inference.features import build_feature_row, check_required
from trendflow.inference.models import ForecastModel, feature_transforms_of
from trendflow.inference.predict import predict_video
from trendflow.inference.schema import Snapshot1Facts
from trendflow.inference.service import DEFAULT_REQUIRED
from trendflow.storage.store import ResultStore

log = logging.getLogger(__name__)
_FACT_COLUMNS = [
    "views",
    "likes",
    "comments",
    "published_at",
    "channel_id",
    "title",
    "description",
    "tags",
    "category",
    "language",
    "duration_sec",
    "channel_subscriber_count",
]


def _facts_from_snapshot(row: dict[str, Any]) -> dict[str, Any]:
    facts: dict[str, Any] = {"snapshot_at": row["snapshot_at"]}
    for col in _FACT_COLUMNS:
        value = row.get(col)
        if (
            value is None
            or value is pd.NA
            or (isinstance(value, float) and value != value)
            or value is pd.NaT
        ):
            continue
        facts[col] = value.split("|") if col == "tags" else value
    return facts


def select_requests(
    params: dict[str, Any], training_table: pd.DataFrame, snapshots: pd.DataFrame
) -> list[dict[str, Any]]:
    """The videos to predict: `inference.videos`, else a sample of the table's rows.

    A listed video may carry its snapshot1 facts; facts it lacks come from its first snapshot
    in the dataset's snapshots, when it has one.
    """
    first = snapshots.sort_values([*KEY, "snapshot_at"], kind="mergesort").drop_duplicates(KEY, keep="first")
    by_key = {(str(r["platform_id"]), str(r["video_id"])): r for r in first.to_dict("records")}
    videos = list(params.get("videos") or [])
    if not videos:
        sample = params.get("from_table") or {}
        rows = training_table
        column, value = sample.get("split_column", "split_time"), sample.get("split", "test")
        if column and value:
            rows = rows[rows[column] == value]
        rows = rows[rows["run__present"].astype(bool)].head(int(sample.get("limit", 3)))
        videos = [
            {"platform_id": r["platform_id"], "video_id": r["video_id"], "run_id": r["run_id"]}
            for r in rows.to_dict("records")
        ]
    if not videos:
        raise TrendFlowError(
            ErrorCode.INVALID_REQUEST,
            "nothing to predict: list videos under inference.videos, or build a table whose "
            "sample split has runs",
        )
    requests = []
    for video in videos:
        key = (str(video["platform_id"]), str(video["video_id"]))
        facts = _facts_from_snapshot(by_key[key]) if key in by_key else {}
        facts.update({k: v for k, v in video.items() if k in Snapshot1Facts.model_fields and v is not None})
        run_id = video.get("run_id")
        requests.append(
            {
                "platform_id": key[0],
                "video_id": key[1],
                "run_dir": f"{key[0]}/{key[1]}/{run_id}" if run_id else None,
                "facts": Snapshot1Facts.model_validate(facts).model_dump(mode="json"),
            }
        )
    log.info("inference requests: %s", [f"{r['platform_id']}/{r['video_id']}" for r in requests])
    return requests


def predict_requests(
    requests: list[dict[str, Any]],
    models: list[ForecastModel],
    params: dict[str, Any],
    dataset_params: dict[str, Any],
    store: ResultStore,
) -> dict[str, dict[str, Any]]:
    """{"<platform_id>/<video_id>/predictions": predictions.json content} (a partitioned dataset)."""
    out: dict[str, dict[str, Any]] = {}
    for request in requests:
        facts = Snapshot1Facts.model_validate(request["facts"])
        features = build_feature_row(
            store,
            request["platform_id"],
            request["video_id"],
            facts,
            dataset_params,
            run_dir=request.get("run_dir"),
            require_run=bool(params.get("require_run", True)),
            feature_transforms=feature_transforms_of(models),
        )
        check_required(features.row, list(params.get("required_features", DEFAULT_REQUIRED)))
        doc = predict_video(features, models, facts, int(params.get("top_contributions", 8)))
        out[f"{request['platform_id']}/{request['video_id']}/predictions"] = doc.model_dump(mode="json")
    return out
