"""Parameters of the `training` pipeline (conf/base/parameters_training.yml), validated.

Every knob that changes a model or a metric lives here, so the MLflow run's flattened params
say exactly what a training run did (docs/training.md explains each one).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from trendflow.contracts.errors import ErrorCode, TrendFlowError

# Named algorithms (docs/training.md): `<library>` alone learns the target from scratch;
# `_sh` boosts on top of the Szabo-Huberman log-linear prior (the prior is the init score, the
# trees learn the residual); `_mono` adds monotone (non-decreasing) constraints on the snapshot1
# counters; `_ep` boosts on the early-popularity prior instead (log-linear in the snapshot1
# counters and the video's age, training/baselines.py); `lightgbm_sh_tuned` is `lightgbm_sh`
# after a bounded Optuna search on the validation rows; `blend` (params.blend) is a
# validation-chosen convex mix of the best CatBoost and the best LightGBM algorithm.
Algorithm = Literal[
    "catboost",
    "lightgbm",
    "catboost_sh",
    "lightgbm_sh",
    "catboost_sh_mono",
    "lightgbm_sh_mono",
    "lightgbm_sh_tuned",
    "catboost_ep",
    "lightgbm_ep",
    "catboost_ep_mono",
    "lightgbm_ep_mono",
    "blend",
]
BLEND = "blend"
SplitKind = Literal["time", "channel", "walk_forward"]
SPLIT_COLUMN = {"time": "split_time", "channel": "split_channel"}
# The table column whose `valid` rows are the inner validation rows of a walk-forward fold.
WALK_FORWARD_VALID_COLUMN = "split_channel"
LEFT_CENSORED_COLUMN = "left_censored"


def library_of(algorithm: str) -> Literal["catboost", "lightgbm"]:
    return "catboost" if algorithm.startswith("catboost") else "lightgbm"


def prior_of(algorithm: str) -> str | None:
    """The baseline whose prediction is the init score of `algorithm`'s trees, if any."""
    if "_sh" in algorithm:
        return "szabo_huberman"
    if "_ep" in algorithm:
        return "early_popularity"
    return None


def uses_prior(algorithm: str) -> bool:
    return prior_of(algorithm) is not None


def is_monotone(algorithm: str) -> bool:
    return algorithm.endswith("_mono")


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


class WalkForwardParams(_Strict):
    """Rolling-origin folds by snapshot1 time (docs/training.md, "Walk-forward evaluation").

    Origins: every distinct snapshot1 time after the first when there are at most `max_folds`,
    else the starts of `max_folds` equal blocks of the latest `test_fraction` of the rows. A fold
    tests the rows from its origin to the next; its training window is every row whose target
    was already observed at the origin (when `embargo_horizon`). Inside the window, rows whose
    channel is `valid` in `split_channel` are the fold's validation rows (early stopping and the
    champion choice), the rest train. Test rows of every fold are pooled.
    """

    max_folds: int = Field(10, ge=1, description="at most this many folds (origins)")
    test_fraction: float = Field(
        0.3, gt=0, lt=1, description="with more distinct times than max_folds: the latest rows tested"
    )
    embargo_horizon: bool = True
    min_train_rows: int = Field(30, ge=2)
    min_valid_rows: int = Field(5, ge=1)
    min_test_rows: int = Field(1, ge=1)


class BootstrapParams(_Strict):
    n: int = Field(1000, ge=0, description="resamples of the test rows; 0 = no intervals")
    level: float = Field(0.95, gt=0, lt=1)


class TuningParams(_Strict):
    """Optional bounded Optuna search of `lightgbm_sh_tuned` on the validation rows only."""

    n_trials: int = Field(20, ge=1)
    timeout_s: float = Field(60.0, gt=0, description="per fold")


class TrainingParams(_Strict):
    seed: int = 42
    threads: int = Field(1, ge=1, description="thread_count (CatBoost) / num_threads (LightGBM)")
    # (target, horizon, split) tasks fitted at once: "auto" = the CPU count (at most 8). The
    # machine runs n_jobs x threads fitting threads; each model's result does not depend on it.
    n_jobs: int | Literal["auto"] = Field(1, description="tasks fitted in parallel (threads)")
    targets: list[str] | None = None  # None: every target present in the table
    horizons: list[str] | None = None  # None: every horizon present in the table
    splits: list[SplitKind] = Field(default_factory=lambda: ["time", "channel"])
    algorithms: list[Algorithm] = Field(default_factory=lambda: ["catboost", "lightgbm"])
    # Snapshot1 counters the `_mono` algorithms keep non-decreasing (more early views/likes
    # never lower the forecast).
    monotone_features: list[str] = Field(
        default_factory=lambda: [
            "snapshot1__views_log1p",
            "snapshot1__likes_log1p",
            "snapshot1__comments_log1p",
        ]
    )
    walk_forward: WalkForwardParams = Field(default_factory=WalkForwardParams)
    bootstrap: BootstrapParams = Field(default_factory=BootstrapParams)
    tuning: TuningParams = Field(default_factory=TuningParams)
    # Rows flagged `left_censored` (already trending on an export's first day: their snapshot1
    # is not their first appearance) are left out of training and validation when true; they
    # are always reported apart.
    exclude_left_censored: bool = False
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
        if self.deploy_split == "walk_forward":
            raise ValueError("deploy_split cannot be walk_forward (an evaluation of several folds)")
        if not [a for a in self.algorithms if a != BLEND]:
            raise ValueError("algorithms must list at least one algorithm besides blend")
        if BLEND in self.algorithms and {library_of(a) for a in self.algorithms if a != BLEND} != {
            "catboost",
            "lightgbm",
        }:
            raise ValueError("blend needs at least one CatBoost and one LightGBM algorithm")
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

    def jobs(self, n_tasks: int) -> int:
        """Tasks to fit at once: `n_jobs` ("auto" = CPU count, at most 8), at most `n_tasks`."""
        wanted = min(os.cpu_count() or 1, 8) if self.n_jobs == "auto" else self.n_jobs
        return max(1, min(int(wanted), n_tasks))

    def bucket_labels(self) -> list[str]:
        return [bucket_label(lo, hi) for lo, hi in self.bucket_bounds()]

    def bucket_bounds(self) -> list[tuple[float, float]]:
        edges = self.age_bucket_edges
        return [(edges[i], edges[i + 1] if i + 1 < len(edges) else math.inf) for i in range(len(edges))]


def bucket_label(lo: float, hi: float) -> str:
    def fmt(x: float) -> str:
        return f"{x:g}"

    return f"age_{fmt(lo)}h_plus" if math.isinf(hi) else f"age_{fmt(lo)}-{fmt(hi)}h"
