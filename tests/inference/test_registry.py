"""Models logged by the training pipeline's MLflow dataset are found again by alias."""

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.inference.models import ForecastModelsDataset, from_registry
from trendflow.training.mlflow_io import (
    MlflowMetricsBatchDataset,
    MlflowModelBundleDataset,
    MlflowTagsDataset,
)


@pytest.fixture
def tracking(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    previous = mlflow.get_tracking_uri()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # mlflow mirrors both URIs into environment variables; monkeypatch restores them afterwards
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow.set_experiment("trendflow-test")
    yield uri
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(previous)
    mlflow.set_registry_uri(None)


def test_registered_champions_load_by_alias(tracking, inference_setup):
    table, _, _, bundle = inference_setup
    registry = {"model_name_prefix": "tf", "alias": "champion", "log_all_models": True}
    with mlflow.start_run() as run:
        dataset = MlflowModelBundleDataset(registry=registry)
        dataset.save(bundle)
        MlflowMetricsBatchDataset().save({"views/7d/catboost/time/test/all/rmse": 0.5})
        MlflowTagsDataset().save({"trendflow.bundle_id": bundle.info.bundle_id})
    client = MlflowClient()
    data = client.get_run(run.info.run_id).data
    assert data.metrics["views/7d/catboost/time/test/all/rmse"] == 0.5
    assert data.tags["trendflow.bundle_id"] == bundle.info.bundle_id
    assert set(dataset.load()) == {"tf-views-7d", "tf-likes-7d"}
    logged = client.search_logged_models(experiment_ids=[run.info.experiment_id])
    assert len(logged) == 4  # both flavours for both targets

    models = from_registry("tf", "champion", tracking)
    assert {(m.target, m.horizon) for m in models} == {("views", "7d"), ("likes", "7d")}
    for m in models:
        card = bundle.info.champion(m.target, m.horizon)
        assert m.ref.algorithm == card.algorithm and m.ref.version == "1" and m.ref.alias == "champion"
        assert m.ref.training_run_id == run.info.run_id
        assert m.ref.dataset_fingerprint == bundle.info.manifest.dataset_fingerprint
        np.testing.assert_allclose(
            m.model.predict(table.head(20)), bundle.model(card).predict(table.head(20))
        )
        mv = client.get_model_version(m.ref.name, "1")
        assert mv.tags["algorithm"] == card.algorithm
        sig = mlflow.models.get_model_info(m.ref.uri).signature
        assert sig.inputs.input_names() == bundle.info.feature_spec.features

    # the same models again (same fingerprint, same validation rmse): version 2 does not beat
    # version 1 on validation -> @challenger; version 1 stays @champion
    with mlflow.start_run():
        MlflowModelBundleDataset(registry={**registry, "log_all_models": False}).save(bundle)
    assert {m.ref.version for m in from_registry("tf", "champion", tracking)} == {"1"}
    assert {m.ref.version for m in from_registry("tf", "challenger", tracking)} == {"2"}
    assert "does not beat champion v1" in client.get_model_version("tf-views-7d", "2").tags["promotion"]
    # a better validation metric on the same fingerprint takes @champion
    better_cards = [
        c.model_copy(update={"valid_metrics": {**c.valid_metrics, "rmse": c.valid_metrics["rmse"] / 2}})
        for c in bundle.info.models
    ]
    better = type(bundle)(info=bundle.info.model_copy(update={"models": better_cards}), models=bundle.models)
    with mlflow.start_run():
        MlflowModelBundleDataset(registry={**registry, "log_all_models": False}).save(better)
    assert {m.ref.version for m in from_registry("tf", "champion", tracking)} == {"3"}
    assert "beats champion v1" in client.get_model_version("tf-views-7d", "3").tags["promotion"]
    # moving the alias back changes what inference uses
    client.set_registered_model_alias("tf-views-7d", "champion", "1")
    versions = {
        m.ref.name: m.ref.version for m in ForecastModelsDataset("registry", model_name_prefix="tf").load()
    }
    assert versions == {"tf-views-7d": "1", "tf-likes-7d": "3"}


def test_no_registered_model_is_a_clear_error(tracking):
    with pytest.raises(TrendFlowError) as err:
        from_registry("nothing", "champion", tracking)
    assert err.value.code == ErrorCode.MODEL_NOT_FOUND
    assert "kedro run --pipelines=training" in err.value.message


def test_logging_is_skipped_without_an_active_run(tracking, inference_setup):
    bundle = inference_setup[3]
    MlflowModelBundleDataset(registry={"model_name_prefix": "skip"}).save(bundle)  # no run: nothing logged
    assert MlflowClient().search_registered_models(filter_string="name LIKE 'skip-%'") == []
