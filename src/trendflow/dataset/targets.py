"""Snapshot1 rows, snapshot1 features and multi-horizon targets.

snapshot1 = the first snapshot of a video. Features read only the snapshot1 row (its counters
and its static fields: published_at, title, tags, category, ...). Targets read only later
snapshots: for horizon h the snapshot nearest to snapshot1 + h within h's tolerance (which is
smaller than h, so it is always strictly after snapshot1); ties go to the earlier snapshot.
`delta = value(h) - value(snapshot1)`, target = `log1p(max(delta, 0))`, mask = target present.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from trendflow.dataset.categories import canonical_categories
from trendflow.dataset.schema import (
    KEY,
    SNAPSHOT1_TEXT_PREFIX,
    Horizon,
    horizon_columns,
    target_columns,
)
from trendflow.dataset.text_features import TEXT_STAT_NAMES, text_statistics

log = logging.getLogger(__name__)

_STATIC = [
    "published_at",
    "title",
    "description",
    "tags",
    "category",
    "language",
    "duration_sec",
    "channel_subscriber_count",
    "channel_video_count",
    "channel_view_count",
    "left_censored",
]


def snapshot1_table(snapshots: pd.DataFrame) -> pd.DataFrame:
    """One row per video: its first snapshot (counters + static fields of that row only).

    `channel_id` is an identity, not a feature: the first non-null value over the video's rows.
    Rows are sorted by (platform_id, video_id).
    """
    snaps = snapshots.sort_values([*KEY, "snapshot_at"], kind="mergesort")
    first = snaps.drop_duplicates(KEY, keep="first").reset_index(drop=True)
    out = pd.DataFrame(
        {
            "platform_id": first["platform_id"].astype("string"),
            "video_id": first["video_id"].astype("string"),
            "snapshot1_at": first["snapshot_at"],
            "views": first["views"],
            "likes": first["likes"],
            "comments": first["comments"],
        }
    )
    for col in _STATIC:
        if col in first.columns:
            out[col] = first[col].to_numpy()
    if "channel_id" in snaps.columns:
        channel = snaps.dropna(subset=["channel_id"]).drop_duplicates(KEY, keep="first")
        out = out.merge(channel[[*KEY, "channel_id"]], on=KEY, how="left")
    else:
        out["channel_id"] = pd.NA
    out["channel_id"] = out["channel_id"].astype("string")
    if "published_at" not in out.columns:
        out["published_at"] = pd.Series(pd.NaT, index=out.index, dtype="datetime64[ns, UTC]")
    return out.sort_values(KEY, kind="mergesort").reset_index(drop=True)


def _log1p(values: pd.Series) -> np.ndarray:
    v = pd.to_numeric(values, errors="coerce").astype("float64").to_numpy()
    with np.errstate(invalid="ignore"):
        return np.log1p(np.where(v >= 0, v, np.nan))


def snapshot1_features(s1: pd.DataFrame) -> pd.DataFrame:
    """Features known at snapshot1, from the snapshot1 row (see docs/dataset.md)."""
    f = pd.DataFrame(index=s1.index)
    age = (s1["snapshot1_at"] - s1["published_at"]) / pd.Timedelta(hours=1)
    age = age.astype("float64")
    f["video_age_hours_at_snapshot1"] = age.where(age >= 0)
    views = s1["views"].astype("float64")
    f["snapshot1__views_log1p"] = _log1p(s1["views"])
    f["snapshot1__likes_log1p"] = _log1p(s1["likes"])
    f["snapshot1__comments_log1p"] = _log1p(s1["comments"])
    with np.errstate(invalid="ignore", divide="ignore"):
        safe_views = views.where(views > 0)
        f["snapshot1__likes_per_view"] = (s1["likes"].astype("float64") / safe_views).astype("float64")
        f["snapshot1__comments_per_view"] = (s1["comments"].astype("float64") / safe_views).astype("float64")
        per_hour = views / f["video_age_hours_at_snapshot1"].clip(lower=1.0)
    f["snapshot1__views_per_hour_log1p"] = _log1p(per_hour)
    published = s1["published_at"]
    f["publish_hour_utc"] = published.dt.hour.astype("float64")
    f["publish_weekday"] = published.dt.weekday.astype("float64")
    f["snapshot1__duration_sec"] = (
        s1["duration_sec"].astype("float64") if "duration_sec" in s1 else np.full(len(s1), np.nan)
    )
    # ids ("1") and titles ("Film & Animation") are one value (categories.py)
    f["category"] = (
        canonical_categories(s1["category"])
        if "category" in s1
        else pd.array([pd.NA] * len(s1), dtype="string")
    )
    f["snapshot1__language"] = (
        s1["language"].astype("string") if "language" in s1 else pd.array([pd.NA] * len(s1), dtype="string")
    )
    for stat, src in (
        ("channel__subscriber_count_log1p", "channel_subscriber_count"),
        ("channel__video_count_log1p", "channel_video_count"),
        ("channel__view_count_log1p", "channel_view_count"),
    ):
        f[stat] = _log1p(s1[src]) if src in s1 else np.full(len(s1), np.nan)

    titles = s1["title"] if "title" in s1 else pd.Series([None] * len(s1), index=s1.index)
    descs = s1["description"] if "description" in s1 else pd.Series([None] * len(s1), index=s1.index)
    tags = s1["tags"] if "tags" in s1 else pd.Series([None] * len(s1), index=s1.index)
    stats = [
        text_statistics(_none(t), _none(d), _none(g))
        for t, d, g in zip(
            titles.to_numpy(dtype=object),
            descs.to_numpy(dtype=object),
            tags.to_numpy(dtype=object),
            strict=True,
        )
    ]
    for name in TEXT_STAT_NAMES:
        f[f"{SNAPSHOT1_TEXT_PREFIX}{name}"] = (
            np.array([s[name] for s in stats], dtype="float64") if stats else []
        )
    return f


def _none(value: Any) -> Any:
    return (
        None if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)) else value
    )


def compute_targets(
    snapshots: pd.DataFrame, s1: pd.DataFrame, targets: list[str], horizons: list[Horizon]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Target columns aligned with `s1` (same index) + coverage per (target, horizon)."""
    out = pd.DataFrame(index=s1.index)
    coverage: dict[str, Any] = {}
    key_index = pd.MultiIndex.from_frame(s1[KEY].astype(str))
    vid = pd.Series(np.arange(len(s1)), index=key_index)
    snaps = snapshots[[*KEY, "snapshot_at", *targets]].copy()
    snaps["_vid"] = vid.reindex(pd.MultiIndex.from_frame(snaps[KEY].astype(str))).to_numpy()
    snaps = snaps.dropna(subset=["_vid"])
    snaps["_vid"] = snaps["_vid"].astype("int64")
    right = snaps[["_vid", "snapshot_at", *targets]].sort_values(["snapshot_at", "_vid"], kind="mergesort")
    right = right.rename(columns={"snapshot_at": "_h_at", **{t: f"_h_{t}" for t in targets}})
    base = pd.DataFrame({"_vid": np.arange(len(s1)), "_s1_at": s1["snapshot1_at"].to_numpy()})
    for h in horizons:
        left = base.assign(_target_at=base["_s1_at"] + h.offset).sort_values(
            ["_target_at", "_vid"], kind="mergesort"
        )
        matched = pd.merge_asof(
            left,
            right,
            left_on="_target_at",
            right_on="_h_at",
            by="_vid",
            direction="nearest",
            tolerance=h.tolerance,
            allow_exact_matches=True,
        ).sort_values("_vid", kind="mergesort")
        # Equal distance before/after: merge_asof 'nearest' keeps the earlier one (backward).
        found = matched["_h_at"].notna().to_numpy() & (matched["_h_at"] > matched["_s1_at"]).to_numpy()
        hc = horizon_columns(h.name)
        h_at = matched["_h_at"].where(found)
        # .array keeps the UTC dtype even when no horizon snapshot exists (all NaT)
        out[hc["snapshot_at"]] = pd.Series(h_at.array, index=s1.index).astype("datetime64[ns, UTC]")
        out[hc["offset_hours"]] = ((h_at - matched["_s1_at"]) / pd.Timedelta(hours=1)).to_numpy(
            dtype="float64"
        )
        for t in targets:
            cols = target_columns(t, h.name)
            value = matched[f"_h_{t}"].to_numpy(dtype="float64")
            value = np.where(found, value, np.nan)
            delta = value - s1[t].to_numpy(dtype="float64")
            ok = np.isfinite(delta)
            with np.errstate(invalid="ignore"):
                target = np.where(ok, np.log1p(np.maximum(delta, 0.0)), np.nan)
            out[cols["value"]] = value
            out[cols["delta"]] = np.where(ok, delta, np.nan)
            out[cols["target"]] = target
            out[cols["mask"]] = ok
            coverage[f"{t}@{h.name}"] = {
                "rows_with_target": int(ok.sum()),
                "rows": len(ok),
                "coverage": round(float(ok.mean()), 6) if len(ok) else 0.0,
                "negative_deltas_clipped": int((ok & (np.nan_to_num(delta) < 0)).sum()),
                "required": h.required,
            }
    return out, coverage


def missing_required(targets_frame: pd.DataFrame, targets: list[str], horizons: list[Horizon]) -> pd.Series:
    """True for rows where any required (target, horizon) target is missing."""
    missing = pd.Series(False, index=targets_frame.index)
    for h in horizons:
        if h.required:
            for t in targets:
                missing |= ~targets_frame[target_columns(t, h.name)["mask"]].astype(bool)
    return missing
