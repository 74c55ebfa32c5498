"""Kedro datasets that write a training run into MLflow (the run kedro-mlflow opened).

- `MlflowMetricsBatchDataset`: a flat {name: value} dict -> run metrics, logged in batches
  (hundreds of metrics per run; one request per metric would be slow on sqlite).
- `MlflowTagsDataset`: a flat {name: value} dict -> run tags (shown when comparing runs).
- `MlflowChildRunsDataset`: [{name, tags, params, metrics}] -> one nested run each under the
  run kedro-mlflow opened (`mlflow_runs.child_runs`: a run per target x horizon x algorithm).
- `MlflowModelBundleDataset`: a `ModelBundle` -> one MLflow model per bundled model, in its
  native flavour (catboost / lightgbm) with a signature built from the feature spec and the
  model card + feature spec in the model's metadata; each champion is registered as
  `<prefix>-<target>-<horizon>`. It takes the alias (default `champion`) only when no current
  champion was trained on the same dataset fingerprint or when its validation metric
  (`selection_metric`) beats that champion's; otherwise it becomes `@challenger`. The decision
  and both values are model-version tags. A `blend` is logged as a pyfunc model (`BlendPyfunc`)
  whose artifacts are its members' native files.

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
from mlflow.entities import Metric, Param
from mlflow.models import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec, Schema
from mlflow.utils.validation import MAX_METRICS_PER_BATCH, MAX_TAG_VAL_LENGTH

from trendflow.training.bundle import ModelBundle, ModelCard, card_prior
from trendflow.training.config import library_of
from trendflow.training.features import FeatureSpec
from trendflow.training.models import BlendModel, FittedModel

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


class MlflowChildRunsDataset(_MlflowDataset):
    """Nested runs under the active (parent) run; `load` returns the children's ids by name."""

    def __init__(self, run_id: str | None = None, metadata: dict[str, Any] | None = None) -> None:
        super().__init__(run_id, metadata)
        self._children: dict[str, str] = {}

    def load(self) -> dict[str, str]:
        return dict(self._children)

    def save(self, data: list[dict[str, Any]]) -> None:
        parent_id = self._run_or_skip("child runs")
        if parent_id is None:
            return
        client = MlflowClient()
        parent = client.get_run(parent_id)
        stamp = int(time.time() * 1000)
        for child in data:
            run = client.create_run(
                parent.info.experiment_id,
                run_name=child["name"],
                tags={
                    "mlflow.parentRunId": parent_id,
                    **{k: str(v) for k, v in child.get("tags", {}).items()},
                },
            )
            metrics = [Metric(k, float(v), stamp, 0) for k, v in sorted(child.get("metrics", {}).items())]
            params = [Param(k, str(v)[:6000]) for k, v in sorted(child.get("params", {}).items())]
            for i in range(0, max(len(metrics), 1), MAX_METRICS_PER_BATCH):
                client.log_batch(
                    run.info.run_id,
                    metrics=metrics[i : i + MAX_METRICS_PER_BATCH],
                    params=params if i == 0 else [],
                )
            client.set_terminated(run.info.run_id)
            self._children[child["name"]] = run.info.run_id


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
    cat_type = "string" if library_of(card.algorithm) == "catboost" else "double"
    inputs = Schema([ColSpec(cat_type if f in cats else "double", f, required=False) for f in spec.features])
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec("double", "log1p_delta")]))


def model_metadata(bundle: ModelBundle, card: ModelCard) -> dict[str, Any]:
    return {
        "trendflow_model_card": card.model_dump(mode="json"),
        "trendflow_feature_spec": bundle.info.feature_spec.model_dump(mode="json"),
        "trendflow_feature_transforms": bundle.info.feature_transforms,
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
        self._challenger = str(reg.get("challenger_alias", "challenger"))
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
                metric = data.info.selection_metric
                value = card.valid_metrics.get(metric)
                alias, reason = self._promotion(
                    client, name, data.info.manifest.dataset_fingerprint, metric, value
                )
                client.set_registered_model_alias(name, alias, mv.version)
                for key, tag in {
                    "algorithm": card.algorithm,
                    "bundle_id": data.info.bundle_id,
                    "dataset_fingerprint": data.info.manifest.dataset_fingerprint,
                    "split": card.split,
                    f"valid_{metric}": "" if value is None else repr(float(value)),
                    "selection_metric": metric,
                    "promotion": reason,
                }.items():
                    client.set_model_version_tag(name, mv.version, key, tag)
                self._registered[name] = {"version": str(mv.version), "alias": alias, "run_id": run_id}
                log.info(
                    "registered %s version %s as @%s (%s): %s",
                    name,
                    mv.version,
                    alias,
                    card.algorithm,
                    reason,
                )

    def _promotion(
        self, client: MlflowClient, name: str, fingerprint: str, metric: str, value: float | None
    ) -> tuple[str, str]:
        """(alias, why): champion unless the current champion, on the same fingerprint, is at
        least as good on validation."""
        from mlflow.exceptions import MlflowException

        try:
            current = client.get_model_version_by_alias(name, self._alias)
        except MlflowException:
            return self._alias, "no current champion"
        tags = current.tags or {}
        if tags.get("dataset_fingerprint") != fingerprint:
            return (
                self._alias,
                f"current champion v{current.version} was trained on another dataset fingerprint",
            )
        old = tags.get(f"valid_{metric}")
        if old in (None, "") or value is None:
            return self._alias, f"current champion v{current.version} has no validation {metric}"
        better = float(value) > float(old) if metric == "spearman" else float(value) < float(old)
        if better:
            return (
                self._alias,
                f"validation {metric} {value:.6g} beats champion v{current.version}'s {float(old):.6g}",
            )
        return (
            self._challenger,
            f"validation {metric} {value:.6g} does not beat champion v{current.version}'s {float(old):.6g}",
        )

    def _log_model(self, bundle: ModelBundle, card: ModelCard):
        model = bundle.model(card)
        if card.members:
            return _log_blend(bundle, card)
        common = {
            "name": card.key,
            "signature": signature_of(bundle, card),
            "metadata": model_metadata(bundle, card),
            # explicit requirements: inferring them imports the model in a subprocess (slow)
            "pip_requirements": [f"{library_of(card.algorithm)}=={version(library_of(card.algorithm))}"],
        }
        # An `_sh` model's native output is the residual over its prior (in the card's metadata).
        if library_of(card.algorithm) == "catboost":
            return mlflow.catboost.log_model(model.native, **common)
        return mlflow.lightgbm.log_model(model.native, **common)


class BlendPyfunc(mlflow.pyfunc.PythonModel):
    """A `blend` in MLflow: artifact `blend.json` (feature spec, member cards, weights) and one
    native file per member; `self.model` is the `BlendModel` once loaded."""

    model: BlendModel | None = None

    def load_context(self, context) -> None:
        import json
        from pathlib import Path

        info = json.loads(Path(context.artifacts["blend.json"]).read_text())
        spec = FeatureSpec.model_validate(info["feature_spec"])
        members = []
        for entry in info["members"]:
            card = ModelCard.model_validate(entry["card"])
            data = Path(context.artifacts[card.key]).read_bytes()
            members.append(
                (
                    float(entry["weight"]),
                    FittedModel.from_bytes(card.algorithm, data, spec, card.best_iteration, card_prior(card)),
                )
            )
        self.model = BlendModel(members, spec)

    def predict(self, context, model_input, params=None):
        return self.model.predict(model_input)


def _log_blend(bundle: ModelBundle, card: ModelCard):
    import json
    import tempfile
    from pathlib import Path

    cards = {c.key: c for c in bundle.info.models}
    with tempfile.TemporaryDirectory() as tmp:
        artifacts: dict[str, str] = {}
        members = []
        for key, weight in sorted(card.members.items()):
            member = bundle.models[key]
            path = Path(tmp) / f"{key}{member.file_suffix}"
            path.write_bytes(member.to_bytes())
            artifacts[key] = str(path)
            members.append({"weight": weight, "card": cards[key].model_dump(mode="json")})
        info = {"feature_spec": bundle.info.feature_spec.model_dump(mode="json"), "members": members}
        (Path(tmp) / "blend.json").write_text(json.dumps(info))
        artifacts["blend.json"] = str(Path(tmp) / "blend.json")
        return mlflow.pyfunc.log_model(
            name=card.key,
            python_model=BlendPyfunc(),
            artifacts=artifacts,
            metadata=model_metadata(bundle, card),
            pip_requirements=[f"catboost=={version('catboost')}", f"lightgbm=={version('lightgbm')}"],
        )
