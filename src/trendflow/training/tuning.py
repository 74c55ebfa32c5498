"""Bounded Optuna search for `lightgbm_sh_tuned`, on the validation rows only.

Each trial fits `lightgbm_sh` (Szabo-Huberman prior, early stopping on the validation rows) with
sampled LightGBM parameters and scores its validation RMSE; the best parameters train the final
model. The sampler is seeded and the study runs trials one at a time, so a search is
reproducible; `tuning.n_trials` and `tuning.timeout_s` bound it. The test rows are never seen.
Optuna is an optional dependency (`pip install trendflow[tuning]`).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.training.baselines import Baseline
from trendflow.training.config import TrainingParams
from trendflow.training.features import FeatureSpec

log = logging.getLogger(__name__)

# The search space: bounded, around the defaults of conf/base/parameters_training.yml.
SPACE = {
    "num_leaves": (4, 48),
    "min_data_in_leaf": (5, 60),
    "learning_rate": (0.01, 0.2),
    "feature_fraction": (0.5, 1.0),
    "lambda_l2": (1e-3, 30.0),
}


def tune_lightgbm(
    train: pd.DataFrame,
    y_train: np.ndarray,
    valid: pd.DataFrame,
    y_valid: np.ndarray,
    spec: FeatureSpec,
    params: TrainingParams,
    prior: Baseline,
) -> dict[str, Any]:
    """The best LightGBM overrides found on the validation rows."""
    try:
        import optuna
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise TrendFlowError(
            ErrorCode.DEPENDENCY_MISSING,
            "lightgbm_sh_tuned needs optuna: pip install 'trendflow[tuning]' (or drop it from algorithms)",
        ) from exc
    from trendflow.training.metrics import regression_metrics
    from trendflow.training.models import fit_model

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: optuna.Trial) -> float:
        overrides = {
            "num_leaves": trial.suggest_int("num_leaves", *SPACE["num_leaves"]),
            "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", *SPACE["min_data_in_leaf"]),
            "learning_rate": trial.suggest_float("learning_rate", *SPACE["learning_rate"], log=True),
            "feature_fraction": trial.suggest_float("feature_fraction", *SPACE["feature_fraction"]),
            "lambda_l2": trial.suggest_float("lambda_l2", *SPACE["lambda_l2"], log=True),
        }
        model = fit_model("lightgbm_sh", train, y_train, valid, y_valid, spec, params, prior, overrides)
        return regression_metrics(y_valid, model.predict(valid))["rmse"]

    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=params.seed))
    study.optimize(objective, n_trials=params.tuning.n_trials, timeout=params.tuning.timeout_s, n_jobs=1)
    log.info(
        "optuna: %d trials, best validation rmse %.4f with %s",
        len(study.trials),
        study.best_value,
        study.best_params,
    )
    return dict(study.best_params)
