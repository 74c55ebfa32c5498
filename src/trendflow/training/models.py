"""CatBoost and LightGBM behind one small interface: fit with early stopping, predict, TreeSHAP.

Determinism: fixed seeds, a fixed thread count, LightGBM's `deterministic` mode with
column-wise histograms, and no files written by CatBoost. The same rows, features and
parameters give the same model bit for bit on the same machine and library versions.
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from catboost import CatBoostRegressor, Pool

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.training.config import Algorithm, TrainingParams
from trendflow.training.features import FeatureSpec, model_matrix


@dataclass
class FittedModel:
    """One trained regressor of log1p(delta) with the spec it was trained on."""

    algorithm: Algorithm
    native: Any  # CatBoostRegressor | lightgbm.Booster
    spec: FeatureSpec
    best_iteration: int

    # -- prediction ------------------------------------------------------------------------
    def matrix(self, frame: pd.DataFrame) -> pd.DataFrame:
        return model_matrix(frame, self.spec, self.algorithm)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        x = self.matrix(frame)
        if self.algorithm == "catboost":
            return np.asarray(self.native.predict(self._pool(x)), dtype="float64")
        return np.asarray(self.native.predict(x, num_iteration=self.best_iteration), dtype="float64")

    def contributions(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """TreeSHAP: (per-feature contributions (n, F), base values (n,)); they sum to the prediction."""
        x = self.matrix(frame)
        if self.algorithm == "catboost":
            shap = np.asarray(
                self.native.get_feature_importance(self._pool(x), type="ShapValues"), dtype="float64"
            )
        else:
            shap = np.asarray(
                self.native.predict(x, num_iteration=self.best_iteration, pred_contrib=True), dtype="float64"
            )
        return shap[:, :-1], shap[:, -1]

    def importance(self) -> dict[str, float]:
        """Global importance: CatBoost PredictionValuesChange, LightGBM total gain (normalised to 100)."""
        if self.algorithm == "catboost":
            values = np.asarray(self.native.get_feature_importance(), dtype="float64")
        else:
            values = np.asarray(
                self.native.feature_importance(importance_type="gain", iteration=self.best_iteration),
                dtype="float64",
            )
        total = values.sum()
        values = values / total * 100.0 if total > 0 else values
        return {f: float(v) for f, v in zip(self.spec.features, values, strict=True)}

    def _pool(self, x: pd.DataFrame) -> Pool:
        return Pool(x, cat_features=self.spec.categorical or None)

    # -- serialisation ---------------------------------------------------------------------
    @property
    def file_suffix(self) -> str:
        return ".cbm" if self.algorithm == "catboost" else ".lgb.txt"

    def to_bytes(self) -> bytes:
        if self.algorithm == "lightgbm":
            return self.native.model_to_string(num_iteration=self.best_iteration).encode()
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.cbm")
            self.native.save_model(path, format="cbm")
            with open(path, "rb") as handle:
                return handle.read()

    @classmethod
    def from_bytes(
        cls, algorithm: Algorithm, data: bytes, spec: FeatureSpec, best_iteration: int
    ) -> FittedModel:
        if algorithm == "lightgbm":
            native: Any = lgb.Booster(model_str=data.decode())
        else:
            native = CatBoostRegressor()
            native.load_model(stream=io.BytesIO(data), format="cbm")
        return cls(algorithm, native, spec, best_iteration)


def fit_model(
    algorithm: Algorithm,
    train: pd.DataFrame,
    y_train: np.ndarray,
    valid: pd.DataFrame,
    y_valid: np.ndarray,
    spec: FeatureSpec,
    params: TrainingParams,
) -> FittedModel:
    if algorithm == "catboost":
        return _fit_catboost(train, y_train, valid, y_valid, spec, params)
    if algorithm == "lightgbm":
        return _fit_lightgbm(train, y_train, valid, y_valid, spec, params)
    raise TrendFlowError(ErrorCode.CONFIG_ERROR, f"unknown algorithm {algorithm!r}")


def _fit_catboost(
    train: pd.DataFrame,
    y_train: np.ndarray,
    valid: pd.DataFrame,
    y_valid: np.ndarray,
    spec: FeatureSpec,
    params: TrainingParams,
) -> FittedModel:
    p = params.catboost
    model = CatBoostRegressor(
        iterations=p.iterations,
        learning_rate=p.learning_rate,
        depth=p.depth,
        l2_leaf_reg=p.l2_leaf_reg,
        loss_function=p.loss_function,
        one_hot_max_size=p.one_hot_max_size,
        random_seed=params.seed,
        thread_count=params.threads,
        early_stopping_rounds=params.early_stopping_rounds,
        use_best_model=True,
        allow_writing_files=False,
        verbose=False,
    )
    cats = spec.categorical or None
    model.fit(
        Pool(model_matrix(train, spec, "catboost"), y_train, cat_features=cats),
        eval_set=Pool(model_matrix(valid, spec, "catboost"), y_valid, cat_features=cats),
    )
    return FittedModel("catboost", model, spec, int(model.get_best_iteration() or 0) + 1)


def _fit_lightgbm(
    train: pd.DataFrame,
    y_train: np.ndarray,
    valid: pd.DataFrame,
    y_valid: np.ndarray,
    spec: FeatureSpec,
    params: TrainingParams,
) -> FittedModel:
    p = params.lightgbm
    config = {
        "objective": p.objective,
        "learning_rate": p.learning_rate,
        "num_leaves": p.num_leaves,
        "min_data_in_leaf": p.min_data_in_leaf,
        "feature_fraction": p.feature_fraction,
        "bagging_fraction": p.bagging_fraction,
        "bagging_freq": p.bagging_freq,
        "lambda_l2": p.lambda_l2,
        "min_data_per_group": p.min_data_per_group,
        "cat_smooth": p.cat_smooth,
        "seed": params.seed,
        "num_threads": params.threads,
        "deterministic": True,
        "force_col_wise": True,
        "verbosity": -1,
    }
    cats = spec.categorical or "auto"
    dtrain = lgb.Dataset(
        model_matrix(train, spec, "lightgbm"), y_train, categorical_feature=cats, free_raw_data=False
    )
    dvalid = lgb.Dataset(
        model_matrix(valid, spec, "lightgbm"), y_valid, categorical_feature=cats, reference=dtrain
    )
    booster = lgb.train(
        config,
        dtrain,
        num_boost_round=p.num_boost_round,
        valid_sets=[dvalid],
        valid_names=["valid"],
        callbacks=[lgb.early_stopping(params.early_stopping_rounds, verbose=False)],
    )
    best = int(booster.best_iteration or booster.current_iteration())
    return FittedModel("lightgbm", booster, spec, best)
