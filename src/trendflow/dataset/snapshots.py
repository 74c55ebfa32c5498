"""Canonical snapshots: one row per (platform_id, video_id, snapshot_at) with counters.

Every source (canonical file, trending CSV importer, Hugging Face dataset, synthetic corpus) ends
in `normalize_snapshots`, which validates ids, coerces types, removes duplicates and reports what
it dropped, so the rest of the build sees one clean shape.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.identity import PLATFORM_ID_PATTERN, VIDEO_ID_PATTERN
from trendflow.dataset.schema import (
    COUNTER_COLUMNS,
    OPTIONAL_SNAPSHOT_COLUMNS,
    REQUIRED_SNAPSHOT_COLUMNS,
    TAG_SEPARATOR,
)

log = logging.getLogger(__name__)

_NUMERIC_OPTIONAL = {"duration_sec", "channel_subscriber_count", "channel_video_count", "channel_view_count"}
_STRING_OPTIONAL = {
    "channel_id",
    "title",
    "description",
    "tags",
    "category",
    "language",
    "country",
    "video_url",
}


def to_utc(values: Any) -> pd.Series:
    """Parse timestamps to tz-aware UTC (naive values are taken as UTC); bad values -> NaT."""
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return series.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    if pd.api.types.is_datetime64_dtype(series.dtype):
        return series.dt.tz_localize("UTC").astype("datetime64[ns, UTC]")
    parsed = pd.to_datetime(series, utc=True, errors="coerce", format="mixed")
    return parsed.astype("datetime64[ns, UTC]")


def _join_tags(value: Any) -> Any:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, Iterable):
        return TAG_SEPARATOR.join(str(v) for v in value)
    return str(value)


def normalize_snapshots(
    df: pd.DataFrame,
    source: str,
    default_platform_id: str | None = None,
    conflict_policy: str = "max_views",
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Validate and clean snapshot rows; returns (snapshots, counts of what was dropped).

    - missing `platform_id` column: filled with `default_platform_id` (error when None);
    - rows with an invalid video_id (e.g. `#NAME?`), platform_id or snapshot time are dropped;
    - counters become float64 (NaN when unknown; negative values -> NaN);
    - exact duplicate rows are dropped; rows that share (platform_id, video_id, snapshot_at) but
      differ keep one deterministic winner (`max_views`: the highest view count, which on
      monotone counters is the latest measurement; `first`: the first row in source order).
    Output is sorted by (platform_id, video_id, snapshot_at) with a fresh RangeIndex.
    """
    report: dict[str, int] = {"rows_in": len(df)}
    df = df.copy()
    if "platform_id" not in df.columns:
        if default_platform_id is None:
            raise TrendFlowError(ErrorCode.INVALID_REQUEST, f"{source}: snapshots need a platform_id column")
        df["platform_id"] = default_platform_id
    missing = [c for c in REQUIRED_SNAPSHOT_COLUMNS if c not in df.columns]
    if missing:
        raise TrendFlowError(
            ErrorCode.INVALID_REQUEST,
            f"{source}: snapshots lack required columns {missing}; need {REQUIRED_SNAPSHOT_COLUMNS}; "
            f"its columns: {sorted(map(str, df.columns))} (rename others with the source's column_mapping)",
        )
    keep = REQUIRED_SNAPSHOT_COLUMNS + [c for c in OPTIONAL_SNAPSHOT_COLUMNS if c in df.columns]
    df = df[keep]

    df["platform_id"] = df["platform_id"].astype("string").str.strip()
    df["video_id"] = df["video_id"].astype("string").str.strip()
    bad_video = ~df["video_id"].str.fullmatch(VIDEO_ID_PATTERN.strip("^$")).fillna(False).astype(bool)
    bad_platform = ~df["platform_id"].str.fullmatch(PLATFORM_ID_PATTERN.strip("^$")).fillna(False).astype(
        bool
    )
    df["snapshot_at"] = to_utc(df["snapshot_at"])
    bad_time = df["snapshot_at"].isna()
    report["dropped_invalid_video_id"] = int(bad_video.sum())
    report["dropped_invalid_platform_id"] = int((bad_platform & ~bad_video).sum())
    report["dropped_invalid_snapshot_at"] = int((bad_time & ~bad_video & ~bad_platform).sum())
    df = df[~(bad_video | bad_platform | bad_time)]

    for col in COUNTER_COLUMNS:
        values = pd.to_numeric(df[col], errors="coerce").astype("float64")
        df[col] = values.where(values >= 0)
    for col in _NUMERIC_OPTIONAL & set(df.columns):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    if "published_at" in df.columns:
        df["published_at"] = to_utc(df["published_at"])
    if "tags" in df.columns:
        df["tags"] = df["tags"].map(_join_tags)
    if "left_censored" in df.columns:
        df["left_censored"] = df["left_censored"].astype("boolean").fillna(False).astype(bool)
    for col in _STRING_OPTIONAL & set(df.columns):
        values = df[col].astype("string").str.strip()
        # an empty tag list is a fact (no tags); other empty strings mean unknown
        df[col] = values if col == "tags" else values.mask(values == "")

    before = len(df)
    df = df.drop_duplicates()
    report["dropped_exact_duplicates"] = before - len(df)

    before = len(df)
    df = df.reset_index(drop=True)
    df["_order"] = np.arange(len(df))
    if conflict_policy == "max_views":
        df = df.sort_values(
            ["platform_id", "video_id", "snapshot_at", "views", "_order"],
            ascending=[True, True, True, False, True],
            na_position="last",
            kind="mergesort",
        )
    elif conflict_policy == "first":
        df = df.sort_values(["platform_id", "video_id", "snapshot_at", "_order"], kind="mergesort")
    else:
        raise TrendFlowError(ErrorCode.CONFIG_ERROR, f"unknown conflict_policy {conflict_policy!r}")
    df = df.drop_duplicates(["platform_id", "video_id", "snapshot_at"], keep="first")
    report["dropped_conflicting_duplicates"] = before - len(df)
    df = df.drop(columns="_order").reset_index(drop=True)
    report["rows_out"] = len(df)
    report["videos"] = int(df.groupby(["platform_id", "video_id"], sort=False).ngroups) if len(df) else 0

    dropped = {k: v for k, v in report.items() if k.startswith("dropped_") and v}
    if dropped:
        log.warning(
            "snapshots from %s: dropped %s (kept %d of %d rows)", source, dropped, len(df), report["rows_in"]
        )
    return df, report


def read_canonical(path: str, storage_options: dict | None = None, **load_args: Any) -> pd.DataFrame:
    """Read a canonical snapshots file: .parquet or .csv (also compressed csv), local or s3://."""
    lower = path.lower()
    if lower.endswith(".parquet") or lower.endswith(".pq"):
        return pd.read_parquet(path, storage_options=storage_options, **load_args)
    if ".csv" in lower:
        return pd.read_csv(path, storage_options=storage_options, **load_args)
    raise TrendFlowError(ErrorCode.INVALID_REQUEST, f"canonical snapshots must be .parquet or .csv: {path}")
