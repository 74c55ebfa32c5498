"""Inference builds the training table's row with the dataset build and predicts like training."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from tests.training.tables import dataset_params
from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.inference.features import build_feature_row, check_required, latest_run_dir
from trendflow.inference.models import from_bundle
from trendflow.inference.predict import predict_video
from trendflow.inference.schema import PredictionsDocument, Snapshot1Facts
from trendflow.inference.service import DEFAULT_REQUIRED
from trendflow.storage.store import ResultStore


def _facts(snapshots: pd.DataFrame, video_id: str, **drop) -> Snapshot1Facts:
    first = snapshots[snapshots["video_id"] == video_id].sort_values("snapshot_at").iloc[0]
    facts = {
        "snapshot_at": first["snapshot_at"],
        "published_at": first["published_at"],
        "views": first["views"],
        "likes": first["likes"],
        "comments": first["comments"],
        "channel_id": first["channel_id"],
        "title": first["title"],
        "tags": first["tags"].split("|") if isinstance(first["tags"], str) else None,
        "category": first["category"],
        "channel_subscriber_count": first["channel_subscriber_count"],
    }
    facts = {
        k: (None if v is pd.NA or (isinstance(v, float) and math.isnan(v)) else v) for k, v in facts.items()
    }
    for key in drop:
        facts[key] = None
    return Snapshot1Facts.model_validate(facts)


@pytest.fixture(scope="module")
def setup(inference_setup):
    table, root, bundle_path, bundle = inference_setup
    snapshots = pd.read_parquet(root / "snapshots.parquet")
    rows = table[table["run__present"] & table["channel_id"].notna()]
    return table, rows, snapshots, ResultStore(str(root / "store")), bundle_path, bundle


def test_feature_row_equals_the_training_table_row(setup):
    table, rows, snapshots, store, _, bundle = setup
    spec = bundle.info.feature_spec
    for video_id in rows["video_id"].head(4):
        expected = table[table["video_id"] == video_id].reset_index(drop=True)
        features = build_feature_row(
            store, "synthetic", video_id, _facts(snapshots, video_id), dataset_params()
        )
        assert features.video.run_id == expected.at[0, "run_id"]
        for col in spec.features:
            a, b = features.row.at[0, col], expected.at[0, col]
            if pd.isna(b):
                assert pd.isna(a), col
            elif col in spec.categorical:
                assert str(a) == str(b), col
            else:
                assert float(a) == pytest.approx(float(b), rel=1e-12, abs=1e-12), col


def test_predictions_match_training_and_shap_adds_up(setup):
    table, rows, snapshots, store, bundle_path, bundle = setup
    models = from_bundle(str(bundle_path))
    assert {(m.target, m.horizon) for m in models} == {("views", "7d"), ("likes", "7d")}
    video_id = rows["video_id"].iloc[0]
    facts = _facts(snapshots, video_id)
    features = build_feature_row(store, "synthetic", video_id, facts, dataset_params())
    doc = predict_video(features, models, facts, top_k=5)
    PredictionsDocument.model_validate_json(doc.model_dump_json())
    expected_row = table[table["video_id"] == video_id]
    for pred, model in zip(doc.predictions, sorted(models, key=lambda m: m.target), strict=True):
        # predictions.json rounds: log1p values to 4 decimals, deltas and counts to whole numbers
        assert pred.predicted_log1p_delta == pytest.approx(model.model.predict(expected_row)[0], abs=5e-5)
        expected_delta = max(math.expm1(pred.predicted_log1p_delta), 0.0)
        assert pred.predicted_delta == pytest.approx(expected_delta, rel=1e-4, abs=0.5)
        start = getattr(facts, pred.target)
        assert pred.predicted_count == pytest.approx(start + pred.predicted_delta, abs=0.5)
        assert pred.interval.count_low <= pred.interval.count_high
        assert pred.interval.log1p_delta_low == pytest.approx(
            pred.predicted_log1p_delta + model.interval.residual_low, abs=1e-4
        )
        contrib, base = model.model.contributions(features.row)
        assert base[0] + contrib[0].sum() == pytest.approx(pred.predicted_log1p_delta, abs=1e-4)
        assert len(pred.contributions.top) == 5
        tops = [abs(c.contribution) for c in pred.contributions.top]
        assert tops == sorted(tops, reverse=True)
        assert pred.model.source == "bundle" and pred.model.version == bundle.info.bundle_id
    text = json.dumps(doc.model_dump(mode="json"))
    assert facts.title not in text  # raw text is never written out
    # the bundle learnt from the SYNTHETIC corpus: predictions.json says so
    assert bundle.info.manifest.synthetic_rows > 0
    assert any(w.startswith("trained_on_synthetic_data:") for w in doc.warnings)
    for model in models:
        model.synthetic_rows = 0
    assert not any("synthetic" in w for w in predict_video(features, models, facts, top_k=5).warnings)


def test_missing_facts_fail_with_what_to_pass(setup):
    _, rows, snapshots, store, _, _ = setup
    video_id = rows["video_id"].iloc[1]
    facts = _facts(snapshots, video_id, published_at=True, likes=True)
    features = build_feature_row(store, "synthetic", video_id, facts, dataset_params())
    with pytest.raises(TrendFlowError) as err:
        check_required(features.row, DEFAULT_REQUIRED)
    assert err.value.code == ErrorCode.INVALID_REQUEST
    assert "--published-at" in err.value.message and "--likes" in err.value.message
    assert "--views" not in err.value.message


def test_a_video_without_a_run_fails_clearly(setup):
    table, _, snapshots, store, _, _ = setup
    no_run = table[table["run__missing_reason"] == "no_run"]["video_id"].iloc[0]
    assert latest_run_dir(store, "synthetic", no_run) is None
    with pytest.raises(TrendFlowError) as err:
        build_feature_row(store, "synthetic", no_run, _facts(snapshots, no_run), dataset_params())
    assert err.value.code == ErrorCode.DEPENDENCY_MISSING and "process" in err.value.message
    failed = table[table["run__missing_reason"] == "no_successful_run"]["video_id"].iloc[0]
    run_id = store.listdir(f"synthetic/{failed}")[0]
    with pytest.raises(TrendFlowError) as err:
        build_feature_row(
            store,
            "synthetic",
            failed,
            _facts(snapshots, failed),
            dataset_params(),
            run_dir=f"synthetic/{failed}/{run_id}",
        )
    assert err.value.code == ErrorCode.DEPENDENCY_MISSING


def test_text_statistics_fall_back_to_the_run(setup):
    _, rows, snapshots, store, _, _ = setup
    video_id = rows["video_id"].iloc[2]
    with_text = build_feature_row(store, "synthetic", video_id, _facts(snapshots, video_id), dataset_params())
    without = build_feature_row(
        store, "synthetic", video_id, _facts(snapshots, video_id, title=True, tags=True), dataset_params()
    )
    assert any("text_stats" in w for w in without.warnings)
    for name in ("title_chars", "title_words", "tags_count"):
        col = f"snapshot1__{name}"
        assert float(without.row.at[0, col]) == float(with_text.row.at[0, col])
    assert np.isfinite(float(without.row.at[0, "snapshot1__title_chars"]))
