"""Nodes of the `training` pipeline: thin wrappers over `trendflow.training`.

select_features -> fit_models -> evaluate_models -> (comparison, report, bundle, MLflow)
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.dataset.schema import parse_duration
from trendflow.training import mlflow_runs, report
from trendflow.training.bundle import BundleInfo, ModelBundle, ModelCard, bundle_summary, model_key
from trendflow.training.config import BLEND, TrainingParams
from trendflow.training.features import FeatureSpec
from trendflow.training.features import select_features as _select_features
from trendflow.training.manifest import build_manifest
from trendflow.training.train import TrainingResult, evaluate_all, fit_all

log = logging.getLogger(__name__)


def select_features(table: pd.DataFrame, params: dict[str, Any]) -> dict[str, Any]:
    spec = _select_features(table, TrainingParams.parse(params))
    log.info(
        "features: %d (%d categorical), %d columns dropped",
        len(spec.features),
        len(spec.categorical),
        len(spec.dropped),
    )
    return spec.model_dump(mode="json")


def make_manifest(table: pd.DataFrame, metadata: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    return build_manifest(table, metadata, TrainingParams.parse(params)).model_dump(mode="json")


def fit_models(table: pd.DataFrame, feature_spec: dict[str, Any], params: dict[str, Any]) -> TrainingResult:
    result = fit_all(table, FeatureSpec.model_validate(feature_spec), TrainingParams.parse(params))
    if not result.tasks:
        raise TrendFlowError(
            ErrorCode.INVALID_REQUEST,
            f"no (target, horizon, split) had enough rows to train: {result.skipped}; build a larger table "
            "or lower training.min_train_rows / min_valid_rows / min_test_rows",
        )
    return result


def evaluate_models(
    result: TrainingResult, table: pd.DataFrame, params: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """(every metric, test predictions, the parent run's few metrics: champions and baselines)."""
    metrics, predictions = evaluate_all(result, table, TrainingParams.parse(params))
    return metrics, predictions, mlflow_runs.parent_metrics(metrics, result)


def build_child_runs(
    metrics: pd.DataFrame, result: TrainingResult, manifest: dict[str, Any]
) -> list[dict[str, Any]]:
    """One MLflow child run per (target, horizon, algorithm) with only its own metrics."""
    return mlflow_runs.child_runs(metrics, result, manifest)


def build_comparison(
    metrics: pd.DataFrame, manifest: dict[str, Any], result: TrainingResult
) -> tuple[str, dict[str, Any]]:
    champions = result.champions()
    table = report.comparison_table(metrics, champions)
    censored = report.censored_table(metrics, champions)
    return (
        report.comparison_markdown(table, manifest, result.skipped, censored),
        report.comparison_json(table, manifest, result.skipped, censored),
    )


def build_report(
    metrics: pd.DataFrame,
    predictions: pd.DataFrame,
    result: TrainingResult,
    manifest: dict[str, Any],
    params: dict[str, Any],
) -> str:
    p = TrainingParams.parse(params)
    importances = {
        f"{t.key}__{a}": m.importance()
        for t in result.tasks
        if t.split == p.deploy_split
        for a, m in t.models.items()
    }
    champions = result.champions()
    return report.html_report(
        metrics,
        predictions,
        importances,
        champions,
        manifest,
        result.skipped,
        [*p.bucket_labels(), "age_unknown"],
    )


def build_bundle(
    result: TrainingResult,
    metrics: pd.DataFrame,
    manifest: dict[str, Any],
    params: dict[str, Any],
    feature_transforms: dict[str, Any] | None = None,
) -> tuple[ModelBundle, ModelBundle, dict[str, Any]]:
    """The deploy split's models as a bundle (returned twice: local directory and MLflow), with
    the dataset's fitted feature transforms (PCA) that inference applies unchanged."""
    p = TrainingParams.parse(params)
    test = metrics[(metrics["eval_split"] == "test") & (metrics["bucket"] == "all")]
    cards: list[ModelCard] = []
    models = {}
    for task in result.tasks:
        if task.split != p.deploy_split:
            continue
        for algorithm, model in task.models.items():
            key = model_key(task.target, task.horizon, task.split, algorithm)
            row = test[
                (test["target"] == task.target)
                & (test["horizon"] == task.horizon)
                & (test["split"] == task.split)
                & (test["model"] == algorithm)
            ]
            members = (
                {
                    model_key(task.target, task.horizon, task.split, a): w
                    for a, w in task.blend_weights.items()
                }
                if algorithm == BLEND
                else {}
            )
            cards.append(
                ModelCard(
                    key=key,
                    target=task.target,
                    horizon=task.horizon,
                    horizon_hours=parse_duration(task.horizon).total_seconds() / 3600.0,
                    split=task.split,
                    algorithm=algorithm,
                    file="" if members else f"models/{key}{model.file_suffix}",
                    members=members,
                    sha256="",
                    best_iteration=model.best_iteration,
                    interval=task.intervals[algorithm],
                    rows=task.rows,
                    valid_metrics=_finite(task.valid_metrics[algorithm]),
                    test_metrics=_finite(
                        row.iloc[0][["n", "rmse", "mae", "spearman", "interval_coverage"]].to_dict()
                    )
                    if len(row)
                    else {},
                    baselines=task.baselines,
                    champion=algorithm == task.champion,
                )
            )
            models[key] = model
    created = datetime.now(UTC)
    bundle_id = f"{created.strftime('%Y%m%dT%H%M%SZ')}-{manifest['dataset_fingerprint'][:8]}-{p.digest()[:8]}"
    info = BundleInfo(
        bundle_id=bundle_id,
        created_at=created,
        deploy_split=p.deploy_split,
        selection_metric=p.selection_metric,
        feature_spec=result.spec,
        feature_transforms=feature_transforms,
        manifest=manifest,
        models=cards,
    )
    bundle = ModelBundle(info=info, models=models)
    summary = bundle_summary(info)
    log.info("model bundle %s: champions %s", bundle_id, summary["champions"])
    tags = {
        "mlflow.runName": f"{mlflow_runs.run_prefix(manifest)}-training",
        "trendflow.bundle_id": bundle_id,
        "trendflow.dataset_fingerprint": manifest["dataset_fingerprint"],
        "trendflow.training_config_digest": manifest["training_config_digest"],
        "trendflow.git_commit": manifest["git"]["commit"],
        "trendflow.synthetic_rows": manifest["synthetic_rows"],
        "trendflow.champions": summary["champions"],
        **{
            f"trendflow.tuned.{task.key}.{f.fold.name}": json.dumps(f.tuned_params, sort_keys=True)
            for task in result.tasks
            for f in task.folds
            if f.tuned_params
        },
    }
    return bundle, bundle, tags


def _finite(values: dict[str, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for k, v in values.items():
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        out[k] = f if f == f and abs(f) != float("inf") else None
    return out
