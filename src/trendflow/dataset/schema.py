"""Names shared by the dataset build: canonical snapshot columns, horizons, table column groups.

Every column name of `training_table.parquet` is produced by a function in this module or by the
run-feature aggregation (`run_features.py`); docs/dataset.md lists them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from trendflow.contracts.errors import ErrorCode, TrendFlowError

# -- canonical snapshots -----------------------------------------------------------------------
KEY = ["platform_id", "video_id"]
REQUIRED_SNAPSHOT_COLUMNS = ["platform_id", "video_id", "snapshot_at", "views", "likes", "comments"]
# Optional columns a snapshot source may carry. Static facts are read from the snapshot1 row only.
OPTIONAL_SNAPSHOT_COLUMNS = [
    "published_at",
    "channel_id",
    "title",
    "description",
    "tags",
    "category",
    "language",
    "duration_sec",
    "country",
    "channel_subscriber_count",
    "channel_video_count",
    "channel_view_count",
    "left_censored",  # trending importer: already trending on an export's first day
    "video_url",  # where processing downloads the video (processing.video_list: snapshots); never a feature
]
COUNTER_COLUMNS = ["views", "likes", "comments"]
CHANNEL_STAT_COLUMNS = ["channel_subscriber_count", "channel_video_count", "channel_view_count"]
TAG_SEPARATOR = "|"

# -- table column groups -----------------------------------------------------------------------
# Identity / bookkeeping columns: never features.
ID_COLUMNS = [
    "platform_id",
    "video_id",
    "snapshot1_at",
    "published_at",
    "channel_id",
    "channel_id__present",
    "channel_id__source",
    "channel_id__missing_reason",
    "run_id",
    "run_config_hash",
    "run__present",
    "run__missing_reason",
    "synthetic",
    "left_censored",
]
SPLIT_COLUMNS = ["split_time", "split_channel"]
SPLIT_VALUES = ("train", "valid", "test", "excluded")

# Snapshot1 features (facts known at snapshot1). Names are fixed; see docs/dataset.md.
SNAPSHOT1_NUMERIC_FEATURES = [
    "video_age_hours_at_snapshot1",
    "snapshot1__views_log1p",
    "snapshot1__likes_log1p",
    "snapshot1__comments_log1p",
    "snapshot1__likes_per_view",
    "snapshot1__comments_per_view",
    "snapshot1__views_per_hour_log1p",
    "duration_sec",
    "analysis_fps",
    "publish_hour_utc",
    "publish_weekday",
    "channel__subscriber_count_log1p",
    "channel__video_count_log1p",
    "channel__view_count_log1p",
]
SNAPSHOT1_CATEGORICAL_FEATURES = ["category", "language"]
SNAPSHOT1_TEXT_PREFIX = "snapshot1__"  # + text statistic name, e.g. snapshot1__title_chars


# -- horizons ----------------------------------------------------------------------------------
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*$")
_UNIT_HOURS = {"m": 1 / 60, "h": 1.0, "d": 24.0, "w": 168.0}
_LABEL_RE = re.compile(r"^[0-9]+[a-z]+$")


def parse_duration(text: str | int | float) -> pd.Timedelta:
    """'7d', '36h', '2w', '90m' (or a number of hours) -> Timedelta."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return pd.Timedelta(hours=float(text))
    match = _DURATION_RE.match(str(text))
    if not match:
        raise TrendFlowError(
            ErrorCode.CONFIG_ERROR, f"cannot parse duration {text!r}: use e.g. '7d', '36h', '2w', '90m'"
        )
    return pd.Timedelta(hours=float(match.group(1)) * _UNIT_HOURS[match.group(2)])


@dataclass(frozen=True)
class Horizon:
    """One forecast horizon: `name` is the column label (e.g. '14d')."""

    name: str
    offset: pd.Timedelta
    tolerance: pd.Timedelta
    required: bool

    @property
    def hours(self) -> float:
        return self.offset / pd.Timedelta(hours=1)


def parse_horizons(spec: list[dict] | dict, default_tolerance: str = "1d") -> list[Horizon]:
    """Horizons from parameters: a list of {name, offset?, tolerance?, required?}.

    `offset` defaults to the name ('14d'); the tolerance must be smaller than the offset so the
    horizon snapshot is always strictly after snapshot1.
    """
    items = [{"name": k, **(v or {})} for k, v in spec.items()] if isinstance(spec, dict) else spec
    horizons: list[Horizon] = []
    seen: set[str] = set()
    for item in items:
        if isinstance(item, str):
            item = {"name": item}
        name = str(item["name"])
        if not _LABEL_RE.match(name):
            raise TrendFlowError(ErrorCode.CONFIG_ERROR, f"horizon name {name!r} must look like '14d'")
        if name in seen:
            raise TrendFlowError(ErrorCode.CONFIG_ERROR, f"horizon {name!r} is listed twice")
        seen.add(name)
        offset = parse_duration(item.get("offset", name))
        tolerance = parse_duration(item.get("tolerance", default_tolerance))
        if offset <= pd.Timedelta(0):
            raise TrendFlowError(ErrorCode.CONFIG_ERROR, f"horizon {name!r} must be positive")
        if tolerance >= offset:
            raise TrendFlowError(
                ErrorCode.CONFIG_ERROR,
                f"horizon {name!r}: tolerance {tolerance} must be smaller than the horizon {offset}",
            )
        horizons.append(Horizon(name, offset, tolerance, bool(item.get("required", False))))
    return sorted(horizons, key=lambda h: (h.offset, h.name))


# -- target column names -----------------------------------------------------------------------
def target_column(target: str, horizon: str) -> str:
    """The model target: log1p(max(delta, 0))."""
    return f"target__{target}__{horizon}"


def target_columns(target: str, horizon: str) -> dict[str, str]:
    base = target_column(target, horizon)
    return {
        "target": base,
        "mask": f"{base}__mask",  # True when the target is present (NPZ convention: mask = valid)
        "delta": f"{base}__delta",
        "value": f"{base}__value",
    }


def horizon_columns(horizon: str) -> dict[str, str]:
    return {
        "snapshot_at": f"horizon__{horizon}__snapshot_at",
        "offset_hours": f"horizon__{horizon}__offset_hours",
    }


def is_target_column(name: str) -> bool:
    return name.startswith("target__") or name.startswith("horizon__")
