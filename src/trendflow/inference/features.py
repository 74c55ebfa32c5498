"""The feature row of one video, built by the dataset build itself.

A new video is a one-video snapshot source: its snapshot1 facts become one canonical snapshot
row, and `trendflow.dataset.build.build_training_table` turns it and the video's run into one
table row - the same functions, columns and aggregation as the training table, so inference
cannot drift from training. Only discovery is narrowed: the result store is viewed through
the one run directory, so a big store is not scanned. Channel enrichment is off (no API call
at prediction time) and targets are absent (there is no later snapshot).
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.dataset.build import build_training_table
from trendflow.dataset.schema import SNAPSHOT1_TEXT_PREFIX, TAG_SEPARATOR
from trendflow.dataset.snapshots import normalize_snapshots
from trendflow.dataset.text_features import TEXT_STAT_NAMES
from trendflow.inference.schema import Snapshot1Facts, VideoRef
from trendflow.storage.layout import RunLayout
from trendflow.storage.store import ResultStore

log = logging.getLogger(__name__)


class _OneRunView(ResultStore):
    """The store as the dataset build sees it: listing returns only one run directory."""

    def __init__(self, store: ResultStore, run_dir: str) -> None:
        self.__dict__.update(store.__dict__)
        self._only = run_dir.strip("/")

    def find(self, rel: str = "", suffix: str = "") -> list[str]:
        return super().find(self._only, suffix)


@dataclass
class FeatureRow:
    row: pd.DataFrame  # one row, training-table columns
    video: VideoRef
    warnings: list[str]


def snapshot_row(platform_id: str, video_id: str, facts: Snapshot1Facts) -> pd.DataFrame:
    """The facts as one canonical snapshot row (validated like every snapshot source)."""
    raw = {
        "platform_id": platform_id,
        "video_id": video_id,
        "snapshot_at": facts.snapshot_at,
        "views": facts.views,
        "likes": facts.likes,
        "comments": facts.comments,
        "published_at": facts.published_at,
        "channel_id": facts.channel_id,
        "title": facts.title,
        "description": facts.description,
        "tags": TAG_SEPARATOR.join(facts.tags) if facts.tags is not None else None,
        "category": facts.category,
        "language": facts.language,
        "duration_sec": facts.duration_sec,
        "channel_subscriber_count": facts.channel_subscriber_count,
    }
    # Unknown optional facts are left out rather than passed as None: an all-missing column is
    # then typed by the build itself (e.g. a tz-aware NaT published_at).
    required = {"platform_id", "video_id", "snapshot_at", "views", "likes", "comments"}
    raw = {k: v for k, v in raw.items() if v is not None or k in required}
    snapshots, report = normalize_snapshots(pd.DataFrame([raw]), "inference request")
    if snapshots.empty:
        raise TrendFlowError(
            ErrorCode.INVALID_REQUEST,
            f"invalid video identity or snapshot time for {platform_id}/{video_id}: {report}",
        )
    return snapshots


def latest_run_dir(store: ResultStore, platform_id: str, video_id: str) -> str | None:
    """The newest successful run of a video (by created_at), or None."""
    from trendflow.dataprocessor.run_index import list_manifests

    runs = [m for m in list_manifests(store, platform_id, video_id) if m.status == "success"]
    if not runs:
        return None
    best = max(runs, key=lambda m: (m.run.created_at, m.run.run_id))
    return RunLayout.of(best.run).run_dir


def _inference_params(dataset_params: dict[str, Any]) -> dict[str, Any]:
    params = copy.deepcopy(dataset_params or {})
    params["enrichment"] = {**(params.get("enrichment") or {}), "enabled": False}
    params["missing_required_horizon"] = "keep"
    params["horizons"] = []  # a forecast has no later snapshot: no target columns
    run_features = dict(params.get("run_features") or {})
    run_features.update({"n_jobs": 1, "drop_rows_without_run": False, "config_hash": "auto"})
    params["run_features"] = run_features
    return params


def build_feature_row(
    store: ResultStore,
    platform_id: str,
    video_id: str,
    facts: Snapshot1Facts,
    dataset_params: dict[str, Any],
    run_dir: str | None = None,
    require_run: bool = True,
    feature_transforms: dict[str, Any] | None = None,
) -> FeatureRow:
    """The video's table row. `feature_transforms` (the model bundle's) projects its wide vectors
    with the training PCA; without them a one-row build cannot fit one and the PCA columns are NaN."""
    warnings: list[str] = []
    if run_dir is None:
        run_dir = latest_run_dir(store, platform_id, video_id)
    if run_dir is None and require_run:
        raise TrendFlowError(
            ErrorCode.DEPENDENCY_MISSING,
            f"no successful run of {platform_id}/{video_id} in {store.root_uri}: process the video first "
            "(`trendflow predict SOURCE` or `trendflow process SOURCE`)",
        )
    snapshots = snapshot_row(platform_id, video_id, facts)
    view = _OneRunView(store, run_dir or f"{platform_id}/{video_id}/-")
    table, meta = build_training_table(
        snapshots, view, _inference_params(dataset_params), feature_transforms=feature_transforms
    )
    warnings.extend(meta.get("pca", {}).get("warnings", []))
    row = table.iloc[[0]].reset_index(drop=True)
    if require_run and not bool(row.at[0, "run__present"]):
        raise TrendFlowError(
            ErrorCode.DEPENDENCY_MISSING,
            f"run {run_dir} cannot be used ({row.at[0, 'run__missing_reason']}): re-process the video",
        )
    if facts.title is None and facts.tags is None:
        # The run's text_stats component computed the same statistics from the same text.
        filled = _fill_text_stats_from_run(row)
        if filled:
            warnings.append(
                f"no title/tags given: {filled} snapshot1 text statistics taken from the run's text_stats"
            )
    run_id = row.at[0, "run_id"]
    video = VideoRef(
        platform_id=platform_id,
        video_id=video_id,
        run_id=None if pd.isna(run_id) else str(run_id),
        run_dir=run_dir,
        config_hash=None if pd.isna(row.at[0, "run_config_hash"]) else str(row.at[0, "run_config_hash"]),
    )
    return FeatureRow(row=row, video=video, warnings=warnings)


def _fill_text_stats_from_run(row: pd.DataFrame) -> int:
    filled = 0
    for name in TEXT_STAT_NAMES:
        dst, src = f"{SNAPSHOT1_TEXT_PREFIX}{name}", f"text_stats__{name}"
        if dst in row and src in row:
            value = row.at[0, src]
            if pd.isna(row.at[0, dst]) and not pd.isna(value):
                row.at[0, dst] = float(value)
                filled += 1
    return filled


def check_required(row: pd.DataFrame, required: list[str]) -> None:
    """Fail with what to pass when a required feature is missing."""
    hints = {
        "video_age_hours_at_snapshot1": "--published-at (and --snapshot-at)",
        "snapshot1__views_log1p": "--views",
        "snapshot1__likes_log1p": "--likes",
        "snapshot1__comments_log1p": "--comments",
    }
    missing = [f for f in required if f not in row or _missing(row.at[0, f])]
    if missing:
        what = ", ".join(f"{f} (pass {hints.get(f, 'it in the snapshot facts')})" for f in missing)
        raise TrendFlowError(ErrorCode.INVALID_REQUEST, f"required feature(s) missing: {what}")


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float | np.floating) and math.isnan(value)
