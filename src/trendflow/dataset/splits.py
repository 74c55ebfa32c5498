"""Leak-free splits: `split_time` (by snapshot1 time) and `split_channel` (grouped by channel).

Both columns take the values train / valid / test / excluded.

Time split: rows are ordered by snapshot1_at; the train boundary t1 is the snapshot1 time of the
row at position floor(n * train_fraction) and the valid boundary t2 the one at
floor(n * (train_fraction + valid_fraction)). train = s1 < t1, valid = t1 + gap <= s1 < t2,
test = s1 >= t2 + gap; rows inside a gap are `excluded`. Every valid/test snapshot1 is therefore
strictly after every train snapshot1 (and every test one after every valid one), by at least
`gap`. Rows that share a snapshot1 time always land in the same split.

Channel split: u = first 8 bytes of sha256("<seed>:<platform_id>:<channel_id>") / 2^64, in
[0, 1); u < train_fraction -> train, < train+valid -> valid, else test. Deterministic and
independent of the other rows, so a channel never appears in two splits and adding videos never
moves a channel. Rows without a channel_id cannot be placed safely (they may belong to any
channel), so `missing_channel: exclude` (default) marks them `excluded`; `train` puts them all
in train (only safe when you know they share no channel with valid/test rows).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.dataset.schema import parse_duration


def _fractions(params: dict[str, Any]) -> tuple[float, float, float]:
    train = float(params.get("train_fraction", 0.7))
    valid = float(params.get("valid_fraction", 0.15))
    test = float(params.get("test_fraction", round(1.0 - train - valid, 10)))
    if min(train, valid, test) < 0 or abs(train + valid + test - 1.0) > 1e-6 or train <= 0:
        raise TrendFlowError(
            ErrorCode.CONFIG_ERROR,
            f"split fractions must be >= 0 and sum to 1 (train > 0): got {train}, {valid}, {test}",
        )
    return train, valid, test


def time_split(s1_at: pd.Series, params: dict[str, Any] | None = None) -> tuple[pd.Series, dict[str, Any]]:
    params = params or {}
    train_f, valid_f, _ = _fractions(params)
    gap = parse_duration(params.get("gap", "0h"))
    times = pd.Series(s1_at.to_numpy(), index=s1_at.index)
    out = pd.Series("excluded", index=s1_at.index, dtype=object)
    info: dict[str, Any] = {"gap_hours": gap / pd.Timedelta(hours=1)}
    valid_times = times.dropna().sort_values(kind="mergesort")
    n = len(valid_times)
    if n == 0:
        return out.astype("string"), info
    ordered = valid_times.to_numpy()
    i1 = min(int(np.floor(n * train_f)), n - 1) if train_f < 1 else n
    i2 = min(int(np.floor(n * (train_f + valid_f))), n)
    t1 = ordered[i1] if i1 < n else None
    t2 = ordered[i2] if i2 < n else None
    s = times
    if t1 is None:
        out[s.notna()] = "train"
    else:
        out[s < t1] = "train"
        valid = s >= t1 + gap
        if t2 is not None:
            valid &= s < t2
        out[valid] = "valid"
        if t2 is not None:
            out[s >= t2 + gap] = "test"
    info["train_end"] = str(pd.Timestamp(t1)) if t1 is not None else None
    info["valid_end"] = str(pd.Timestamp(t2)) if t2 is not None else None
    return out.astype("string"), info


def channel_unit(channel_key: str, seed: int | str) -> float:
    digest = hashlib.sha256(f"{seed}:{channel_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def channel_split(
    platform_id: pd.Series, channel_id: pd.Series, params: dict[str, Any] | None = None
) -> tuple[pd.Series, dict[str, Any]]:
    params = params or {}
    train_f, valid_f, _ = _fractions(params)
    seed = params.get("seed", 42)
    policy = params.get("missing_channel", "exclude")
    if policy not in ("exclude", "train"):
        raise TrendFlowError(ErrorCode.CONFIG_ERROR, f"missing_channel must be exclude|train, got {policy!r}")
    out = np.empty(len(channel_id), dtype=object)
    cache: dict[str, str] = {}
    for i, (platform, channel) in enumerate(
        zip(platform_id.to_numpy(dtype=object), channel_id.to_numpy(dtype=object), strict=True)
    ):
        if (
            channel is None
            or channel is pd.NA
            or (isinstance(channel, float) and np.isnan(channel))
            or channel == ""
        ):
            out[i] = "excluded" if policy == "exclude" else "train"
            continue
        key = f"{platform}:{channel}"
        split = cache.get(key)
        if split is None:
            u = channel_unit(key, seed)
            split = "train" if u < train_f else "valid" if u < train_f + valid_f else "test"
            cache[key] = split
        out[i] = split
    info = {"seed": seed, "missing_channel": policy, "channels": len(cache)}
    return pd.Series(out, index=channel_id.index).astype("string"), info


def split_counts(split: pd.Series) -> dict[str, int]:
    counts = split.value_counts()
    return {name: int(counts.get(name, 0)) for name in ("train", "valid", "test", "excluded")}
