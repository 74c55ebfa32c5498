"""`kedro run` of dataset -> training -> inference in a project copy: files, MLflow run, registry."""

from __future__ import annotations

import json

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.training.tables import PROJECT_PARAMS, run_pipelines, trained_project


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    path = tmp_path_factory.getbasetemp() / "trained-project"
    path.mkdir(exist_ok=True)
    mp.chdir(path)
    yield trained_project(str(path))
    mp.undo()


@pytest.fixture(scope="module")
def client(project):
    uri = f"sqlite:///{project / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _all_runs(client):
    exp = client.get_experiment_by_name("trendflow")
    return client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])


def _runs(client):
    """The parent runs (one per training)."""
    return [r for r in _all_runs(client) if "mlflow.parentRunId" not in r.data.tags]


def _fingerprint(project):
    return json.loads((project / "data/05_model_input/dataset_metadata.json").read_text())[
        "dataset_fingerprint"
    ]


def test_training_writes_report_bundle_and_metrics(project):
    report = project / "data/08_reporting"
    html = (report / "training_report.html").read_text()
    assert html.count("data:image/png;base64,") >= 6
    comparison = json.loads((report / "training_comparison.json").read_text())
    assert {(r["target"], r["horizon"]) for r in comparison["rows"]} == {
        (t, h) for t in ("views", "likes") for h in ("7d", "14d")
    }
    assert (report / "training_comparison.md").read_text().startswith("# Training run")
    metrics = pd.read_csv(report / "training_metrics.csv")
    assert set(metrics["split"]) == {"time", "channel"} and set(metrics["eval_split"]) == {"valid", "test"}
    manifest = json.loads((report / "training_manifest.json").read_text())
    meta = json.loads((project / "data/05_model_input/dataset_metadata.json").read_text())
    assert (
        manifest["dataset_fingerprint"] == meta["dataset_fingerprint"]
        and manifest["dataset_fingerprint_verified"]
    )
    bundle = json.loads((project / "data/06_models/model_bundle/bundle.json").read_text())
    assert len([m for m in bundle["models"] if m["champion"]]) == 4


def test_one_mlflow_run_with_params_metrics_tags_artifacts_and_models(project, client):
    runs = _runs(client)
    prefix = _fingerprint(project)[:8]
    assert [r.info.run_name for r in runs] == [f"{prefix}-training"]  # dataset and inference: not tracked
    run = runs[0]
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["training.seed"] == "42" and params["training.catboost.iterations"] == "60"
    assert params["training.deploy_split"] == "time"
    metrics = run.data.metrics  # the parent: champions and baselines only
    assert "views/7d/channel/champion/test/spearman" in metrics
    assert "likes/14d/time/szabo_huberman/test/mae_high" in metrics
    assert not any("/catboost/" in k or "age_" in k for k in metrics)
    children = [r for r in _all_runs(client) if r.data.tags.get("mlflow.parentRunId") == run.info.run_id]
    assert sorted(r.info.run_name for r in children) == sorted(
        f"{prefix}-{t}-{h}-{a}"
        for t in ("views", "likes")
        for h in ("7d", "14d")
        for a in ("catboost", "lightgbm_sh", "blend")
    )
    child = next(r for r in children if r.info.run_name == f"{prefix}-views-7d-catboost")
    assert (
        "channel/test/all/spearman" in child.data.metrics and "time/test/age_0-6h/rmse" in child.data.metrics
    )
    assert child.data.tags["trendflow.algorithm"] == "catboost"
    tags = run.data.tags
    assert (
        tags["trendflow.dataset_fingerprint"]
        == json.loads((project / "data/05_model_input/dataset_metadata.json").read_text())[
            "dataset_fingerprint"
        ]
    )
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"features", "report", "metrics", "reproducibility"} <= artifacts
    report = {a.path for a in client.list_artifacts(run.info.run_id, "report")}
    assert {
        "report/training_report.html",
        "report/training_comparison.md",
        "report/training_comparison.json",
    } <= report
    logged = client.search_logged_models(experiment_ids=[run.info.experiment_id])
    assert len(logged) == 12  # 2 targets x 2 horizons x 3 algorithms (deploy split)
    for target in ("views", "likes"):
        for horizon in ("7d", "14d"):
            mv = client.get_model_version_by_alias(f"trendflow-{target}-{horizon}", "champion")
            assert mv.run_id == run.info.run_id
            assert mv.tags["promotion"] == "no current champion" and mv.tags["valid_rmse"]


def test_inference_pipeline_predicts_with_the_registered_champions(project):
    files = sorted((project / "data/07_model_output/predictions").rglob("predictions.json"))
    assert len(files) == PROJECT_PARAMS["inference"]["from_table"]["limit"]
    doc = json.loads(files[0].read_text())
    assert {p["model"]["source"] for p in doc["predictions"]} == {"registry"}
    assert {p["model"]["alias"] for p in doc["predictions"]} == {"champion"}
    assert len(doc["predictions"]) == 4
    assert doc["video"]["run_id"]


@pytest.mark.slow
def test_retraining_reproduces_metrics_and_the_ui_shows_what_changed(project, client):
    params = {**PROJECT_PARAMS, "result_store": str(project / "data/02_intermediate/result_store")}
    run_pipelines(project, ["training"], params)
    first, second = _runs(client)
    assert first.data.metrics == second.data.metrics  # same fingerprint + params -> identical metrics
    assert first.data.params == second.data.params
    assert first.data.tags["trendflow.bundle_id"] != second.data.tags["trendflow.bundle_id"]
    # the retrained model does not BEAT the champion on validation (it ties): it is the challenger
    assert str(client.get_model_version_by_alias("trendflow-views-7d", "champion").version) == "1"
    challenger = client.get_model_version_by_alias("trendflow-views-7d", "challenger")
    assert str(challenger.version) == "2" and "does not beat champion v1" in challenger.tags["promotion"]
