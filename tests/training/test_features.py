import numpy as np
import pandas as pd
import pytest

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.dataset.schema import ID_COLUMNS, SPLIT_COLUMNS, is_target_column
from trendflow.training.config import TrainingParams
from trendflow.training.features import CATBOOST_MISSING, model_matrix, select_features, target_tasks


def test_features_exclude_identity_split_target_and_timestamp_columns(table):
    spec = select_features(table, TrainingParams.parse({}))
    for col in spec.features:
        assert col not in ID_COLUMNS and col not in SPLIT_COLUMNS
        assert not is_target_column(col)
        assert not pd.api.types.is_datetime64_any_dtype(table[col].dtype)
    assert "video_age_hours_at_snapshot1" in spec.features
    assert "snapshot1__views_log1p" in spec.features
    assert "category" in spec.categorical
    assert set(spec.categorical) <= set(spec.features)
    # every string feature is categorical, every categorical has its training categories
    for col in spec.features:
        if pd.api.types.is_string_dtype(table[col].dtype):
            assert col in spec.categorical
    assert set(spec.categories) == set(spec.categorical)


def test_uninformative_and_free_text_columns_are_dropped_with_a_reason(table):
    table = table.copy()
    table["all_missing"] = np.nan
    table["constant"] = 1.0
    table["free_text"] = pd.array([f"title number {i}" for i in range(len(table))], dtype="string")
    table["excluded_one"] = 3.0
    params = TrainingParams.parse({"features": {"exclude": ["excluded_one"], "max_categories": 50}})
    spec = select_features(table, params)
    assert spec.dropped["all_missing"] == "all missing on training rows"
    assert spec.dropped["constant"] == "constant on training rows"
    assert spec.dropped["free_text"].startswith("free text or identifier")
    assert spec.dropped["excluded_one"] == "excluded by parameters"
    assert not {"all_missing", "constant", "free_text", "excluded_one"} & set(spec.features)


def test_model_matrix_native_categoricals(table):
    spec = select_features(table, TrainingParams.parse({}))
    rows = table.head(5).copy()
    rows.loc[rows.index[0], "category"] = "never-seen-category"
    rows.loc[rows.index[1], "category"] = pd.NA
    cb = model_matrix(rows, spec, "catboost")
    lg = model_matrix(rows, spec, "lightgbm")
    assert list(cb.columns) == spec.features == list(lg.columns)
    assert cb["category"].iloc[0] == "never-seen-category"
    assert cb["category"].iloc[1] == CATBOOST_MISSING
    assert np.isnan(lg["category"].iloc[0]) and np.isnan(lg["category"].iloc[1])  # unseen / missing
    known = rows["category"].iloc[2]
    assert lg["category"].iloc[2] == spec.categories["category"].index(known)
    numeric = spec.numeric
    assert (lg[numeric].dtypes == "float64").all()


def test_missing_feature_column_is_a_clear_error(table):
    spec = select_features(table, TrainingParams.parse({}))
    with pytest.raises(TrendFlowError) as err:
        model_matrix(table.drop(columns=["snapshot1__views_log1p"]), spec, "lightgbm")
    assert err.value.code == ErrorCode.DEPENDENCY_MISSING
    assert "snapshot1__views_log1p" in err.value.message


def test_target_tasks_follow_the_table_and_the_parameters(table):
    all_tasks = target_tasks(table, TrainingParams.parse({}))
    assert all_tasks == [(t, h) for t in ("likes", "views") for h in ("7d", "14d", "21d")]
    assert target_tasks(table, TrainingParams.parse({"targets": ["views"], "horizons": ["14d"]})) == [
        ("views", "14d")
    ]
    with pytest.raises(TrendFlowError) as err:
        target_tasks(table, TrainingParams.parse({"horizons": ["99d"]}))
    assert err.value.code == ErrorCode.CONFIG_ERROR
    with pytest.raises(TrendFlowError):
        target_tasks(
            table.drop(columns=[c for c in table.columns if c.startswith("target__")]), TrainingParams()
        )


def test_invalid_parameters_are_config_errors():
    with pytest.raises(TrendFlowError) as err:
        TrainingParams.parse({"age_bucket_edges": [0, 10, 5]})
    assert err.value.code == ErrorCode.CONFIG_ERROR
    with pytest.raises(TrendFlowError):
        TrainingParams.parse({"splits": ["channel"], "deploy_split": "time"})
    with pytest.raises(TrendFlowError):
        TrainingParams.parse({"unknown_knob": 1})
