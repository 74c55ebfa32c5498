"""The two baselines every model is compared with, both fit on the training rows only.

- `global_median`: the median training target (log1p of the delta), whatever the video.
- `szabo_huberman`: Szabo & Huberman (2010) found that log popularity later is linear in log
  popularity early. Here: target = a + b * log1p(count at snapshot1), least squares on the
  training rows, where the count is the target's own counter (views for views, likes for likes;
  column `snapshot1__<target>_log1p`). Rows without that count get the training median.
- `early_popularity`: the same log-linear idea with the facts Szabo-Huberman's fixed-age setting
  leaves out. Szabo and Huberman compare videos at the same age since upload; a snapshot1 can
  come hours or weeks after publication, and a count reached in 5 hours grows much faster than
  the same count reached in 5 days. So: target = ridge regression on log1p(views, likes,
  comments at snapshot1), log1p(video_age_hours_at_snapshot1) and its square (columns present in
  the table; missing values -> training medians; standardized on the training rows). It is the
  prior (init score) of the `_ep` algorithms and is reported as a baseline of its own.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from trendflow.contracts.errors import ErrorCode, TrendFlowError

BASELINES = ("global_median", "szabo_huberman", "early_popularity")
AGE_COLUMN = "video_age_hours_at_snapshot1"
EP_COUNTERS = ("snapshot1__views_log1p", "snapshot1__likes_log1p", "snapshot1__comments_log1p")
EP_AGE_TERMS = ("log1p_age_hours", "log1p_age_hours_sq")
EP_RIDGE = 1.0  # on standardized columns: a guard against collinear counters, not a tuned knob


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
    # early_popularity: term names, the training medians (missing -> median), the training mean
    # and std of each term and the ridge coefficients of the standardized terms.
    terms: list[str] | None = None
    fill: list[float] | None = None
    center: list[float] | None = None
    scale: list[float] | None = None
    coefficients: list[float] | None = None

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.full(len(frame), self.median, dtype="float64")
        if self.name == "szabo_huberman" and self.slope is not None and self.intercept is not None:
            x = _count(frame, self.target)
            ok = np.isfinite(x)
            out[ok] = self.intercept + self.slope * x[ok]
        if self.name == "early_popularity" and self.coefficients is not None and self.intercept is not None:
            x = _ep_matrix(frame, self.terms or [])
            x = np.where(np.isfinite(x), x, np.asarray(self.fill))
            z = (x - np.asarray(self.center)) / np.asarray(self.scale)
            out = self.intercept + z @ np.asarray(self.coefficients)
        return out


def _count(frame: pd.DataFrame, target: str) -> np.ndarray:
    return _numeric(frame, snapshot1_count_column(target), "Szabo-Huberman")


def _numeric(frame: pd.DataFrame, col: str, who: str) -> np.ndarray:
    if col not in frame.columns:
        raise TrendFlowError(
            ErrorCode.DEPENDENCY_MISSING, f"the {who} baseline needs column {col!r} in the table"
        )
    return pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _ep_matrix(frame: pd.DataFrame, terms: list[str]) -> np.ndarray:
    """The early_popularity terms of `frame` (n, len(terms)); NaN where a fact is missing."""
    cols = []
    for term in terms:
        if term in EP_AGE_TERMS:
            age = np.log1p(np.clip(_numeric(frame, AGE_COLUMN, "early_popularity"), 0, None))
            cols.append(age if term == "log1p_age_hours" else age**2)
        else:
            cols.append(_numeric(frame, term, "early_popularity"))
    return np.column_stack(cols) if cols else np.empty((len(frame), 0))


def fit_early_popularity(train: pd.DataFrame, y: np.ndarray, target: str, median: float) -> Baseline:
    """Ridge on the standardized early_popularity terms present in `train` (module docstring)."""
    terms = [c for c in EP_COUNTERS if c in train.columns]
    if AGE_COLUMN in train.columns:
        terms += list(EP_AGE_TERMS)
    x = _ep_matrix(train, terms)
    fill = np.nanmedian(np.where(np.isfinite(x), x, np.nan), axis=0) if len(x) else np.zeros(len(terms))
    keep = np.isfinite(fill)  # a term missing on every training row cannot be used
    terms = [t for t, k in zip(terms, keep, strict=True) if k]
    x, fill = x[:, keep], fill[keep]
    x = np.where(np.isfinite(x), x, fill)
    ok = np.isfinite(y)
    base = Baseline(name="early_popularity", target=target, median=median, fit_rows=int(ok.sum()))
    if ok.sum() < 2 or not terms:
        return base
    x, yy = x[ok], y[ok]
    center, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    z = (x - center) / scale
    coef = np.linalg.solve(z.T @ z + EP_RIDGE * np.eye(len(terms)), z.T @ (yy - yy.mean()))
    return base.model_copy(
        update={
            "intercept": float(yy.mean()),
            "terms": terms,
            "fill": [float(v) for v in fill],
            "center": [float(v) for v in center],
            "scale": [float(v) for v in scale],
            "coefficients": [float(v) for v in coef],
        }
    )


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
        "early_popularity": fit_early_popularity(train, y, target, median),
    }
