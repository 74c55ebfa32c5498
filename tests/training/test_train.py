"""Fitting, evaluation, reproducibility and the model bundle on a SYNTHETIC table (known signal)."""

import numpy as np
import pandas as pd
import pytest

from tests.training.tables import training_params
from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.pipelines.training import nodes
from trendflow.training.baselines import BASELINES
from trendflow.training.bundle import ModelBundleDataset, load_bundle
from trendflow.training.config import TrainingParams, library_of
from trendflow.training.features import select_features
from trendflow.training.manifest import build_manifest
from trendflow.training.train import evaluate_all, fit_all

ALGORITHMS = ["catboost", "lightgbm", "lightgbm_sh", "lightgbm_ep", "blend"]


@pytest.fixture(scope="module")
def params():
    return TrainingParams.parse(
        training_params(targets=["views", "likes"], horizons=["14d"], algorithms=ALGORITHMS)
    )


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
        assert set(task.models) == set(ALGORITHMS)
        # the champion is the best VALIDATION rmse (selection_metric), whatever the test rows say
        best = min(m["rmse"] for m in task.valid_metrics.values())
        assert task.valid_metrics[task.champion]["rmse"] == best
        if task.champion == "blend":  # a tie goes to the member, not the blend
            assert all(m["rmse"] > best for a, m in task.valid_metrics.items() if a != "blend")
        for iv in task.intervals.values():
            assert iv.residual_low <= iv.residual_high and iv.level == 0.9
        assert 1 <= task.models["catboost"].best_iteration <= 60
    test = metrics[(metrics["eval_split"] == "test") & (metrics["bucket"] == "all")]
    assert set(test["model"]) == {*ALGORITHMS, *BASELINES}
    assert set(predictions["split"]) == {"time", "channel"}
    # seeded bootstrap intervals bracket the point estimates of every test row
    assert (test["mae_low"] <= test["mae"]).all() and (test["mae"] <= test["mae_high"]).all()
    rho = test.dropna(subset=["spearman"])
    assert (rho["spearman_low"] <= rho["spearman"] + 1e-9).all()
    assert (rho["spearman"] <= rho["spearman_high"] + 1e-9).all()


def test_prior_models_add_the_szabo_huberman_line_to_their_trees(trained, table_and_meta):
    table = table_and_meta[0].head(40)
    result, _, _ = trained
    model = result.tasks[0].models["lightgbm_sh"]
    prior = result.tasks[0].baselines["szabo_huberman"]
    assert model.prior == prior
    trees = model.native.predict(model.matrix(table), num_iteration=model.best_iteration)
    np.testing.assert_allclose(model.predict(table), trees + prior.predict(table))
    contrib, base = model.contributions(table)
    np.testing.assert_allclose(contrib.sum(axis=1) + base, model.predict(table), atol=1e-9)


def test_ep_models_boost_on_the_early_popularity_prior(trained, table_and_meta):
    table = table_and_meta[0].head(40)
    result, _, _ = trained
    model = result.tasks[0].models["lightgbm_ep"]
    prior = result.tasks[0].baselines["early_popularity"]
    assert model.prior == prior and prior.terms and "log1p_age_hours" in prior.terms
    trees = model.native.predict(model.matrix(table), num_iteration=model.best_iteration)
    np.testing.assert_allclose(model.predict(table), trees + prior.predict(table))


def test_parallel_tasks_fit_the_same_models_as_one_at_a_time(table_and_meta):
    table = table_and_meta[0]
    base = training_params(targets=["views"], horizons=["14d"], algorithms=["lightgbm", "lightgbm_sh"])
    one, two = (TrainingParams.parse({**base, "n_jobs": n}) for n in (1, 2))
    assert two.jobs(10) == 2 and TrainingParams.parse({**base, "n_jobs": "auto"}).jobs(1) == 1
    spec = select_features(table, one)
    serial, parallel = fit_all(table, spec, one), fit_all(table, spec, two)
    assert [t.key for t in serial.tasks] == [t.key for t in parallel.tasks]
    for a, b in zip(serial.tasks, parallel.tasks, strict=True):
        assert a.valid_metrics == b.valid_metrics and a.champion == b.champion
        for name, model in a.models.items():
            np.testing.assert_array_equal(model.predict(table), b.models[name].predict(table))


def test_blend_is_a_validation_weighted_mix_of_a_catboost_and_a_lightgbm(trained, table_and_meta):
    table = table_and_meta[0].head(40)
    result, _, _ = trained
    for task in result.tasks:
        weights = task.blend_weights
        assert len(weights) == 2 and abs(sum(weights.values()) - 1) < 1e-9
        assert {library_of(a) for a in weights} == {"catboost", "lightgbm"}
        expected = sum(w * task.models[a].predict(table) for a, w in weights.items())
        np.testing.assert_allclose(task.models["blend"].predict(table), expected)
        contrib, base = task.models["blend"].contributions(table)
        np.testing.assert_allclose(contrib.sum(axis=1) + base, expected, atol=1e-9)


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
    blends = [c for c in loaded.info.models if c.algorithm == "blend"]
    assert blends and all(c.members and not c.file for c in blends)
    for card in loaded.info.models:
        original = bundle.models[card.key].predict(table.head(30))
        np.testing.assert_array_equal(loaded.models[card.key].predict(table.head(30)), original)
    # tampered weights are refused
    card = next(c for c in loaded.info.models if c.file)
    path = tmp_path / "bundle" / card.file
    path.write_bytes(path.read_bytes()[:-1] + b"x")
    with pytest.raises(TrendFlowError) as err:
        load_bundle(tmp_path / "bundle")
    assert err.value.code == ErrorCode.MODEL_LOAD_FAILED
    with pytest.raises(TrendFlowError) as err:
        load_bundle(tmp_path / "nothing-here")
    assert err.value.code == ErrorCode.MODEL_NOT_FOUND
