"""Fit every (target, horizon, split scheme) task and evaluate it against the baselines.

For each task the rows come as folds (`folds.py`): one for the `time` and `channel` split
schemes, several rolling-origin folds for `walk_forward`. In a fold every algorithm learns on
the `train` rows, stops early on the `valid` rows and is judged on the `test` rows; a fold's
Szabo-Huberman line, fitted on its train rows, is both a baseline and the prior of the `_sh`
algorithms. The prediction interval of a model is the pair of validation-residual quantiles.
The `blend` weight, the Optuna search and the champion of a task (the algorithm with the best
pooled validation metric, `selection_metric`) are all decided on validation rows: the test
rows never decide anything.
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from trendflow.dataset.schema import target_columns
from trendflow.training.baselines import BASELINES, Baseline, fit_baselines
from trendflow.training.config import BLEND, TrainingParams, library_of, prior_of
from trendflow.training.features import FeatureSpec, target_tasks
from trendflow.training.folds import Fold, left_censored, task_folds
from trendflow.training.metrics import (
    AGE_COLUMN,
    age_buckets,
    bootstrap_intervals,
    metric_rows,
    metrics_frame,
    regression_metrics,
)
from trendflow.training.models import BlendModel, FittedModel, fit_model
from trendflow.training.tuning import tune_lightgbm

log = logging.getLogger(__name__)
TUNED = "lightgbm_sh_tuned"
BLEND_WEIGHTS = np.round(np.linspace(0.0, 1.0, 11), 2)


class Interval(BaseModel):
    """Prediction interval on the log1p scale: prediction + [residual_low, residual_high]."""

    model_config = ConfigDict(extra="forbid")

    level: float
    method: str = "validation_residual_quantiles"
    residual_low: float
    residual_high: float
    n: int


Model = FittedModel | BlendModel


@dataclass
class FoldResult:
    fold: Fold
    models: dict[str, Model]
    baselines: dict[str, Baseline]
    intervals: dict[str, Interval]
    valid_predictions: dict[str, np.ndarray]
    tuned_params: dict[str, Any] = field(default_factory=dict)


@dataclass
class TaskResult:
    target: str
    horizon: str
    split: str
    folds: list[FoldResult]
    valid_metrics: dict[str, dict[str, float]]  # algorithm -> metrics on the (pooled) valid rows
    rows: dict[str, int]  # pooled over folds
    champion: str
    blend_weights: dict[str, float] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.target}__{self.horizon}__{self.split}"

    # The deployable fold: the only one of `time` / `channel`, the latest of `walk_forward`.
    @property
    def models(self) -> dict[str, Model]:
        return self.folds[-1].models

    @property
    def baselines(self) -> dict[str, Baseline]:
        return self.folds[-1].baselines

    @property
    def intervals(self) -> dict[str, Interval]:
        return self.folds[-1].intervals


@dataclass
class TrainingResult:
    spec: FeatureSpec
    tasks: list[TaskResult]
    skipped: list[dict[str, str]] = field(default_factory=list)

    def task(self, target: str, horizon: str, split: str) -> TaskResult | None:
        return next(
            (t for t in self.tasks if (t.target, t.horizon, t.split) == (target, horizon, split)), None
        )

    def champions(self) -> dict[tuple[str, str, str], str]:
        return {(t.target, t.horizon, t.split): t.champion for t in self.tasks}


def _target(table: pd.DataFrame, rows: np.ndarray, target: str, horizon: str) -> np.ndarray:
    return pd.to_numeric(table.loc[rows, target_columns(target, horizon)["target"]]).to_numpy(dtype="float64")


def selection_score(metrics: dict[str, float], metric: str) -> float:
    """Lower is better; NaN is worst."""
    value = metrics.get(metric, math.nan)
    if not np.isfinite(value):
        return math.inf
    return -value if metric == "spearman" else value


def _skip_reason(folds: list[Fold], params: TrainingParams, split: str) -> str | None:
    if not folds:
        wf = params.walk_forward
        return (
            "no walk-forward fold has enough rows (walk_forward.min_train_rows "
            f"{wf.min_train_rows}, min_valid_rows {wf.min_valid_rows}, min_test_rows {wf.min_test_rows})"
        )
    counts = {k: sum(f.counts()[k] for f in folds) for k in ("train", "valid", "test")}
    if split != "walk_forward" and counts["train"] < params.min_train_rows:
        return f"{counts['train']} training rows < min_train_rows {params.min_train_rows}"
    if split != "walk_forward" and counts["valid"] < params.min_valid_rows:
        return f"{counts['valid']} validation rows < min_valid_rows {params.min_valid_rows}"
    if counts["test"] < params.min_test_rows:
        return f"{counts['test']} test rows < min_test_rows {params.min_test_rows}"
    return None


def fit_all(table: pd.DataFrame, spec: FeatureSpec, params: TrainingParams) -> TrainingResult:
    """Every (target, horizon, split) task; `params.n_jobs` of them at a time (threads: CatBoost
    and LightGBM release the GIL while they fit, and each model keeps `params.threads` threads,
    so the models are the same as one at a time). Results keep the task order."""
    todo: list[tuple[str, str, str, list[Fold]]] = []
    skipped: list[dict[str, str]] = []
    for target, horizon in target_tasks(table, params):
        for split in params.splits:
            folds = task_folds(table, target, horizon, split, params)
            reason = _skip_reason(folds, params, split)
            if reason:
                log.warning("skipping %s@%s on the %s split: %s", target, horizon, split, reason)
                skipped.append({"target": target, "horizon": horizon, "split": split, "reason": reason})
                continue
            todo.append((target, horizon, split, folds))

    def fit(item: tuple[str, str, str, list[Fold]]) -> TaskResult:
        return _fit_task(table, spec, params, *item)

    jobs = params.jobs(len(todo))
    if jobs <= 1:
        tasks = [fit(item) for item in todo]
    else:
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="trendflow-fit") as pool:
            tasks = list(pool.map(fit, todo))
    return TrainingResult(spec=spec, tasks=tasks, skipped=skipped)


def _interval(residuals: np.ndarray, params: TrainingParams) -> Interval:
    alpha = (1.0 - params.interval_level) / 2.0
    return Interval(
        level=params.interval_level,
        residual_low=float(np.quantile(residuals, alpha)),
        residual_high=float(np.quantile(residuals, 1.0 - alpha)),
        n=len(residuals),
    )


def _fit_fold(
    table: pd.DataFrame, spec: FeatureSpec, params: TrainingParams, target: str, horizon: str, fold: Fold
) -> FoldResult:
    train, valid = table.loc[fold.train], table.loc[fold.valid]
    y_train, y_valid = (
        _target(table, fold.train, target, horizon),
        _target(table, fold.valid, target, horizon),
    )
    baselines = fit_baselines(train, y_train, target)
    out = FoldResult(fold, {}, baselines, {}, {})
    for algorithm in params.algorithms:
        if algorithm == BLEND:
            continue
        overrides = None
        name = prior_of(algorithm)
        prior = baselines[name] if name else None
        if algorithm == TUNED:
            overrides = tune_lightgbm(train, y_train, valid, y_valid, spec, params, prior)
            out.tuned_params = overrides
        model = fit_model(algorithm, train, y_train, valid, y_valid, spec, params, prior, overrides)
        pred = model.predict(valid)
        out.models[algorithm] = model
        out.valid_predictions[algorithm] = pred
        out.intervals[algorithm] = _interval(y_valid - pred, params)
    return out


def _pooled(folds: list[FoldResult], table: pd.DataFrame, target: str, horizon: str) -> np.ndarray:
    return np.concatenate([_target(table, f.fold.valid, target, horizon) for f in folds])


def _add_blend(
    folds: list[FoldResult], y_valid: np.ndarray, metrics: dict[str, dict[str, float]], params: TrainingParams
) -> dict[str, float]:
    """Best CatBoost and best LightGBM algorithm (validation), mixed with the validation-best weight."""
    best: dict[str, str] = {}
    for library in ("catboost", "lightgbm"):
        names = [a for a in metrics if a != BLEND and library_of(a) == library]
        best[library] = min(names, key=lambda a: (selection_score(metrics[a], params.selection_metric), a))
    cb, lg = best["catboost"], best["lightgbm"]
    p_cb = np.concatenate([f.valid_predictions[cb] for f in folds])
    p_lg = np.concatenate([f.valid_predictions[lg] for f in folds])
    weight = min(
        BLEND_WEIGHTS,
        key=lambda w: (
            selection_score(regression_metrics(y_valid, w * p_cb + (1 - w) * p_lg), params.selection_metric),
            abs(w - 0.5),
        ),
    )
    for f in folds:
        model = BlendModel(
            [(float(weight), f.models[cb]), (float(1 - weight), f.models[lg])], f.models[cb].spec
        )
        pred = weight * f.valid_predictions[cb] + (1 - weight) * f.valid_predictions[lg]
        f.models[BLEND] = model
        f.valid_predictions[BLEND] = pred
    return {cb: float(weight), lg: float(1 - weight)}


def _fit_task(
    table: pd.DataFrame,
    spec: FeatureSpec,
    params: TrainingParams,
    target: str,
    horizon: str,
    split: str,
    folds: list[Fold],
) -> TaskResult:
    results = [_fit_fold(table, spec, params, target, horizon, fold) for fold in folds]
    y_valid = _pooled(results, table, target, horizon)

    def pooled_metrics(name: str) -> dict[str, float]:
        return regression_metrics(y_valid, np.concatenate([f.valid_predictions[name] for f in results]))

    valid_metrics = {a: pooled_metrics(a) for a in results[0].models}
    blend_weights: dict[str, float] = {}
    if BLEND in params.algorithms:
        blend_weights = _add_blend(results, y_valid, valid_metrics, params)
        valid_metrics[BLEND] = pooled_metrics(BLEND)
    for f in results:
        y_fold = _target(table, f.fold.valid, target, horizon)
        if BLEND in f.models:
            f.intervals[BLEND] = _interval(y_fold - f.valid_predictions[BLEND], params)
    # ties (a blend of weight 0 or 1 is its member) go to the simpler, non-blend model
    champion = min(
        valid_metrics,
        key=lambda a: (selection_score(valid_metrics[a], params.selection_metric), a == BLEND, a),
    )
    counts = {k: sum(f.fold.counts()[k] for f in results) for k in ("train", "valid", "test")}
    log.info(
        "%s@%s %s split (%d fold(s), rows %s): champion %s on validation %s %.4f",
        target,
        horizon,
        split,
        len(results),
        counts,
        champion,
        params.selection_metric,
        valid_metrics[champion][params.selection_metric],
    )
    return TaskResult(
        target=target,
        horizon=horizon,
        split=split,
        folds=results,
        valid_metrics=valid_metrics,
        rows=counts,
        champion=champion,
        blend_weights=blend_weights,
    )


def evaluate_all(
    result: TrainingResult, table: pd.DataFrame, params: TrainingParams
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(metrics, test predictions) of every model and baseline on the valid and test rows.

    Walk-forward folds are pooled: one metric row per model over the rows of every fold. Test
    rows of bucket `all` carry seeded bootstrap intervals of Spearman and MAE (the same
    resamples for every model of a task, so their intervals are comparable).
    """
    metric_list: list[dict] = []
    predictions: list[pd.DataFrame] = []
    censored = left_censored(table)
    for task in result.tasks:
        for eval_split in ("valid", "test"):
            pooled: dict[str, list[np.ndarray]] = {}
            ys, bucket_parts, flags = [], [], []
            for f in task.folds:
                sel = f.fold.rows(eval_split)
                frame = table.loc[sel]
                y = _target(table, sel, task.target, task.horizon)
                buckets = (
                    age_buckets(frame[AGE_COLUMN], params)
                    if AGE_COLUMN in frame
                    else np.full(len(y), "age_unknown", dtype=object)
                )
                ys.append(y)
                bucket_parts.append(buckets)
                flags.append(censored[sel])
                outputs = {name: model.predict(frame) for name, model in f.models.items()}
                outputs.update({name: f.baselines[name].predict(frame) for name in BASELINES})
                for name, pred in outputs.items():
                    pooled.setdefault(name, []).append(pred)
                    if name in f.intervals:
                        iv = f.intervals[name]
                        pooled.setdefault(f"{name}:low", []).append(pred + iv.residual_low)
                        pooled.setdefault(f"{name}:high", []).append(pred + iv.residual_high)
                    if eval_split == "test":
                        predictions.append(
                            pd.DataFrame(
                                {
                                    "target": task.target,
                                    "horizon": task.horizon,
                                    "model": name,
                                    "split": task.split,
                                    "eval_split": eval_split,
                                    "fold": f.fold.name,
                                    "platform_id": frame["platform_id"].astype(str).to_numpy(),
                                    "video_id": frame["video_id"].astype(str).to_numpy(),
                                    "bucket": buckets,
                                    "left_censored": censored[sel],
                                    "actual": y,
                                    "predicted": pred,
                                }
                            )
                        )
            y_all = np.concatenate(ys)
            buckets_all = np.concatenate(bucket_parts)
            flags_all = np.concatenate(flags)
            for name in [*task.folds[0].models, *BASELINES]:
                pred = np.concatenate(pooled[name])
                bounds = (
                    (np.concatenate(pooled[f"{name}:low"]), np.concatenate(pooled[f"{name}:high"]))
                    if f"{name}:low" in pooled
                    else None
                )
                keys = {
                    "target": task.target,
                    "horizon": task.horizon,
                    "model": name,
                    "split": task.split,
                    "eval_split": eval_split,
                }
                rows = metric_rows(keys, y_all, pred, buckets_all, params, bounds, flags_all)
                if eval_split == "test" and params.bootstrap.n > 0:
                    rows[0].update(
                        bootstrap_intervals(
                            y_all, pred, params.bootstrap.n, params.bootstrap.level, params.seed
                        )
                    )
                metric_list.extend(rows)
    metrics = metrics_frame(metric_list)
    preds = pd.concat(predictions, ignore_index=True) if predictions else pd.DataFrame()
    return metrics, preds
