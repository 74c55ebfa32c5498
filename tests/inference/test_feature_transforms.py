"""Fitted transforms are artifacts: the training PCA projects a single video at inference, and
category ids and titles are one value in training and in predict."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from tests.dataset.test_run_features import T, frame_stats, write_run
from tests.training.tables import dataset_params
from trendflow.dataset import build
from trendflow.dataset.categories import canonical_category
from trendflow.dataset.snapshots import normalize_snapshots
from trendflow.inference.features import build_feature_row
from trendflow.inference.models import ForecastModel
from trendflow.inference.predict import unseen_category_warnings
from trendflow.inference.schema import Snapshot1Facts
from trendflow.storage.store import ResultStore
from trendflow.training.config import TrainingParams
from trendflow.training.features import select_features

N_VIDEOS = 40


def _embedding(rng: np.random.Generator, dim: int = 96):
    emb = rng.normal(size=(3, dim)).astype(np.float32)
    return ("image_embedding", "visual", {"embedding": emb, "embedding__mask": np.ones(3, bool)}, None)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("transforms")
    store = ResultStore(str(root / "store"))
    rng = np.random.default_rng(3)
    rows = []
    for i in range(N_VIDEOS):
        video = f"vid{i:03d}"
        write_run(store, video, "r1", T, [frame_stats(rng.normal(size=4) + 5), _embedding(rng)])
        s1 = T + timedelta(hours=i)
        for day, growth in ((0, 1.0), (7, 3.0 + i)):
            rows.append(
                {
                    "platform_id": "youtube",
                    "video_id": video,
                    "snapshot_at": s1 + timedelta(days=day),
                    "views": 1000.0 * growth,
                    "likes": 50.0 * growth,
                    "comments": 5.0 * growth,
                    "published_at": s1 - timedelta(hours=3),
                    "channel_id": f"UC{i % 10:02d}",
                    "category": ("1", "Film & Animation", "10", "Music")[i % 4],
                }
            )
    snapshots, _ = normalize_snapshots(pd.DataFrame(rows), "test")
    params = dataset_params(
        horizons=[{"name": "7d", "tolerance": "1d", "required": False}],
        run_features={"config_hash": "auto", "n_jobs": 1, "max_pooled_dims": 16, "pca_components": 3},
    )
    s1, s1_info = build.build_snapshot1(snapshots, params)
    rf = build.run_features_for(s1, store, params)
    enriched, split_info = build.enrich_and_split(s1, rf, params, None)
    transforms = build.fit_feature_transforms(enriched, rf, params)
    info = {"snapshot1": s1_info, **split_info, "sources": {}, "snapshots": {}}
    table, _ = build.assemble(enriched, rf, params, info, transforms)
    return table, snapshots, store, params, transforms


def _facts(snapshots: pd.DataFrame, video: str, category: str | None = None) -> Snapshot1Facts:
    first = snapshots[snapshots["video_id"] == video].sort_values("snapshot_at").iloc[0]
    return Snapshot1Facts(
        snapshot_at=first["snapshot_at"],
        published_at=first["published_at"],
        views=first["views"],
        likes=first["likes"],
        comments=first["comments"],
        channel_id=first["channel_id"],
        category=category if category is not None else first["category"],
    )


def test_a_training_row_recomputed_through_inference_equals_the_table_row(built):
    table, snapshots, store, params, transforms = built
    pca_cols = [c for c in table.columns if "__pca_" in c]
    assert pca_cols == [f"image_embedding__embedding__pca_{i}" for i in range(3)]
    assert transforms["pca"]["arrays"]["image_embedding__embedding"]["fit_rows"] >= 2
    spec = select_features(table, TrainingParams.parse({"splits": ["time", "channel"]}))
    assert set(pca_cols) <= set(spec.features)
    test_rows = table[(table["split_channel"] == "test").fillna(False).to_numpy(dtype=bool)]
    for video in test_rows["video_id"].head(3):
        run_dir = f"youtube/{video}/r1"
        row = build_feature_row(
            store,
            "youtube",
            video,
            _facts(snapshots, video),
            params,
            run_dir=run_dir,
            feature_transforms=transforms,
        ).row
        expected = table[table["video_id"] == video].reset_index(drop=True)
        for col in spec.features:
            a, b = row.at[0, col], expected.at[0, col]
            if pd.isna(b):
                assert pd.isna(a), col
            elif col in spec.categorical:
                assert str(a) == str(b), col
            else:
                assert float(a) == pytest.approx(float(b), rel=1e-9, abs=1e-9), col
        assert row[pca_cols].notna().all(axis=None)  # a single-video forecast has its PCA columns
        # without the artifact a one-row build cannot fit a PCA: the columns would be missing
        bare = build_feature_row(
            store, "youtube", video, _facts(snapshots, video), params, run_dir=run_dir
        ).row
        assert bare[pca_cols].isna().all(axis=None)


def test_category_ids_and_titles_are_one_value(built):
    table, snapshots, store, params, _ = built
    assert canonical_category("1") == canonical_category("Film & Animation") == "Film & Animation"
    assert canonical_category(" 24 ") == "Entertainment" and canonical_category("34") == "Comedy"
    assert canonical_category("my own") == "my own" and canonical_category(None) is None
    assert set(table["category"].dropna()) == {"Film & Animation", "Music"}  # ids and titles: one value
    video = table["video_id"].iloc[0]
    run_dir = f"youtube/{video}/r1"
    by_name = build_feature_row(
        store, "youtube", video, _facts(snapshots, video, "Film & Animation"), params, run_dir=run_dir
    )
    by_id = build_feature_row(store, "youtube", video, _facts(snapshots, video, "1"), params, run_dir=run_dir)
    assert by_name.row.at[0, "category"] == by_id.row.at[0, "category"] == "Film & Animation"


def test_an_unseen_category_is_a_warning(built):
    table, snapshots, store, params, _ = built
    spec = select_features(table, TrainingParams.parse({"splits": ["time", "channel"]}))
    video = table["video_id"].iloc[0]
    row = build_feature_row(
        store, "youtube", video, _facts(snapshots, video, "Gaming"), params, run_dir=f"youtube/{video}/r1"
    ).row
    model = type("M", (), {"spec": spec})()
    forecast = ForecastModel("views", "7d", 168.0, model, None, None)  # type: ignore[arg-type]
    (warning,) = unseen_category_warnings(row, [forecast, forecast])
    assert "category 'Gaming' was not seen in training" in warning
    known = build_feature_row(
        store, "youtube", video, _facts(snapshots, video), params, run_dir=f"youtube/{video}/r1"
    )
    assert unseen_category_warnings(known.row, [forecast]) == []
