"""Kedro datasets that write a training run into MLflow (the run kedro-mlflow opened).

- `MlflowMetricsBatchDataset`: a flat {name: value} dict -> run metrics, logged in batches
  (hundreds of metrics per run; one request per metric would be slow on sqlite).
- `MlflowTagsDataset`: a flat {name: value} dict -> run tags (shown when comparing runs).
- `MlflowModelBundleDataset`: a `ModelBundle` -> one MLflow model per bundled model, in its
  native flavour (catboost / lightgbm) with a signature built from the feature spec and the
  model card + feature spec in the model's metadata; each champion is registered as
  `<prefix>-<target>-<horizon>` and gets the alias (default `champion`).

Their class names start with `Mlflow` and they honour `_logging_activated`, so kedro-mlflow's
`disable_tracking` switches them off like its own datasets.
"""

from __future__ import annotations

import logging
import time
from importlib.metadata import version
from typing import Any

import mlflow
from kedro.io import AbstractDataset, DatasetError
from mlflow.entities import Metric
from mlflow.models import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec, Schema
from mlflow.utils.validation import MAX_METRICS_PER_BATCH, MAX_TAG_VAL_LENGTH

from trendflow.training.bundle import ModelBundle, ModelCard

log = logging.getLogger(__name__)


def registered_model_name(prefix: str, target: str, horizon: str) -> str:
    return f"{prefix}-{target}-{horizon}"


class _MlflowDataset(AbstractDataset):
    def __init__(self, run_id: str | None = None, metadata: dict[str, Any] | None = None) -> None:
        self._run_id = run_id
        self._logging_activated = True
        self.metadata = metadata

    def _active_run_id(self) -> str | None:
        if self._run_id:
            return self._run_id
        run = mlflow.active_run()
        return run.info.run_id if run else None

    def _run_or_skip(self, what: str) -> str | None:
        if not self._logging_activated:
            return None
        run_id = self._active_run_id()
        if run_id is None:
            log.warning("no active MLflow run: %s not logged (run the pipeline through `kedro run`)", what)
        return run_id

    def _describe(self) -> dict[str, Any]:
        return {"run_id": self._run_id}


class MlflowMetricsBatchDataset(_MlflowDataset):
    def load(self) -> dict[str, float]:
        run_id = self._active_run_id()
        if run_id is None:
            raise DatasetError("no MLflow run to read metrics from")
        return dict(MlflowClient().get_run(run_id).data.metrics)

    def save(self, data: dict[str, float]) -> None:
        run_id = self._run_or_skip("metrics")
        if run_id is None:
            return
        stamp = int(time.time() * 1000)
        metrics = [Metric(key, float(value), stamp, 0) for key, value in sorted(data.items())]
        client = MlflowClient()
        for i in range(0, len(metrics), MAX_METRICS_PER_BATCH):
            client.log_batch(run_id, metrics=metrics[i : i + MAX_METRICS_PER_BATCH])


class MlflowTagsDataset(_MlflowDataset):
    def load(self) -> dict[str, str]:
        run_id = self._active_run_id()
        if run_id is None:
            raise DatasetError("no MLflow run to read tags from")
        return dict(MlflowClient().get_run(run_id).data.tags)

    def save(self, data: dict[str, Any]) -> None:
        run_id = self._run_or_skip("tags")
        if run_id is None:
            return
        client = MlflowClient()
        for key, value in sorted(data.items()):
            client.set_tag(run_id, key, str(value)[:MAX_TAG_VAL_LENGTH])


def signature_of(bundle: ModelBundle, card: ModelCard) -> ModelSignature:
    """The model input of the native model: numeric features as double; categorical ones as
    strings for CatBoost and as training-category indices (double) for LightGBM."""
    spec = bundle.info.feature_spec
    cats = set(spec.categorical)
    cat_type = "string" if card.algorithm == "catboost" else "double"
    inputs = Schema([ColSpec(cat_type if f in cats else "double", f, required=False) for f in spec.features])
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec("double", "log1p_delta")]))


def model_metadata(bundle: ModelBundle, card: ModelCard) -> dict[str, Any]:
    return {
        "trendflow_model_card": card.model_dump(mode="json"),
        "trendflow_feature_spec": bundle.info.feature_spec.model_dump(mode="json"),
        "trendflow_bundle_id": bundle.info.bundle_id,
        "trendflow_dataset_fingerprint": bundle.info.manifest.dataset_fingerprint,
        # inference warns when a model learnt from SYNTHETIC rows (the demo corpus)
        "trendflow_table_rows": bundle.info.manifest.table_rows,
        "trendflow_synthetic_rows": bundle.info.manifest.synthetic_rows,
    }


class MlflowModelBundleDataset(_MlflowDataset):
    def __init__(
        self,
        registry: dict[str, Any] | None = None,
        run_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(run_id, metadata)
        reg = registry or {}
        self._register = bool(reg.get("enabled", True))
        self._prefix = str(reg.get("model_name_prefix", "trendflow"))
        self._alias = str(reg.get("alias", "champion"))
        self._log_all = bool(reg.get("log_all_models", True))
        self._registered: dict[str, dict[str, str]] = {}

    def load(self) -> dict[str, dict[str, str]]:
        """The models registered by the last save: {name: {version, alias, run_id}}."""
        return dict(self._registered)

    def save(self, data: ModelBundle) -> None:
        run_id = self._run_or_skip("models")
        if run_id is None:
            return
        client = MlflowClient()
        for card in data.info.models:
            if not (card.champion or self._log_all):
                continue
            info = self._log_model(data, card)
            if card.champion and self._register:
                name = registered_model_name(self._prefix, card.target, card.horizon)
                mv = mlflow.register_model(info.model_uri, name, await_registration_for=60)
                client.set_registered_model_alias(name, self._alias, mv.version)
                for key, value in {
                    "algorithm": card.algorithm,
                    "bundle_id": data.info.bundle_id,
                    "dataset_fingerprint": data.info.manifest.dataset_fingerprint,
                    "split": card.split,
                }.items():
                    client.set_model_version_tag(name, mv.version, key, value)
                self._registered[name] = {"version": str(mv.version), "alias": self._alias, "run_id": run_id}
                log.info(
                    "registered %s version %s as @%s (%s)", name, mv.version, self._alias, card.algorithm
                )

    def _log_model(self, bundle: ModelBundle, card: ModelCard):
        model = bundle.model(card)
        common = {
            "name": card.key,
            "signature": signature_of(bundle, card),
            "metadata": model_metadata(bundle, card),
            # explicit requirements: inferring them imports the model in a subprocess (slow)
            "pip_requirements": [f"{card.algorithm}=={version(card.algorithm)}"],
        }
        if card.algorithm == "catboost":
            return mlflow.catboost.log_model(model.native, **common)
        return mlflow.lightgbm.log_model(model.native, **common)
