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
