"""What a training run writes into MLflow: a readable parent run and one child run per model.

- The parent run (opened by kedro-mlflow) gets the parameters, the artifacts, the models and a
  few metrics: per (target, horizon, split) the champion's and the baselines' metrics on bucket
  `all` (`views/1d/channel/champion/test/spearman`). Its name is `<fingerprint[:8]>-training`.
- One child run per (target, horizon, algorithm), named
  `<fingerprint[:8]>-<target>-<horizon>-<algorithm>`, holds only that model's metrics (every
  split, evaluation split and bucket: `channel/test/all/spearman`), its own parameters
  (iterations per fold, blend weights, tuned parameters) and the splits it is champion of.

A run with thousands of metrics is slow to read and slows every model logged into it (MLflow
links a run's metrics to its logged models), so the parent stays small.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from trendflow.training.baselines import BASELINES
from trendflow.training.metrics import COVERAGE, METRICS
from trendflow.training.train import TrainingResult

_VALUES = ("n", *METRICS, COVERAGE, "spearman_low", "spearman_high", "mae_low", "mae_high")


def run_prefix(manifest: dict[str, Any]) -> str:
    return str(manifest.get("dataset_fingerprint") or "nofingerprint")[:8]


def _finite(row: dict[str, Any], names: tuple[str, ...]) -> dict[str, float]:
    out = {}
    for name in names:
        value = row.get(name)
        if (
            value is not None
            and isinstance(value, int | float | np.floating | np.integer)
            and np.isfinite(value)
        ):
            out[name] = float(value)
    return out


def parent_metrics(metrics: pd.DataFrame, result: TrainingResult) -> dict[str, float]:
    """Champion and baseline metrics (bucket `all`) per (target, horizon, split, eval split)."""
    champions = result.champions()
    out: dict[str, float] = {}
    rows = metrics[metrics["bucket"] == "all"]
    for row in rows.to_dict("records"):
        champion = champions.get((row["target"], row["horizon"], row["split"]))
        if row["model"] == champion:
            name = "champion"
        elif row["model"] in BASELINES:
            name = str(row["model"])
        else:
            continue
        prefix = f"{row['target']}/{row['horizon']}/{row['split']}/{name}/{row['eval_split']}"
        for metric, value in _finite(row, _VALUES).items():
            out[f"{prefix}/{metric}"] = value
    return out


def child_runs(
    metrics: pd.DataFrame, result: TrainingResult, manifest: dict[str, Any]
) -> list[dict[str, Any]]:
    """One entry per (target, horizon, algorithm): name, tags, params and its own metrics."""
    prefix = run_prefix(manifest)
    champions = result.champions()
    entries: dict[tuple[str, str, str], dict[str, Any]] = {}
    for task in result.tasks:
        for algorithm in task.valid_metrics:
            key = (task.target, task.horizon, algorithm)
            entry = entries.setdefault(
                key,
                {
                    "name": f"{prefix}-{task.target}-{task.horizon}-{algorithm}",
                    "tags": {
                        "trendflow.target": task.target,
                        "trendflow.horizon": task.horizon,
                        "trendflow.algorithm": algorithm,
                        "trendflow.dataset_fingerprint": str(manifest.get("dataset_fingerprint")),
                        "trendflow.champion_of_splits": "",
                    },
                    "params": {"algorithm": algorithm, "target": task.target, "horizon": task.horizon},
                    "metrics": {},
                },
            )
            if champions.get((task.target, task.horizon, task.split)) == algorithm:
                splits = [s for s in entry["tags"]["trendflow.champion_of_splits"].split(",") if s]
                entry["tags"]["trendflow.champion_of_splits"] = ",".join([*splits, task.split])
            for f in task.folds:
                model = f.models.get(algorithm)
                if model is not None and getattr(model, "best_iteration", 0):
                    entry["params"][f"{task.split}.{f.fold.name}.best_iteration"] = int(model.best_iteration)
                if algorithm == "lightgbm_sh_tuned" and f.tuned_params:
                    entry["params"][f"{task.split}.{f.fold.name}.tuned"] = json.dumps(
                        f.tuned_params, sort_keys=True
                    )
            if algorithm == "blend" and task.blend_weights:
                entry["params"][f"{task.split}.weights"] = json.dumps(task.blend_weights, sort_keys=True)
    for row in metrics.to_dict("records"):
        entry = entries.get((row["target"], row["horizon"], row["model"]))
        if entry is None:
            continue
        for metric, value in _finite(row, _VALUES).items():
            entry["metrics"][f"{row['split']}/{row['eval_split']}/{row['bucket']}/{metric}"] = value
    return [entries[k] for k in sorted(entries)]
