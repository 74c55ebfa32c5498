"""Train / valid / test rows of a (target, horizon, split scheme) task, as one or more folds.

- `time`, `channel`: one fold from the table's `split_time` / `split_channel` column.
- `walk_forward`: rolling-origin folds by snapshot1 time. When the rows have at most
  `max_folds` distinct snapshot1 times after the first (daily exports), each is an origin;
  otherwise the latest `test_fraction` of the rows is cut into `max_folds` blocks of about equal
  size and each block's first time is an origin. A fold tests the rows from its origin to the
  next one and trains on the rows whose target was already observed at the origin (their horizon
  snapshot is not later than the origin, `embargo_horizon`; otherwise every row with an earlier
  snapshot1). Inside that
  window the rows whose channel is `valid` in `split_channel` validate (early stopping, blend
  weights, tuning, the champion), the others train. The test rows of all folds are pooled.

Rows without the target (mask False) are in no fold. Rows flagged `left_censored` (their
snapshot1 is an export's first day, not their first appearance) leave train and valid when
`exclude_left_censored` is set; test rows keep them (the report shows them apart).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from trendflow.dataset.schema import horizon_columns, parse_duration, target_columns
from trendflow.training.config import (
    LEFT_CENSORED_COLUMN,
    SPLIT_COLUMN,
    WALK_FORWARD_VALID_COLUMN,
    TrainingParams,
)

SPLIT_NAMES = ("train", "valid", "test")


@dataclass
class Fold:
    name: str
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    origin: str | None = None

    def rows(self, split: str) -> np.ndarray:
        return {"train": self.train, "valid": self.valid, "test": self.test}[split]

    def counts(self) -> dict[str, int]:
        return {name: int(self.rows(name).sum()) for name in SPLIT_NAMES}


def present_rows(table: pd.DataFrame, target: str, horizon: str) -> np.ndarray:
    cols = target_columns(target, horizon)
    values = pd.to_numeric(table[cols["target"]], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return table[cols["mask"]].fillna(False).to_numpy(dtype=bool) & np.isfinite(values)


def left_censored(table: pd.DataFrame) -> np.ndarray:
    """The importer's flag (False where the source cannot tell)."""
    if LEFT_CENSORED_COLUMN not in table.columns:
        return np.zeros(len(table), dtype=bool)
    return table[LEFT_CENSORED_COLUMN].fillna(False).to_numpy(dtype=bool)


def _split_values(table: pd.DataFrame, column: str) -> np.ndarray:
    return table[column].astype("string").fillna("excluded").to_numpy(dtype=object)


def task_folds(
    table: pd.DataFrame, target: str, horizon: str, split: str, params: TrainingParams
) -> list[Fold]:
    present = present_rows(table, target, horizon)
    fit_ok = present & ~left_censored(table) if params.exclude_left_censored else present
    if split in SPLIT_COLUMN:
        values = _split_values(table, SPLIT_COLUMN[split])
        return [
            Fold(
                name=split,
                train=fit_ok & (values == "train"),
                valid=fit_ok & (values == "valid"),
                test=present & (values == "test"),
            )
        ]
    return walk_forward_folds(table, target, horizon, present, fit_ok, params)


def walk_forward_folds(
    table: pd.DataFrame,
    target: str,
    horizon: str,
    present: np.ndarray,
    fit_ok: np.ndarray,
    params: TrainingParams,
) -> list[Fold]:
    wf = params.walk_forward
    s1 = pd.to_datetime(table["snapshot1_at"], utc=True)
    s1_ns = s1.to_numpy(dtype="datetime64[ns]")
    observed = observed_at(table, horizon)
    inner_valid = _split_values(table, WALK_FORWARD_VALID_COLUMN) == "valid"
    origins = fold_origins(s1_ns[present & ~np.isnat(s1_ns)], wf.max_folds, wf.test_fraction)
    folds: list[Fold] = []
    for i, origin in enumerate(origins):
        window = fit_ok & ((observed <= origin) if wf.embargo_horizon else (s1_ns < origin))
        test = present & (s1_ns >= origin)
        if i + 1 < len(origins):
            test &= s1_ns < origins[i + 1]
        fold = Fold(
            name=f"wf_{pd.Timestamp(origin).strftime('%Y%m%dT%H%M%S')}",
            train=window & ~inner_valid,
            valid=window & inner_valid,
            test=test,
            origin=pd.Timestamp(origin, tz="UTC").isoformat(),
        )
        c = fold.counts()
        if (
            c["train"] >= wf.min_train_rows
            and c["valid"] >= wf.min_valid_rows
            and c["test"] >= wf.min_test_rows
        ):
            folds.append(fold)
    return folds


def observed_at(table: pd.DataFrame, horizon: str) -> np.ndarray:
    """When each row's `horizon` target was observed: its horizon snapshot time (else
    snapshot1 + horizon), datetime64[ns] UTC."""
    observed_col = horizon_columns(horizon)["snapshot_at"]
    if observed_col in table.columns:
        return pd.to_datetime(table[observed_col], utc=True).to_numpy(dtype="datetime64[ns]")
    s1 = pd.to_datetime(table["snapshot1_at"], utc=True).to_numpy(dtype="datetime64[ns]")
    return s1 + np.timedelta64(int(parse_duration(horizon).total_seconds()), "s")


def fold_origins(times: np.ndarray, max_folds: int, test_fraction: float) -> np.ndarray:
    """Sorted origins (see the module docstring) from the snapshot1 times of the task's rows."""
    distinct = np.unique(times)
    if len(distinct) - 1 <= max_folds:
        return distinct[1:]
    ordered = np.sort(times)
    start = (1.0 - test_fraction) * len(ordered)
    positions = [int(start + k * test_fraction * len(ordered) / max_folds) for k in range(max_folds)]
    origins = np.unique(ordered[[min(max(p, 1), len(ordered) - 1) for p in positions]])
    return origins[origins > distinct[0]]
