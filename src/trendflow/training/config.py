"""Parameters of the `training` pipeline (conf/base/parameters_training.yml), validated.

Every knob that changes a model or a metric lives here, so the MLflow run's flattened params
say exactly what a training run did (docs/training.md explains each one).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from trendflow.contracts.errors import ErrorCode, TrendFlowError

Algorithm = Literal["catboost", "lightgbm"]
SplitKind = Literal["time", "channel"]
SPLIT_COLUMN = {"time": "split_time", "channel": "split_channel"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FeatureParams(_Strict):
    exclude: list[str] = Field(default_factory=list, description="Columns never used as features.")
    exclude_prefixes: list[str] = Field(default_factory=list, description="Column prefixes never used.")
    # A string column with more distinct values than this on training rows is free text or an
    # identifier, not a category: it would only let the trees memorise rows.
    max_categories: int = Field(200, ge=2)
    drop_constant: bool = True  # all-missing or single-valued on training rows


class CatBoostParams(_Strict):
    iterations: int = Field(2000, ge=1)
    learning_rate: float = Field(0.05, gt=0)
    depth: int = Field(6, ge=1, le=16)
    l2_leaf_reg: float = Field(3.0, ge=0)
    loss_function: str = "RMSE"
    one_hot_max_size: int = Field(4, ge=1)


class LightGBMParams(_Strict):
    num_boost_round: int = Field(2000, ge=1)
    learning_rate: float = Field(0.05, gt=0)
    num_leaves: int = Field(31, ge=2)
    min_data_in_leaf: int = Field(20, ge=1)
    feature_fraction: float = Field(0.9, gt=0, le=1)
    bagging_fraction: float = Field(0.9, gt=0, le=1)
    bagging_freq: int = Field(1, ge=0)
    lambda_l2: float = Field(1.0, ge=0)
    min_data_per_group: int = Field(20, ge=1)
    cat_smooth: float = Field(10.0, ge=0)
    objective: str = "regression"


class TrainingParams(_Strict):
    seed: int = 42
    threads: int = Field(2, ge=1, description="thread_count (CatBoost) / num_threads (LightGBM)")
    targets: list[str] | None = None  # None: every target present in the table
    horizons: list[str] | None = None  # None: every horizon present in the table
    splits: list[SplitKind] = Field(default_factory=lambda: ["time", "channel"])
    algorithms: list[Algorithm] = Field(default_factory=lambda: ["catboost", "lightgbm"])
    early_stopping_rounds: int = Field(100, ge=1)
    min_train_rows: int = Field(30, ge=2)
    min_valid_rows: int = Field(10, ge=2)
    min_test_rows: int = Field(5, ge=1)
    # Bucket edges (hours) of video_age_hours_at_snapshot1 for per-bucket metrics; the last
    # bucket is open-ended.
    age_bucket_edges: list[float] = Field(default_factory=lambda: [0.0, 6.0, 24.0, 72.0, 168.0])
    interval_level: float = Field(0.9, gt=0, lt=1)
    # The split whose models are deployed (registered, bundled): `time` trains on the past and
    # is judged on the future, as in production.
    deploy_split: SplitKind = "time"
    selection_metric: Literal["rmse", "mae", "spearman"] = "rmse"  # on the VALIDATION split
    features: FeatureParams = Field(default_factory=FeatureParams)
    catboost: CatBoostParams = Field(default_factory=CatBoostParams)
    lightgbm: LightGBMParams = Field(default_factory=LightGBMParams)

    @field_validator("age_bucket_edges")
    @classmethod
    def _edges(cls, edges: list[float]) -> list[float]:
        if len(edges) < 1 or any(b <= a for a, b in itertools.pairwise(edges)):
            raise ValueError("age_bucket_edges must be strictly increasing and non-empty")
        return [float(e) for e in edges]

    @model_validator(mode="after")
    def _deploy_split_trained(self) -> TrainingParams:
        if self.deploy_split not in self.splits:
            raise ValueError(f"deploy_split {self.deploy_split!r} must be one of splits {self.splits}")
        if not self.algorithms:
            raise ValueError("algorithms must list at least one of catboost, lightgbm")
        return self

    @classmethod
    def parse(cls, params: dict[str, Any] | TrainingParams | None) -> TrainingParams:
        if isinstance(params, TrainingParams):
            return params
        try:
            return cls.model_validate(params or {})
        except ValueError as exc:
            raise TrendFlowError(ErrorCode.CONFIG_ERROR, f"invalid training parameters: {exc}") from exc

    def digest(self) -> str:
        """sha256 of the canonical JSON of the parameters (the 'training config version')."""
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()

    def bucket_labels(self) -> list[str]:
        return [bucket_label(lo, hi) for lo, hi in self.bucket_bounds()]

    def bucket_bounds(self) -> list[tuple[float, float]]:
        edges = self.age_bucket_edges
        return [(edges[i], edges[i + 1] if i + 1 < len(edges) else math.inf) for i in range(len(edges))]


def bucket_label(lo: float, hi: float) -> str:
    def fmt(x: float) -> str:
        return f"{x:g}"

    return f"age_{fmt(lo)}h_plus" if math.isinf(hi) else f"age_{fmt(lo)}-{fmt(hi)}h"
