"""The whole build on the SYNTHETIC corpus: contracts, no leakage, splits, determinism."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from trendflow.contracts.manifest import Manifest
from trendflow.dataset.build import build_training_table
from trendflow.dataset.kedro_datasets import DeterministicParquetDataset
from trendflow.dataset.schema import ID_COLUMNS, SPLIT_COLUMNS
from trendflow.dataset.snapshots import normalize_snapshots
from trendflow.dataset.synthetic import SyntheticConfig, ensure_corpus
from trendflow.storage.npz_io import read_npz
from trendflow.storage.store import ResultStore

CFG = SyntheticConfig(n_videos=120, n_channels=15, seed=11)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    store = ResultStore(str(root / "store"))
    raw, info = ensure_corpus(store, CFG)
    snapshots, _ = normalize_snapshots(raw, "synthetic")
    return store, snapshots, info, root


def params(root, **over):
    p = {
        "enrichment": {"cache_path": str(root / "api_cache.jsonl")},
        "splits": {"time": {"gap": "2d"}, "channel": {"seed": 5}},
        "run_features": {"n_jobs": 1},
    }
    p.update(over)
    return p


def test_synthetic_corpus_is_contract_valid_and_labelled(corpus):
    store, snapshots, info, _ = corpus
    assert info["synthetic"] is True and (snapshots["platform_id"] == "synthetic").all()
    assert snapshots["title"].str.startswith("[synthetic]").all()
    manifests = store.find("synthetic", suffix="manifest.json")
    assert len(manifests) == info["runs_written"] > 0
    for path in manifests[:25]:
        m = Manifest.model_validate_json(store.read_bytes(path))
        assert m.source["kind"] == "synthetic"
        for comp in m.components:
            for art in comp.artifacts:
                arrays, meta = read_npz(store, f"{path.rsplit('/', 1)[0]}/{art.path}")
                assert meta.status == comp.status
                assert (
                    hashlib.sha256(store.read_bytes(f"{path.rsplit('/', 1)[0]}/{art.path}")).hexdigest()
                    == art.sha256
                )
                if meta.status == "empty":
                    assert meta.empty_reason == "no_audio_track"
                    assert not any(v.any() for k, v in arrays.items() if k.endswith("__mask"))
    # regenerating with the same parameters reuses the store
    _again, info2 = ensure_corpus(store, CFG)
    assert info2["digest"] == info["digest"]


def test_table_shape_masks_and_signal(corpus):
    store, snapshots, _, root = corpus
    table, meta = build_training_table(snapshots, store, params(root))
    assert len(table) == CFG.n_videos == meta["rows"] and meta["synthetic"] is True
    assert table["synthetic"].all()
    assert list(table.columns[: len(ID_COLUMNS)]) == ID_COLUMNS
    assert list(table.columns[-2:]) == SPLIT_COLUMNS
    assert table["video_age_hours_at_snapshot1"].notna().all()
    # videos without a valid run keep their row, with NaN features and a reason
    no_run = table[~table["run__present"]]
    assert len(no_run) > 0 and no_run["frame_stats__brightness__mean"].isna().all()
    assert set(no_run["run__missing_reason"]) <= {"no_run", "no_successful_run"}
    # audio-less videos: empty audio components with their reason
    assert (table["loudness__empty_reason"] == "no_audio_track").sum() > 0
    # targets for every horizon with masks and coverage
    for h in ("7d", "14d", "21d"):
        for t in ("views", "likes"):
            mask = table[f"target__{t}__{h}__mask"]
            assert table.loc[mask, f"target__{t}__{h}"].notna().all()
            assert table.loc[~mask, f"target__{t}__{h}"].isna().all()
            assert meta["target_coverage"][h][t]["rows_with_target"] == int(mask.sum())
    assert meta["target_coverage"]["21d"]["views"]["coverage"] < 1.0  # short histories
    # the known signal is there: content features relate to growth
    ok = table["target__views__14d__mask"] & table["run__present"]
    rho = (
        table.loc[ok, ["target__views__14d", "shot_cuts__cut_rate_per_min"]]
        .corr(method="spearman")
        .iloc[0, 1]
    )
    assert rho > 0.25
    # channels: from the snapshots, from the run manifests, and missing with a reason
    assert set(table["channel_id__source"].dropna()) == {"snapshot", "run"}
    assert (table.loc[~table["channel_id__present"], "channel_id__missing_reason"] == "not_youtube").all()
    # metadata groups cover the table exactly once
    groups = meta["column_groups"]
    listed = (
        groups["id"]
        + groups["features_numeric"]
        + groups["features_categorical"]
        + groups["targets"]
        + groups["target_masks"]
        + groups["target_details"]
        + groups["splits"]
    )
    assert sorted(listed) == sorted(table.columns) and len(listed) == len(set(listed))
    assert meta["splits"]["split_time"]["counts"]["train"] > 0
    assert sum(meta["splits"]["split_channel"]["counts"].values()) == len(table)


def test_no_leakage_from_snapshots_after_snapshot1(corpus):
    store, snapshots, _, root = corpus
    base, meta = build_training_table(snapshots, store, params(root))
    rng = np.random.default_rng(0)
    perturbed = snapshots.copy()
    first = perturbed.groupby(["platform_id", "video_id"])["snapshot_at"].transform("min")
    later = perturbed["snapshot_at"] > first
    for col in ("views", "likes", "comments"):
        perturbed.loc[later, col] = perturbed.loc[later, col] * rng.uniform(0.1, 10.0, later.sum()) + 7
    perturbed.loc[later, "title"] = "CHANGED!!! #later 🎉"
    perturbed.loc[later, "tags"] = "x|y|z"
    perturbed.loc[later, "category"] = "99"
    perturbed.loc[later, "channel_subscriber_count"] = 1e9
    changed, _ = build_training_table(perturbed, store, params(root))
    features = meta["column_groups"]["features_numeric"] + meta["column_groups"]["features_categorical"]
    pd.testing.assert_frame_equal(base[features], changed[features])
    pd.testing.assert_frame_equal(base[ID_COLUMNS + SPLIT_COLUMNS], changed[ID_COLUMNS + SPLIT_COLUMNS])
    assert not base["target__views__14d"].equals(changed["target__views__14d"])  # targets did move


def test_splits_do_not_leak(corpus):
    store, snapshots, _, root = corpus
    table, meta = build_training_table(snapshots, store, params(root))
    by_channel = table.dropna(subset=["channel_id"]).groupby("channel_id")["split_channel"].nunique()
    assert (by_channel == 1).all()
    assert (table.loc[table["channel_id"].isna(), "split_channel"] == "excluded").all()
    s = table.set_index("split_time")["snapshot1_at"]
    gap = pd.Timedelta(days=2)
    assert s.loc[["valid"]].min() >= s.loc[["train"]].max() + gap
    assert s.loc[["test"]].min() >= s.loc[["valid"]].max() + gap
    assert meta["splits"]["split_time"]["counts"]["excluded"] > 0  # rows inside the gaps


def test_rebuild_is_byte_identical(corpus, tmp_path):
    store, snapshots, _, root = corpus
    digests = []
    for i in range(2):
        table, meta = build_training_table(snapshots.sample(frac=1.0, random_state=i), store, params(root))
        path = tmp_path / f"t{i}.parquet"
        DeterministicParquetDataset(str(path)).save(table)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert digest == meta["dataset_fingerprint"]
        digests.append(digest)
    assert digests[0] == digests[1]
    loaded = DeterministicParquetDataset(str(tmp_path / "t0.parquet")).load()
    assert list(loaded.columns) == list(table.columns) and len(loaded) == len(table)


def test_drop_rows_without_run(corpus):
    store, snapshots, _, root = corpus
    table, meta = build_training_table(
        snapshots, store, params(root, run_features={"n_jobs": 1, "drop_rows_without_run": True})
    )
    assert table["run__present"].all()
    assert meta["runs"]["rows_dropped_without_run"] == CFG.n_videos - len(table) > 0


def test_parallel_aggregation_equals_serial(corpus, monkeypatch):
    from trendflow.dataset import runs

    store, snapshots, _, root = corpus
    serial, _ = build_training_table(snapshots, store, params(root))
    monkeypatch.setattr(runs, "PARALLEL_MIN_RUNS", 1)
    parallel, _meta = build_training_table(snapshots, store, params(root, run_features={"n_jobs": 2}))
    pd.testing.assert_frame_equal(serial, parallel)


def test_incomplete_corpus_is_regenerated(tmp_path):
    store = ResultStore(str(tmp_path / "store"))
    cfg = SyntheticConfig(n_videos=8, n_channels=2, seed=3)
    _, info = ensure_corpus(store, cfg)
    victim = store.find("synthetic", suffix="manifest.json")[0].rsplit("/", 2)[0]
    store.delete(victim, recursive=True)  # e.g. removed by hand or by another process
    _, again = ensure_corpus(store, cfg)
    manifests = store.find("synthetic", suffix="manifest.json")
    assert len(manifests) == info["runs_written"] == again["runs_written"]
