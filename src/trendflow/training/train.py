"""Fit every (target, horizon, split scheme) task and evaluate it against the baselines.

For each task the rows are those whose target is present (mask True): the model learns on the
split's `train` rows, stops early on its `valid` rows and is judged on its `test` rows; the
`time` and `channel` split schemes are trained and reported separately, because a row can be
`train` in one and `test` in the other. The prediction interval of a model is the pair of
validation-residual quantiles; the champion of a task is the algorithm with the best
validation metric (`selection_metric`) - the test split never decides anything.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from trendflow.dataset.schema import target_columns
from trendflow.training.baselines import BASELINES, Baseline, fit_baselines
from trendflow.training.config import SPLIT_COLUMN, Algorithm, TrainingParams
from trendflow.training.features import FeatureSpec, target_tasks
from trendflow.training.metrics import AGE_COLUMN, age_buckets, metric_rows, metrics_frame, regression_metrics
from trendflow.training.models import FittedModel, fit_model

log = logging.getLogger(__name__)


class Interval(BaseModel):
    """Prediction interval on the log1p scale: prediction + [residual_low, residual_high]."""

    model_config = ConfigDict(extra="forbid")

    level: float
    method: str = "validation_residual_quantiles"
    residual_low: float
    residual_high: float
    n: int


@dataclass
class TaskResult:
    target: str
    horizon: str
    split: str
    models: dict[str, FittedModel]
    baselines: dict[str, Baseline]
    intervals: dict[str, Interval]
    valid_metrics: dict[str, dict[str, float]]  # algorithm -> metrics on the valid rows
    rows: dict[str, int]
    champion: str

    @property
    def key(self) -> str:
        return f"{self.target}__{self.horizon}__{self.split}"


@dataclass
class TrainingResult:
    spec: FeatureSpec
    tasks: list[TaskResult]
    skipped: list[dict[str, str]] = field(default_factory=list)

    def task(self, target: str, horizon: str, split: str) -> TaskResult | None:
        return next(
            (t for t in self.tasks if (t.target, t.horizon, t.split) == (target, horizon, split)), None
        )


def _task_rows(table: pd.DataFrame, target: str, horizon: str, split: str) -> dict[str, np.ndarray]:
    cols = target_columns(target, horizon)
    present = table[cols["mask"]].fillna(False).to_numpy(dtype=bool) & np.isfinite(
        pd.to_numeric(table[cols["target"]], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    )
    split_values = table[SPLIT_COLUMN[split]].astype("string").fillna("excluded").to_numpy(dtype=object)
    return {name: present & (split_values == name) for name in ("train", "valid", "test")}


def _target(table: pd.DataFrame, rows: np.ndarray, target: str, horizon: str) -> np.ndarray:
    return pd.to_numeric(table.loc[rows, target_columns(target, horizon)["target"]]).to_numpy(dtype="float64")


def _selection_score(metrics: dict[str, float], metric: str) -> float:
    value = metrics.get(metric, math.nan)
    if not np.isfinite(value):
        return math.inf
    return -value if metric == "spearman" else value


def fit_all(table: pd.DataFrame, spec: FeatureSpec, params: TrainingParams) -> TrainingResult:
    tasks: list[TaskResult] = []
    skipped: list[dict[str, str]] = []
    for target, horizon in target_tasks(table, params):
        for split in params.splits:
            rows = _task_rows(table, target, horizon, split)
            counts = {k: int(v.sum()) for k, v in rows.items()}
            reason = None
            if counts["train"] < params.min_train_rows:
                reason = f"{counts['train']} training rows < min_train_rows {params.min_train_rows}"
            elif counts["valid"] < params.min_valid_rows:
                reason = f"{counts['valid']} validation rows < min_valid_rows {params.min_valid_rows}"
            elif counts["test"] < params.min_test_rows:
                reason = f"{counts['test']} test rows < min_test_rows {params.min_test_rows}"
            if reason:
                log.warning("skipping %s@%s on the %s split: %s", target, horizon, split, reason)
                skipped.append({"target": target, "horizon": horizon, "split": split, "reason": reason})
                continue
            tasks.append(_fit_task(table, spec, params, target, horizon, split, rows, counts))
    return TrainingResult(spec=spec, tasks=tasks, skipped=skipped)


def _fit_task(
    table: pd.DataFrame,
    spec: FeatureSpec,
    params: TrainingParams,
    target: str,
    horizon: str,
    split: str,
    rows: dict[str, np.ndarray],
    counts: dict[str, int],
) -> TaskResult:
    train, valid = table.loc[rows["train"]], table.loc[rows["valid"]]
    y_train, y_valid = (
        _target(table, rows["train"], target, horizon),
        _target(table, rows["valid"], target, horizon),
    )
    models: dict[str, FittedModel] = {}
    intervals: dict[str, Interval] = {}
    valid_metrics: dict[str, dict[str, float]] = {}
    alpha = (1.0 - params.interval_level) / 2.0
    for algorithm in params.algorithms:
        model = fit_model(algorithm, train, y_train, valid, y_valid, spec, params)
        pred = model.predict(valid)
        residuals = y_valid - pred
        intervals[algorithm] = Interval(
            level=params.interval_level,
            residual_low=float(np.quantile(residuals, alpha)),
            residual_high=float(np.quantile(residuals, 1.0 - alpha)),
            n=len(residuals),
        )
        valid_metrics[algorithm] = regression_metrics(y_valid, pred)
        models[algorithm] = model
        log.info(
            "%s@%s %s split, %s: %d iterations, valid rmse %.4f spearman %.4f",
            target,
            horizon,
            split,
            algorithm,
            model.best_iteration,
            valid_metrics[algorithm]["rmse"],
            valid_metrics[algorithm]["spearman"],
        )
    champion: Algorithm = min(
        params.algorithms, key=lambda a: (_selection_score(valid_metrics[a], params.selection_metric), a)
    )
    return TaskResult(
        target=target,
        horizon=horizon,
        split=split,
        models=models,
        baselines=fit_baselines(train, y_train, target),
        intervals=intervals,
        valid_metrics=valid_metrics,
        rows=counts,
        champion=champion,
    )


def evaluate_all(
    result: TrainingResult, table: pd.DataFrame, params: TrainingParams
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(metrics, test predictions) of every model and baseline on the valid and test rows."""
    metric_list: list[dict] = []
    predictions: list[pd.DataFrame] = []
    for task in result.tasks:
        rows = _task_rows(table, task.target, task.horizon, task.split)
        for eval_split in ("valid", "test"):
            sel = rows[eval_split]
            frame = table.loc[sel]
            y = _target(table, sel, task.target, task.horizon)
            buckets = (
                age_buckets(frame[AGE_COLUMN], params)
                if AGE_COLUMN in frame
                else np.full(len(y), "age_unknown")
            )
            outputs: dict[str, tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]] = {}
            for algorithm, model in task.models.items():
                pred = model.predict(frame)
                iv = task.intervals[algorithm]
                outputs[algorithm] = (pred, (pred + iv.residual_low, pred + iv.residual_high))
            for name in BASELINES:
                outputs[name] = (task.baselines[name].predict(frame), None)
            for name, (pred, bounds) in outputs.items():
                keys = {
                    "target": task.target,
                    "horizon": task.horizon,
                    "model": name,
                    "split": task.split,
                    "eval_split": eval_split,
                }
                metric_list.extend(metric_rows(keys, y, pred, buckets, params, bounds))
                if eval_split == "test":
                    predictions.append(
                        pd.DataFrame(
                            {
                                **keys,
                                "platform_id": frame["platform_id"].astype(str).to_numpy(),
                                "video_id": frame["video_id"].astype(str).to_numpy(),
                                "bucket": buckets,
                                "actual": y,
                                "predicted": pred,
                            }
                        )
                    )
    metrics = metrics_frame(metric_list)
    preds = pd.concat(predictions, ignore_index=True) if predictions else pd.DataFrame()
    return metrics, preds
