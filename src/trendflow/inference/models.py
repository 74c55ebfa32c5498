"""Find the forecast models: the MLflow registry (by alias, the default) or a model bundle.

Default `registry`: the registry is where a model is promoted. Moving the alias (e.g.
`champion`) in the MLflow UI changes what inference uses without retraining, and every
prediction names the registered version it came from. `bundle` reads the directory the
training pipeline writes (data/06_models/model_bundle): no MLflow needed, e.g. offline or in
a container that ships the bundle.

Either way each (target, horizon) gets one model with the feature spec it was trained with,
its validation-residual interval and a reference that says exactly which model it is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from kedro.io import AbstractDataset

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.inference.schema import ModelRef
from trendflow.training.bundle import ModelCard, card_prior, load_bundle
from trendflow.training.config import library_of
from trendflow.training.features import FeatureSpec
from trendflow.training.models import BlendModel, FittedModel
from trendflow.training.train import Interval

log = logging.getLogger(__name__)
ModelSource = Literal["registry", "bundle"]


@dataclass
class ForecastModel:
    target: str
    horizon: str
    horizon_hours: float | None
    model: FittedModel | BlendModel
    interval: Interval
    ref: ModelRef
    # The training run's fitted feature transforms (PCA), applied unchanged to the feature row.
    transforms: dict[str, Any] | None = None
    table_rows: int | None = None  # rows of the training table the model came from
    synthetic_rows: int | None = None  # of which SYNTHETIC (trendflow.dataset.synthetic)


def from_bundle(path: str) -> list[ForecastModel]:
    bundle = load_bundle(path)
    out = []
    for card in bundle.info.champions():
        ref = ModelRef(
            source="bundle",
            algorithm=card.algorithm,
            name=card.key,
            version=bundle.info.bundle_id,
            uri=f"{path}/{card.file}",
            bundle_id=bundle.info.bundle_id,
            dataset_fingerprint=bundle.info.manifest.dataset_fingerprint,
            trained_on_split=card.split,
        )
        out.append(
            ForecastModel(
                card.target,
                card.horizon,
                card.horizon_hours,
                bundle.model(card),
                card.interval,
                ref,
                bundle.info.feature_transforms,
                bundle.info.manifest.table_rows,
                bundle.info.manifest.synthetic_rows,
            )
        )
    if not out:
        raise TrendFlowError(ErrorCode.MODEL_NOT_FOUND, f"the model bundle at {path} has no champion model")
    return out


def from_registry(
    prefix: str, alias: str, tracking_uri: str | None = None, registry_uri: str | None = None
) -> list[ForecastModel]:
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    if registry_uri:
        mlflow.set_registry_uri(registry_uri)
    where = registry_uri or tracking_uri or mlflow.get_tracking_uri()
    client = MlflowClient()
    try:
        names = sorted(
            rm.name for rm in client.search_registered_models(filter_string=f"name LIKE '{prefix}-%'")
        )
    except MlflowException as exc:
        raise TrendFlowError(
            ErrorCode.MODEL_NOT_FOUND, f"cannot read the MLflow registry at {where}: {exc}"
        ) from exc
    out = []
    for name in names:
        try:
            mv = client.get_model_version_by_alias(name, alias)
        except MlflowException:
            log.info("registered model %s has no @%s alias: skipped", name, alias)
            continue
        uri = f"models:/{name}/{mv.version}"
        try:
            meta = mlflow.models.get_model_info(uri).metadata or {}
            card = ModelCard.model_validate(meta["trendflow_model_card"])
            spec = FeatureSpec.model_validate(meta["trendflow_feature_spec"])
            if card.members:  # a blend: a pyfunc holding its members
                model: FittedModel | BlendModel = mlflow.pyfunc.load_model(uri).unwrap_python_model().model
            else:
                flavour = mlflow.catboost if library_of(card.algorithm) == "catboost" else mlflow.lightgbm
                model = FittedModel(
                    card.algorithm, flavour.load_model(uri), spec, card.best_iteration, card_prior(card)
                )
        except (MlflowException, KeyError, ValueError, OSError) as exc:
            raise TrendFlowError(
                ErrorCode.MODEL_LOAD_FAILED, f"cannot load {name}@{alias} (v{mv.version}): {exc}"
            ) from exc
        ref = ModelRef(
            source="registry",
            algorithm=card.algorithm,
            name=name,
            version=str(mv.version),
            alias=alias,
            uri=uri,
            bundle_id=meta.get("trendflow_bundle_id"),
            training_run_id=mv.run_id,
            dataset_fingerprint=meta.get("trendflow_dataset_fingerprint"),
            trained_on_split=card.split,
        )
        transforms = meta.get("trendflow_feature_transforms")
        rows, synthetic = meta.get("trendflow_table_rows"), meta.get("trendflow_synthetic_rows")
        out.append(
            ForecastModel(
                card.target,
                card.horizon,
                card.horizon_hours,
                model,
                card.interval,
                ref,
                transforms,
                int(rows) if rows is not None else None,
                int(synthetic) if synthetic is not None else None,
            )
        )
    if not out:
        raise TrendFlowError(
            ErrorCode.MODEL_NOT_FOUND,
            f"no model '{prefix}-<target>-<horizon>' with alias @{alias} in the MLflow registry at {where}: "
            "train with `kedro run --pipelines=training`, or predict from a bundle "
            "(model_source: bundle / --bundle)",
        )
    return out


def feature_transforms_of(models: list[ForecastModel]) -> dict[str, Any] | None:
    """The fitted feature transforms of the models (those of the first that has them)."""
    return next((m.transforms for m in models if m.transforms), None)


def load_models(
    source: ModelSource,
    bundle_path: str = "data/06_models/model_bundle",
    prefix: str = "trendflow",
    alias: str = "champion",
    tracking_uri: str | None = None,
    registry_uri: str | None = None,
) -> list[ForecastModel]:
    if source == "bundle":
        models = from_bundle(bundle_path)
    elif source == "registry":
        models = from_registry(prefix, alias, tracking_uri, registry_uri)
    else:
        raise TrendFlowError(
            ErrorCode.CONFIG_ERROR, f"model source must be registry or bundle, got {source!r}"
        )
    log.info(
        "forecast models (%s): %s", source, [f"{m.target}/{m.horizon}:{m.ref.algorithm}" for m in models]
    )
    return models


class ForecastModelsDataset(AbstractDataset[None, list[ForecastModel]]):
    """Catalog entry that resolves the forecast models (read-only)."""

    def __init__(
        self,
        source: ModelSource = "registry",
        bundle_path: str = "data/06_models/model_bundle",
        model_name_prefix: str = "trendflow",
        alias: str = "champion",
        tracking_uri: str | None = None,
        registry_uri: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._args = {
            "source": source,
            "bundle_path": bundle_path,
            "prefix": model_name_prefix,
            "alias": alias,
            "tracking_uri": tracking_uri,
            "registry_uri": registry_uri,
        }
        self.metadata = metadata

    def load(self) -> list[ForecastModel]:
        return load_models(**self._args)

    def save(self, data: None) -> None:
        raise TrendFlowError(ErrorCode.CONFIG_ERROR, "forecast models are written by the training pipeline")

    def _describe(self) -> dict[str, Any]:
        return dict(self._args)
