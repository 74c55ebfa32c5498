"""Walk-forward folds, left-censored rows, bootstrap intervals, monotone models, the Optuna search
and verdicts that judge the validation-chosen champion."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from tests.training.tables import training_params
from trendflow.dataset.schema import horizon_columns
from trendflow.training import report
from trendflow.training.baselines import fit_baselines
from trendflow.training.config import TrainingParams
from trendflow.training.features import select_features
from trendflow.training.folds import present_rows, task_folds
from trendflow.training.metrics import bootstrap_intervals, metrics_frame
from trendflow.training.models import fit_model
from trendflow.training.train import evaluate_all, fit_all


def _wf_params(**kw):
    return TrainingParams.parse(
        training_params(
            targets=["views"],
            horizons=["14d"],
            splits=["channel", "walk_forward"],
            deploy_split="channel",
            algorithms=["catboost_sh", "lightgbm_sh"],
            walk_forward={"max_folds": 3, "test_fraction": 0.4, "min_train_rows": 20, "min_valid_rows": 3},
            **kw,
        )
    )


def test_walk_forward_folds_train_only_on_targets_observed_before_the_origin(table):
    params = _wf_params()
    folds = task_folds(table, "views", "14d", "walk_forward", params)
    assert 1 <= len(folds) <= 3
    s1 = pd.to_datetime(table["snapshot1_at"], utc=True)
    observed = pd.to_datetime(table[horizon_columns("14d")["snapshot_at"]], utc=True)
    present = present_rows(table, "views", "14d")
    inner_valid = (table["split_channel"] == "valid").fillna(False).to_numpy(dtype=bool)
    for fold in folds:
        origin = pd.Timestamp(fold.origin)
        window = fold.train | fold.valid
        assert (observed[window] <= origin).all()  # no training target from the future
        assert (s1[fold.test] >= origin).all() and fold.test.sum() >= 1
        assert not (window & fold.test).any()
        assert (fold.valid == (window & inner_valid)).all()
        assert not (fold.train | fold.valid | fold.test)[~present].any()
    origins = [f.origin for f in folds]
    assert origins == sorted(origins) and len(set(origins)) == len(origins)


def test_walk_forward_is_pooled_and_left_censored_rows_leave_training(table):
    table = table.copy()
    table["left_censored"] = np.arange(len(table)) % 4 == 0
    params = _wf_params(exclude_left_censored=True)
    folds = task_folds(table, "views", "14d", "channel", params)
    censored = table["left_censored"].to_numpy()
    assert not (folds[0].train & censored).any() and not (folds[0].valid & censored).any()
    assert (folds[0].test & censored).any()  # still judged, reported apart
    result = fit_all(table, select_features(table, params), params)
    metrics, predictions = evaluate_all(result, table, params)
    wf = result.task("views", "14d", "walk_forward")
    assert wf is not None and len(wf.folds) >= 1
    test = metrics[(metrics["eval_split"] == "test") & (metrics["split"] == "walk_forward")]
    all_rows = test[(test["bucket"] == "all") & (test["model"] == "szabo_huberman")]
    assert int(all_rows["n"].iloc[0]) == sum(int(f.fold.test.sum()) for f in wf.folds)
    assert {"left_censored", "not_left_censored"} <= set(metrics["bucket"])
    assert set(predictions.loc[predictions["split"] == "walk_forward", "fold"]) == {
        f.fold.name for f in wf.folds
    }


def test_bootstrap_intervals_are_seeded_and_bracket_the_estimate():
    rng = np.random.default_rng(0)
    y = rng.normal(size=120)
    pred = y + rng.normal(scale=0.8, size=120)
    a = bootstrap_intervals(y, pred, 500, 0.95, seed=7)
    assert a == bootstrap_intervals(y, pred, 500, 0.95, seed=7)
    rho = spearmanr(y, pred).statistic
    assert a["spearman_low"] < rho < a["spearman_high"]
    mae = np.abs(pred - y).mean()
    assert a["mae_low"] < mae < a["mae_high"]
    assert np.isnan(bootstrap_intervals(y[:2], pred[:2], 500, 0.95, seed=7)["mae_low"])


def test_monotone_models_never_lower_the_forecast_for_more_early_views(table):
    params = TrainingParams.parse(training_params(targets=["views"], horizons=["14d"]))
    spec = select_features(table, params)
    rows = present_rows(table, "views", "14d")
    train = table[rows & (table["split_time"] == "train").fillna(False).to_numpy(dtype=bool)]
    valid = table[rows & (table["split_time"] == "valid").fillna(False).to_numpy(dtype=bool)]
    y_train, y_valid = train["target__views__14d"].to_numpy(), valid["target__views__14d"].to_numpy()
    prior = fit_baselines(train, y_train, "views")["szabo_huberman"]
    probe = pd.concat([valid.head(5)] * 9, ignore_index=True)
    probe["snapshot1__views_log1p"] = np.repeat(np.linspace(0, 16, 9), 5)
    for algorithm in ("lightgbm_sh_mono", "catboost_sh_mono"):
        model = fit_model(algorithm, train, y_train, valid, y_valid, spec, params, prior)
        pred = model.predict(probe).reshape(9, 5)
        if prior.slope is not None and prior.slope >= 0:
            assert (np.diff(pred, axis=0) >= -1e-9).all(), algorithm


def test_optuna_search_is_bounded_seeded_and_recorded(table):
    pytest.importorskip("optuna")
    params = TrainingParams.parse(
        training_params(
            targets=["views"],
            horizons=["14d"],
            splits=["time"],
            algorithms=["lightgbm_sh_tuned"],
            tuning={"n_trials": 3, "timeout_s": 60},
        )
    )
    spec = select_features(table, params)
    first = fit_all(table, spec, params).tasks[0]
    again = fit_all(table, spec, params).tasks[0]
    tuned = first.folds[0].tuned_params
    assert set(tuned) == {"num_leaves", "min_data_in_leaf", "learning_rate", "feature_fraction", "lambda_l2"}
    assert tuned == again.folds[0].tuned_params
    assert first.champion == "lightgbm_sh_tuned"


def test_verdicts_judge_the_validation_champion_not_the_test_best():
    rows = []
    for model, rho, mae in (
        ("catboost", 0.95, 0.4),  # best on test, but not the champion
        ("lightgbm", 0.80, 0.5),  # chosen on validation
        ("szabo_huberman", 0.70, 0.9),
        ("global_median", np.nan, 1.2),
    ):
        rows.append(
            {
                "target": "views",
                "horizon": "1d",
                "model": model,
                "split": "channel",
                "eval_split": "test",
                "bucket": "all",
                "n": 80,
                "rmse": mae,
                "mae": mae,
                "spearman": rho,
                "interval_coverage": np.nan,
                "spearman_low": rho - 0.1,
                "spearman_high": rho + 0.05,
                "mae_low": mae - 0.1,
                "mae_high": mae + 0.1,
            }
        )
    table = report.comparison_table(metrics_frame(rows), {("views", "1d", "channel"): "lightgbm"})
    assert table["champion"].tolist().count(True) == 1
    assert table.loc[table["champion"], "model"].item() == "lightgbm"
    (verdict,) = report.verdicts(table)
    assert verdict["champion"] == "lightgbm" and verdict["spearman"] == pytest.approx(0.80)
    assert verdict["spearman_gain_vs_sh"] == pytest.approx(0.10) and verdict["meets_goal"]
    assert verdict["spearman_ci"] == [pytest.approx(0.70), pytest.approx(0.85)]
