import math

import numpy as np
import pandas as pd
import pytest

from trendflow.contracts.errors import TrendFlowError
from trendflow.training.baselines import fit_baselines
from trendflow.training.config import TrainingParams
from trendflow.training.metrics import age_buckets, metric_rows, mlflow_metric_name, regression_metrics


def test_szabo_huberman_recovers_a_log_linear_law():
    rng = np.random.default_rng(0)
    x = rng.uniform(2, 12, 500)
    y = 0.5 + 0.9 * x + rng.normal(0, 0.01, 500)
    frame = pd.DataFrame({"snapshot1__views_log1p": x})
    fitted = fit_baselines(frame, y, "views")
    sh = fitted["szabo_huberman"]
    assert sh.slope == pytest.approx(0.9, abs=0.01) and sh.intercept == pytest.approx(0.5, abs=0.05)
    assert fitted["global_median"].median == pytest.approx(float(np.median(y)))
    new = pd.DataFrame({"snapshot1__views_log1p": [5.0, np.nan]})
    pred = sh.predict(new)
    assert pred[0] == pytest.approx(0.5 + 0.9 * 5.0, abs=0.05)
    assert pred[1] == sh.median  # no count at snapshot1: the training median
    assert (fitted["global_median"].predict(new) == sh.median).all()


def test_likes_baseline_uses_likes_at_snapshot1():
    frame = pd.DataFrame(
        {"snapshot1__likes_log1p": [1.0, 2.0, 3.0], "snapshot1__views_log1p": [9.0, 1.0, 5.0]}
    )
    sh = fit_baselines(frame, np.array([2.0, 4.0, 6.0]), "likes")["szabo_huberman"]
    assert sh.slope == pytest.approx(2.0) and sh.intercept == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(TrendFlowError):
        fit_baselines(frame, np.array([1.0, 2.0, 3.0]), "comments")


def test_early_popularity_recovers_a_law_in_counts_and_age():
    rng = np.random.default_rng(1)
    n = 800
    views, likes = rng.uniform(4, 14, n), rng.uniform(1, 9, n)
    age = rng.uniform(1, 300, n)
    y = 1.0 + 0.8 * views + 0.1 * likes - 0.6 * np.log1p(age) + rng.normal(0, 0.01, n)
    frame = pd.DataFrame(
        {
            "snapshot1__views_log1p": views,
            "snapshot1__likes_log1p": likes,
            "video_age_hours_at_snapshot1": age,
        }
    )
    ep = fit_baselines(frame, y, "views")["early_popularity"]
    assert ep.terms == [
        "snapshot1__views_log1p",
        "snapshot1__likes_log1p",
        "log1p_age_hours",
        "log1p_age_hours_sq",
    ]
    np.testing.assert_allclose(ep.predict(frame), y, atol=0.05)
    # the age term is what Szabo-Huberman lacks: same views, younger video -> larger forecast
    young, old = frame.head(1).copy(), frame.head(1).copy()
    young["video_age_hours_at_snapshot1"], old["video_age_hours_at_snapshot1"] = 2.0, 200.0
    assert ep.predict(young)[0] > ep.predict(old)[0] + 1.0
    # a missing fact takes the training median; a missing column is a typed error
    gap = frame.head(1).assign(snapshot1__likes_log1p=np.nan)
    assert np.isfinite(ep.predict(gap)).all()
    with pytest.raises(TrendFlowError):
        ep.predict(frame.drop(columns="video_age_hours_at_snapshot1"))
    # round trip through JSON (bundle.json, MLflow) predicts the same
    again = type(ep).model_validate_json(ep.model_dump_json())
    np.testing.assert_array_equal(again.predict(frame), ep.predict(frame))


def test_regression_metrics_known_values():
    m = regression_metrics(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0, 6.0]))
    assert m["rmse"] == pytest.approx(1.0) and m["mae"] == pytest.approx(0.5)
    assert m["spearman"] == pytest.approx(1.0) and m["n"] == 4
    flat = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 2.0]))
    assert math.isnan(flat["spearman"])  # undefined, not 0
    cov = regression_metrics(
        np.array([1.0, 5.0]), np.array([1.0, 1.0]), np.array([0.0, 0.0]), np.array([2.0, 2.0])
    )
    assert cov["interval_coverage"] == 0.5
    assert regression_metrics(np.array([]), np.array([]))["n"] == 0


def test_age_buckets_and_metric_rows():
    params = TrainingParams.parse({"age_bucket_edges": [0, 6, 24]})
    assert params.bucket_labels() == ["age_0-6h", "age_6-24h", "age_24h_plus"]
    labels = age_buckets(pd.Series([1.0, 6.0, 30.0, np.nan]), params)
    assert labels.tolist() == ["age_0-6h", "age_6-24h", "age_24h_plus", "age_unknown"]
    y = np.array([1.0, 2.0, 3.0, 4.0])
    rows = metric_rows(
        {"target": "views", "horizon": "7d", "model": "m", "split": "time", "eval_split": "test"},
        y,
        y,
        labels,
        params,
    )
    assert [r["bucket"] for r in rows] == ["all", "age_0-6h", "age_6-24h", "age_24h_plus", "age_unknown"]
    assert sum(r["n"] for r in rows[1:]) == rows[0]["n"]
    assert mlflow_metric_name(rows[0], "rmse") == "views/7d/m/time/test/all/rmse"
