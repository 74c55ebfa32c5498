"""Metrics on the log1p scale: RMSE, MAE and Spearman, overall and per age bucket.

Every metric row names what it measures: target, horizon, model (algorithm or baseline),
split scheme (time/channel), evaluation split (valid/test) and bucket of
`video_age_hours_at_snapshot1` ("all" = every row); where rows are flagged `left_censored`,
the buckets `left_censored` and `not_left_censored` show them apart. Test rows of bucket `all`
carry seeded bootstrap intervals of Spearman and MAE (`bootstrap_intervals`).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy.stats import ConstantInputWarning, rankdata, spearmanr

from trendflow.training.config import TrainingParams

AGE_COLUMN = "video_age_hours_at_snapshot1"
METRICS = ("rmse", "mae", "spearman")
# Share of rows whose actual value lies inside the model's prediction interval (models only).
COVERAGE = "interval_coverage"
INTERVAL_COLUMNS = ["spearman_low", "spearman_high", "mae_low", "mae_high"]
METRIC_COLUMNS = [
    "target",
    "horizon",
    "model",
    "split",
    "eval_split",
    "bucket",
    "n",
    *METRICS,
    COVERAGE,
    *INTERVAL_COLUMNS,
]


def regression_metrics(
    y: np.ndarray, pred: np.ndarray, low: np.ndarray | None = None, high: np.ndarray | None = None
) -> dict[str, float]:
    """RMSE, MAE, Spearman of `pred` against `y` (NaN where undefined: < 3 rows or no spread),
    and the interval coverage when bounds are given."""
    y = np.asarray(y, dtype="float64")
    pred = np.asarray(pred, dtype="float64")
    n = len(y)
    coverage = math.nan
    if low is not None and high is not None and n:
        coverage = float(np.mean((y >= low) & (y <= high)))
    if n == 0:
        return {"n": 0, "rmse": math.nan, "mae": math.nan, "spearman": math.nan, COVERAGE: coverage}
    err = pred - y
    rho = math.nan
    if n >= 3 and np.ptp(y) > 0 and np.ptp(pred) > 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConstantInputWarning)
            rho = float(spearmanr(y, pred).statistic)
    return {
        "n": n,
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
        "spearman": rho,
        COVERAGE: coverage,
    }


def bootstrap_intervals(
    y: np.ndarray, pred: np.ndarray, n_resamples: int, level: float, seed: int
) -> dict[str, float]:
    """Percentile bootstrap intervals of Spearman and MAE over resampled rows (seeded: the same
    rows resampled for every model of a task, whose test rows are the same)."""
    y = np.asarray(y, dtype="float64")
    pred = np.asarray(pred, dtype="float64")
    out = dict.fromkeys(INTERVAL_COLUMNS, math.nan)
    if len(y) < 3 or n_resamples <= 0:
        return out
    idx = np.random.default_rng(seed).integers(0, len(y), size=(n_resamples, len(y)))
    ys, ps = y[idx], pred[idx]
    q = ((1.0 - level) / 2.0, 1.0 - (1.0 - level) / 2.0)
    mae = np.abs(ps - ys).mean(axis=1)
    ry, rp = rankdata(ys, axis=1), rankdata(ps, axis=1)
    ry -= ry.mean(axis=1, keepdims=True)
    rp -= rp.mean(axis=1, keepdims=True)
    den = np.sqrt((ry**2).sum(axis=1) * (rp**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(den > 0, (ry * rp).sum(axis=1) / den, np.nan)
    out["mae_low"], out["mae_high"] = (float(v) for v in np.quantile(mae, q))
    if np.isfinite(rho).sum() >= 2:
        out["spearman_low"], out["spearman_high"] = (float(v) for v in np.nanquantile(rho, q))
    return out


def age_buckets(age_hours: pd.Series | np.ndarray, params: TrainingParams) -> np.ndarray:
    """Bucket label per row; rows without an age get 'age_unknown'."""
    age = np.asarray(pd.to_numeric(pd.Series(age_hours), errors="coerce"), dtype="float64")
    labels = np.full(len(age), "age_unknown", dtype=object)
    for (lo, hi), label in zip(params.bucket_bounds(), params.bucket_labels(), strict=True):
        labels[(age >= lo) & (age < hi)] = label
    return labels


def metric_rows(
    keys: dict[str, str],
    y: np.ndarray,
    pred: np.ndarray,
    buckets: np.ndarray,
    params: TrainingParams,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
    censored: np.ndarray | None = None,
) -> list[dict]:
    """One row for 'all' (first) and one per configured bucket (empty buckets give n=0, NaN
    metrics); `left_censored` / `not_left_censored` rows when any row is flagged."""
    low, high = bounds if bounds is not None else (None, None)
    rows = [{**keys, "bucket": "all", **regression_metrics(y, pred, low, high)}]
    groups = [(label, buckets == label) for label in [*params.bucket_labels(), "age_unknown"]]
    if censored is not None and censored.any():
        groups += [("left_censored", censored), ("not_left_censored", ~censored)]
    for label, sel in groups:
        if label == "age_unknown" and not sel.any():
            continue
        part = (low[sel], high[sel]) if low is not None and high is not None else (None, None)
        rows.append({**keys, "bucket": label, **regression_metrics(y[sel], pred[sel], *part)})
    return rows


def metrics_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=METRIC_COLUMNS)
    frame["n"] = frame["n"].astype("int64")
    return frame.sort_values(
        ["target", "horizon", "split", "eval_split", "model", "bucket"], kind="mergesort"
    ).reset_index(drop=True)


def mlflow_metric_name(row: pd.Series | dict, metric: str) -> str:
    """e.g. `views/14d/catboost/channel/test/all/spearman` (MLflow groups by the '/' prefixes)."""
    return (
        "/".join(str(row[k]) for k in ("target", "horizon", "model", "split", "eval_split", "bucket"))
        + f"/{metric}"
    )


def mlflow_metrics(frame: pd.DataFrame) -> dict[str, float]:
    """Every finite metric of the frame, keyed by `mlflow_metric_name` (row counts included)."""
    out: dict[str, float] = {}
    for row in frame.to_dict("records"):
        for metric in ("n", *METRICS, COVERAGE):
            value = row[metric]
            if value is not None and np.isfinite(value):
                out[mlflow_metric_name(row, metric)] = float(value)
    return out
