"""The two baselines every model is compared with, both fit on the training rows only.

- `global_median`: the median training target (log1p of the delta), whatever the video.
- `szabo_huberman`: Szabo & Huberman (2010) found that log popularity later is linear in log
  popularity early. Here: target = a + b * log1p(count at snapshot1), least squares on the
  training rows, where the count is the target's own counter (views for views, likes for likes;
  column `snapshot1__<target>_log1p`). Rows without that count get the training median.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from trendflow.contracts.errors import ErrorCode, TrendFlowError

BASELINES = ("global_median", "szabo_huberman")


def snapshot1_count_column(target: str) -> str:
    return f"snapshot1__{target}_log1p"


class Baseline(BaseModel):
    """A fitted baseline (tiny: stored as plain numbers in bundle.json and the report)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    target: str
    median: float
    intercept: float | None = None
    slope: float | None = None
    fit_rows: int

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.full(len(frame), self.median, dtype="float64")
        if self.name == "szabo_huberman" and self.slope is not None and self.intercept is not None:
            x = _count(frame, self.target)
            ok = np.isfinite(x)
            out[ok] = self.intercept + self.slope * x[ok]
        return out


def _count(frame: pd.DataFrame, target: str) -> np.ndarray:
    col = snapshot1_count_column(target)
    if col not in frame.columns:
        raise TrendFlowError(
            ErrorCode.DEPENDENCY_MISSING, f"the Szabo-Huberman baseline needs column {col!r} in the table"
        )
    return pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def fit_baselines(train: pd.DataFrame, y: np.ndarray, target: str) -> dict[str, Baseline]:
    median = float(np.median(y))
    x = _count(train, target)
    ok = np.isfinite(x) & np.isfinite(y)
    intercept = slope = None
    if ok.sum() >= 2 and np.ptp(x[ok]) > 0:
        design = np.column_stack([np.ones(ok.sum()), x[ok]])
        coef, *_ = np.linalg.lstsq(design, y[ok], rcond=None)
        intercept, slope = float(coef[0]), float(coef[1])
    return {
        "global_median": Baseline(name="global_median", target=target, median=median, fit_rows=len(y)),
        "szabo_huberman": Baseline(
            name="szabo_huberman",
            target=target,
            median=median,
            intercept=intercept,
            slope=slope,
            fit_rows=int(ok.sum()),
        ),
    }
