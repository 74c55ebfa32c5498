"""Targets (nearest snapshot within tolerance, masks, any horizons) and leak-free splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trendflow.contracts.errors import TrendFlowError
from trendflow.dataset.build import build_snapshot1
from trendflow.dataset.schema import parse_duration, parse_horizons
from trendflow.dataset.splits import channel_split, split_counts, time_split
from trendflow.dataset.targets import compute_targets, snapshot1_table

T0 = pd.Timestamp("2024-03-01T00:00:00Z")


def snaps(rows: list[tuple[str, float, float, float]]) -> pd.DataFrame:
    """rows of (video_id, hours after T0, views, likes)."""
    df = pd.DataFrame(rows, columns=["video_id", "h", "views", "likes"])
    df["platform_id"] = "youtube"
    df["snapshot_at"] = T0 + pd.to_timedelta(df["h"], unit="h")
    df["comments"] = 0.0
    df["published_at"] = T0 - pd.Timedelta(hours=10)
    return df.drop(columns="h")


def test_parse_horizons_any_set():
    hs = parse_horizons([{"name": "3d"}, {"name": "1d", "tolerance": "6h"}, "2d"], default_tolerance="12h")
    assert [h.name for h in hs] == ["1d", "2d", "3d"]
    assert hs[0].tolerance == pd.Timedelta(hours=6) and hs[1].tolerance == pd.Timedelta(hours=12)
    assert parse_duration("36h") == pd.Timedelta(hours=36) and parse_duration("2w") == pd.Timedelta(days=14)
    with pytest.raises(TrendFlowError, match="smaller than the horizon"):
        parse_horizons([{"name": "1d", "tolerance": "1d"}])
    with pytest.raises(TrendFlowError):
        parse_horizons([{"name": "soon"}])


def test_nearest_snapshot_within_tolerance_and_masks():
    df = snaps(
        [
            ("a", 0, 100, 10),
            ("a", 23, 150, 12),
            ("a", 26, 160, 13),
            ("a", 48, 300, 20),  # 1d -> 23h (nearest)
            ("b", 0, 50, 5),
            ("b", 40, 80, 6),  # 1d: nothing within 6h; 2d: 40h is 8h away -> missing
            ("c", 0, 70, 7),
            ("c", 21, 60, 9),
            ("c", 27, 90, 9),  # tie at 3h: the earlier (21h) wins
        ]
    )
    s1 = snapshot1_table(df)
    hs = parse_horizons([{"name": "1d", "tolerance": "6h"}, {"name": "2d", "tolerance": "6h"}])
    out, coverage = compute_targets(df, s1, ["views", "likes"], hs)
    out.index = s1["video_id"]
    assert out.loc["a", "target__views__1d__value"] == 150
    assert out.loc["a", "target__views__1d__delta"] == 50
    assert out.loc["a", "target__views__1d"] == pytest.approx(np.log1p(50))
    assert out.loc["a", "horizon__1d__offset_hours"] == 23
    assert out.loc["a", "target__views__2d"] == pytest.approx(np.log1p(200))
    assert not out.loc["b", "target__views__1d__mask"] and np.isnan(out.loc["b", "target__views__1d"])
    assert not out.loc["b", "target__views__2d__mask"]
    assert out.loc["c", "horizon__1d__offset_hours"] == 21
    assert out.loc["c", "target__views__1d__delta"] == -10
    assert out.loc["c", "target__views__1d"] == 0.0  # log1p(max(delta, 0))
    assert coverage["views@1d"]["rows_with_target"] == 2
    assert coverage["views@1d"]["negative_deltas_clipped"] == 1


def test_a_horizon_that_no_video_reaches():
    df = snaps([("a", 0, 1, 1), ("a", 24, 5, 2), ("b", 3, 1, 1)])
    out, coverage = compute_targets(df, snapshot1_table(df), ["views"], parse_horizons([{"name": "7d"}]))
    assert not out["target__views__7d__mask"].any() and coverage["views@7d"]["rows_with_target"] == 0
    assert str(out["horizon__7d__snapshot_at"].dtype) == "datetime64[ns, UTC]"


def test_hourly_horizons_and_missing_required_policy():
    df = snaps(
        [("a", 0, 1, 1), ("a", 24, 5, 2), ("a", 48, 9, 3), ("a", 72, 12, 4), ("b", 5, 1, 1), ("b", 29, 3, 1)]
    )
    params = {
        "horizons": [{"name": "1d", "required": True}, {"name": "2d", "required": True}, {"name": "3d"}],
        "default_tolerance": "2h",
    }
    kept, info = build_snapshot1(df, {**params, "missing_required_horizon": "keep"})
    assert len(kept) == 2 and info["rows_missing_a_required_horizon"] == 1
    assert info["rows_missing_per_horizon"] == {"1d": 0, "2d": 1, "3d": 1}
    dropped, info = build_snapshot1(df, {**params, "missing_required_horizon": "drop"})
    assert dropped["video_id"].tolist() == ["a"] and info["rows_dropped_missing_required"] == 1


def test_snapshot1_features_use_only_the_first_snapshot():
    df = snaps([("a", 0, 100, 10), ("a", 24, 1000, 100)])
    df["title"] = ["First title!", "Changed LATER title??"]
    s1, _ = build_snapshot1(df, {"horizons": [{"name": "1d", "tolerance": "1h"}]})
    row = s1.iloc[0]
    assert row["snapshot1__views_log1p"] == pytest.approx(np.log1p(100))
    assert row["video_age_hours_at_snapshot1"] == 10
    assert row["snapshot1__title_exclamations"] == 1 and row["snapshot1__title_questions"] == 0


def test_time_split_orders_snapshot1_with_gap():
    rng = np.random.default_rng(0)
    times = pd.Series(T0 + pd.to_timedelta(np.sort(rng.uniform(0, 1000, 200)).round(0), unit="h"))
    times = pd.concat([times, times.iloc[100:105]], ignore_index=True)  # ties
    for gap in ("0h", "48h"):
        split, _info = time_split(times, {"train_fraction": 0.6, "valid_fraction": 0.2, "gap": gap})
        tr, va, te = (times[split == s] for s in ("train", "valid", "test"))
        g = parse_duration(gap)
        assert va.min() >= tr.max() + g and te.min() >= va.max() + g and te.min() > tr.max()
        for t in times[times.duplicated(keep=False)].unique():  # equal times, same split
            assert split[times == t].nunique() == 1
        counts = split_counts(split)
        assert sum(counts.values()) == len(times)
        assert (counts["excluded"] > 0) == (gap != "0h")


def test_channel_split_is_grouped_deterministic_and_excludes_unknown():
    channels = pd.Series([f"UC{i % 37}" for i in range(500)] + [None] * 10, dtype="string")
    platform = pd.Series(["youtube"] * 510)
    a, _info = channel_split(platform, channels, {"seed": 3})
    b, _ = channel_split(platform, channels, {"seed": 3})
    assert a.equals(b)
    per_channel = pd.DataFrame({"c": channels, "s": a}).dropna().groupby("c")["s"].nunique()
    assert (per_channel == 1).all()
    assert (a[channels.isna()] == "excluded").all()
    assert set(a[channels.notna()]) == {"train", "valid", "test"}
    # adding rows never moves a channel
    c2, _ = channel_split(platform[:100], channels[:100], {"seed": 3})
    assert c2.equals(a[:100])
    other, _ = channel_split(platform, channels, {"seed": 4})
    assert not other.equals(a)
    with pytest.raises(TrendFlowError):
        channel_split(platform, channels, {"train_fraction": 0.9, "valid_fraction": 0.3})
