"""Fitting, evaluation, reproducibility and the model bundle on a SYNTHETIC table (known signal)."""

import numpy as np
import pandas as pd
import pytest

from tests.training.tables import training_params
from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.pipelines.training import nodes
from trendflow.training.bundle import ModelBundleDataset, load_bundle
from trendflow.training.config import TrainingParams
from trendflow.training.features import select_features
from trendflow.training.manifest import build_manifest
from trendflow.training.train import evaluate_all, fit_all


@pytest.fixture(scope="module")
def params():
    return TrainingParams.parse(training_params(targets=["views", "likes"], horizons=["14d"]))


@pytest.fixture(scope="module")
def trained(table_and_meta, params):
    table = table_and_meta[0]
    spec = select_features(table, params)
    result = fit_all(table, spec, params)
    metrics, predictions = evaluate_all(result, table, params)
    return result, metrics, predictions


def test_every_task_is_trained_per_split_scheme(trained, params):
    result, metrics, predictions = trained
    assert {(t.target, t.horizon, t.split) for t in result.tasks} == {
        (t, "14d", s) for t in ("views", "likes") for s in ("time", "channel")
    }
    for task in result.tasks:
        assert set(task.models) == {"catboost", "lightgbm"}
        assert task.champion == min(task.valid_metrics, key=lambda a: task.valid_metrics[a]["rmse"])
        for iv in task.intervals.values():
            assert iv.residual_low <= iv.residual_high and iv.level == 0.9
        assert 1 <= task.models["catboost"].best_iteration <= 60
    test = metrics[(metrics["eval_split"] == "test") & (metrics["bucket"] == "all")]
    assert set(test["model"]) == {"catboost", "lightgbm", "global_median", "szabo_huberman"}
    assert set(predictions["split"]) == {"time", "channel"}


def test_models_beat_the_baselines_on_the_known_signal(trained):
    # The SYNTHETIC growth depends on content features, not only on the count at snapshot1.
    _, metrics, _ = trained
    test = metrics[(metrics["eval_split"] == "test") & (metrics["bucket"] == "all")].set_index(
        ["target", "split", "model"]
    )
    for target in ("views", "likes"):
        for split in ("time", "channel"):
            best = max(test.loc[(target, split, m), "spearman"] for m in ("catboost", "lightgbm"))
            assert best > test.loc[(target, split, "szabo_huberman"), "spearman"]
            assert (
                test.loc[(target, split, "lightgbm"), "rmse"]
                < test.loc[(target, split, "global_median"), "rmse"]
            )


def test_retraining_reproduces_the_metrics_exactly(table_and_meta, params, trained):
    table = table_and_meta[0]
    _, metrics, _ = trained
    again = fit_all(table, select_features(table, params), params)
    metrics2, _ = evaluate_all(again, table, params)
    pd.testing.assert_frame_equal(metrics, metrics2, check_exact=True)


def test_a_task_without_enough_rows_is_skipped_and_reported(table_and_meta):
    table = table_and_meta[0]
    params = TrainingParams.parse(training_params(targets=["views"], horizons=["7d"], min_test_rows=10_000))
    result = fit_all(table, select_features(table, params), params)
    assert result.tasks == []
    assert {s["split"] for s in result.skipped} == {"time", "channel"}
    assert "min_test_rows" in result.skipped[0]["reason"]
    with pytest.raises(TrendFlowError) as err:
        nodes.fit_models(table, select_features(table, params).model_dump(), params.model_dump())
    assert err.value.code == ErrorCode.INVALID_REQUEST


def test_bundle_round_trip_gives_identical_predictions(tmp_path, table_and_meta, params, trained):
    table, metadata, _ = table_and_meta
    result, metrics, _ = trained
    manifest = build_manifest(table, metadata, params).model_dump(mode="json")
    bundle, same, tags = nodes.build_bundle(result, metrics, manifest, params.model_dump())
    assert bundle is same and tags["trendflow.dataset_fingerprint"] == metadata["dataset_fingerprint"]
    dataset = ModelBundleDataset(str(tmp_path / "bundle"))
    dataset.save(bundle)
    loaded = dataset.load()
    assert [c.key for c in loaded.info.models] == [c.key for c in bundle.info.models]
    assert {c.split for c in loaded.info.models} == {"time"}  # the deploy split only
    assert len(loaded.info.champions()) == 2
    for card in loaded.info.models:
        original = bundle.models[card.key].predict(table.head(30))
        np.testing.assert_array_equal(loaded.models[card.key].predict(table.head(30)), original)
    # tampered weights are refused
    card = loaded.info.models[0]
    path = tmp_path / "bundle" / card.file
    path.write_bytes(path.read_bytes()[:-1] + b"x")
    with pytest.raises(TrendFlowError) as err:
        load_bundle(tmp_path / "bundle")
    assert err.value.code == ErrorCode.MODEL_LOAD_FAILED
    with pytest.raises(TrendFlowError) as err:
        load_bundle(tmp_path / "nothing-here")
    assert err.value.code == ErrorCode.MODEL_NOT_FOUND
