"""CatBoost and LightGBM behind one small interface: fit with early stopping, predict, TreeSHAP.

A model with a `prior` (the `_sh` algorithms) predicts prior(row) + trees(row): the fitted
Szabo-Huberman line is the init score (LightGBM) / baseline (CatBoost) of every row, so the
trees learn only the residual. TreeSHAP then attributes the trees' part; the prior joins the
per-row base value, so contributions still sum to the prediction.

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
from trendflow.training.baselines import Baseline
from trendflow.training.config import Algorithm, TrainingParams, is_monotone, library_of, uses_prior
from trendflow.training.features import FeatureSpec, model_matrix


@dataclass
class FittedModel:
    """One trained regressor of log1p(delta) with the spec it was trained on."""

    algorithm: Algorithm
    native: Any  # CatBoostRegressor | lightgbm.Booster
    spec: FeatureSpec
    best_iteration: int
    prior: Baseline | None = None  # the init score of every row (the `_sh` algorithms)

    @property
    def library(self) -> str:
        return library_of(self.algorithm)

    # -- prediction ------------------------------------------------------------------------
    def matrix(self, frame: pd.DataFrame) -> pd.DataFrame:
        return model_matrix(frame, self.spec, self.library)

    def offset(self, frame: pd.DataFrame) -> np.ndarray:
        return self.prior.predict(frame) if self.prior is not None else np.zeros(len(frame))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        x = self.matrix(frame)
        if self.library == "catboost":
            trees = np.asarray(self.native.predict(self._pool(x)), dtype="float64")
        else:
            trees = np.asarray(self.native.predict(x, num_iteration=self.best_iteration), dtype="float64")
        return trees + self.offset(frame)

    def contributions(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """TreeSHAP: (per-feature contributions (n, F), base values (n,)); they sum to the prediction."""
        contrib, base = self._tree_contributions(frame)
        return contrib, base + self.offset(frame)

    def _tree_contributions(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        x = self.matrix(frame)
        if self.library == "catboost":
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
        if self.library == "catboost":
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
        return ".cbm" if self.library == "catboost" else ".lgb.txt"

    def to_bytes(self) -> bytes:
        if self.library == "lightgbm":
            return self.native.model_to_string(num_iteration=self.best_iteration).encode()
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.cbm")
            self.native.save_model(path, format="cbm")
            with open(path, "rb") as handle:
                return handle.read()

    @classmethod
    def from_bytes(
        cls,
        algorithm: Algorithm,
        data: bytes,
        spec: FeatureSpec,
        best_iteration: int,
        prior: Baseline | None = None,
    ) -> FittedModel:
        if library_of(algorithm) == "lightgbm":
            native: Any = lgb.Booster(model_str=data.decode())
        else:
            native = CatBoostRegressor()
            native.load_model(stream=io.BytesIO(data), format="cbm")
        return cls(algorithm, native, spec, best_iteration, prior)


@dataclass
class BlendModel:
    """`blend`: weight * CatBoost member + (1 - weight) * LightGBM member (weight chosen on the
    validation rows). TreeSHAP is linear, so the members' weighted contributions sum to the blend."""

    members: list[tuple[float, FittedModel]]
    spec: FeatureSpec
    algorithm: str = "blend"
    best_iteration: int = 0
    prior: Baseline | None = None

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return sum(w * m.predict(frame) for w, m in self.members)

    def contributions(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        parts = [(w, *m.contributions(frame)) for w, m in self.members]
        return sum(w * c for w, c, _ in parts), sum(w * b for w, _, b in parts)

    def importance(self) -> dict[str, float]:
        out = dict.fromkeys(self.spec.features, 0.0)
        for w, m in self.members:
            for f, v in m.importance().items():
                out[f] += w * v
        return out


def monotone_vector(spec: FeatureSpec, params: TrainingParams) -> list[int]:
    wanted = set(params.monotone_features)
    return [1 if f in wanted and f not in spec.categorical else 0 for f in spec.features]


def fit_model(
    algorithm: Algorithm,
    train: pd.DataFrame,
    y_train: np.ndarray,
    valid: pd.DataFrame,
    y_valid: np.ndarray,
    spec: FeatureSpec,
    params: TrainingParams,
    prior: Baseline | None = None,
    overrides: dict[str, Any] | None = None,
) -> FittedModel:
    """One model; `prior` is required by the `_sh` algorithms (the fitted Szabo-Huberman line)."""
    if algorithm == "blend":
        raise TrendFlowError(ErrorCode.CONFIG_ERROR, "blend is built from fitted members, not fit")
    if uses_prior(algorithm) and prior is None:
        raise TrendFlowError(ErrorCode.CONFIG_ERROR, f"{algorithm} needs the Szabo-Huberman prior")
    prior = prior if uses_prior(algorithm) else None
    mono = monotone_vector(spec, params) if is_monotone(algorithm) else None
    if library_of(algorithm) == "catboost":
        return _fit_catboost(algorithm, train, y_train, valid, y_valid, spec, params, prior, mono, overrides)
    return _fit_lightgbm(algorithm, train, y_train, valid, y_valid, spec, params, prior, mono, overrides)


def _offsets(prior: Baseline | None, *frames: pd.DataFrame) -> list[np.ndarray | None]:
    return [prior.predict(f) if prior is not None else None for f in frames]


def _fit_catboost(
    algorithm: Algorithm,
    train: pd.DataFrame,
    y_train: np.ndarray,
    valid: pd.DataFrame,
    y_valid: np.ndarray,
    spec: FeatureSpec,
    params: TrainingParams,
    prior: Baseline | None,
    mono: list[int] | None,
    overrides: dict[str, Any] | None,
) -> FittedModel:
    p = params.catboost
    config: dict[str, Any] = {
        "iterations": p.iterations,
        "learning_rate": p.learning_rate,
        "depth": p.depth,
        "l2_leaf_reg": p.l2_leaf_reg,
        "loss_function": p.loss_function,
        "one_hot_max_size": p.one_hot_max_size,
        **(overrides or {}),
    }
    if mono is not None and any(mono):
        config["monotone_constraints"] = mono
    if prior is not None:
        config.setdefault("model_shrink_rate", 0.0)  # CatBoost cannot shrink with a baseline
    model = CatBoostRegressor(
        **config,
        random_seed=params.seed,
        thread_count=params.threads,
        early_stopping_rounds=params.early_stopping_rounds,
        use_best_model=True,
        allow_writing_files=False,
        verbose=False,
    )
    cats = spec.categorical or None
    base_train, base_valid = _offsets(prior, train, valid)
    model.fit(
        Pool(model_matrix(train, spec, "catboost"), y_train, cat_features=cats, baseline=base_train),
        eval_set=Pool(model_matrix(valid, spec, "catboost"), y_valid, cat_features=cats, baseline=base_valid),
    )
    return FittedModel(algorithm, model, spec, int(model.get_best_iteration() or 0) + 1, prior)


def _fit_lightgbm(
    algorithm: Algorithm,
    train: pd.DataFrame,
    y_train: np.ndarray,
    valid: pd.DataFrame,
    y_valid: np.ndarray,
    spec: FeatureSpec,
    params: TrainingParams,
    prior: Baseline | None,
    mono: list[int] | None,
    overrides: dict[str, Any] | None,
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
        **(overrides or {}),
    }
    if mono is not None and any(mono):
        config["monotone_constraints"] = mono
    cats = spec.categorical or "auto"
    base_train, base_valid = _offsets(prior, train, valid)
    dtrain = lgb.Dataset(
        model_matrix(train, spec, "lightgbm"),
        y_train,
        categorical_feature=cats,
        free_raw_data=False,
        init_score=base_train,
    )
    dvalid = lgb.Dataset(
        model_matrix(valid, spec, "lightgbm"),
        y_valid,
        categorical_feature=cats,
        reference=dtrain,
        init_score=base_valid,
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
    return FittedModel(algorithm, booster, spec, best, prior)
