"""The SYNTHETIC corpus stands in for the runs of the profile the user processed with, and the
dataset pipeline joins runs under that profile's config_hash (the baseline demo's table)."""

from __future__ import annotations

import pandas as pd
import pytest

from trendflow.batch.kedro_datasets import ResultStoreDataset
from trendflow.contracts.manifest import Manifest
from trendflow.dataprocessor.outputs import check_arrays
from trendflow.dataset.components import profile_components
from trendflow.dataset.synthetic import SyntheticConfig, ensure_corpus
from trendflow.pipelines.dataset.nodes import build_run_features, dataset_profile
from trendflow.storage.layout import MANIFEST
from trendflow.storage.npz_io import read_npz
from trendflow.worker.execution import profile_config_hash


@pytest.fixture(scope="module")
def baseline_corpus(tmp_path_factory):
    store = ResultStoreDataset(root=str(tmp_path_factory.mktemp("store"))).load()
    cfg = SyntheticConfig(n_videos=12, n_channels=3, profile="baseline")
    snapshots, info = ensure_corpus(store, cfg)
    return store, cfg, snapshots, info


def test_the_corpus_follows_the_profiles_components_and_hash(baseline_corpus) -> None:
    store, cfg, _, info = baseline_corpus
    assert info["config_hash"] == profile_config_hash("baseline") != profile_config_hash("signals")
    assert cfg.digest() != SyntheticConfig(n_videos=12, n_channels=3).digest()
    declared = {c.name: c for c in profile_components("baseline")}
    assert {"image_embedding", "text_embedding", "transcript"} <= set(declared)
    manifests = [Manifest.model_validate_json(store.read_bytes(p)) for p in store.find("synthetic", MANIFEST)]
    ok = [m for m in manifests if m.status == "success"]
    assert ok and all(m.run.config_hash == info["config_hash"] for m in manifests)
    for manifest in ok:
        assert [c.name for c in manifest.components] == list(declared)
        run_dir = f"synthetic/{manifest.run.video_id}/{manifest.run.run_id}"
        for record in manifest.components:
            arrays, meta = read_npz(store, f"{run_dir}/{record.artifacts[0].path}")
            check_arrays(record.name, declared[record.name].component.outputs, arrays)  # declared form
            assert meta.status == record.status


def test_runs_join_under_the_processing_profiles_hash(baseline_corpus) -> None:
    store, _, snapshots, _ = baseline_corpus
    keys = snapshots.drop_duplicates("video_id").assign(platform_id="synthetic")[["platform_id", "video_id"]]
    keys = keys.reset_index(drop=True)
    params = {"run_features": {"config_hash": "profile", "n_jobs": 1}}
    assert dataset_profile({}, {"profile": "baseline"}) == "baseline"
    assert dataset_profile({"profile": "signals"}, {"profile": "baseline"}) == "signals"

    joined = build_run_features(keys, pd.DataFrame(), params, {"profile": "baseline"}, store)
    assert joined.info["config_hash"] == profile_config_hash("baseline")
    assert joined.frame["run__present"].sum() >= len(keys) - 3  # a few planted no-run / failed videos
    assert any(c.startswith("image_embedding__") for c in joined.columns)

    # processed with baseline, joined under signals: nothing matches (the demo's old bug)
    other = build_run_features(keys, pd.DataFrame(), params, {"profile": "signals"}, store)
    assert not other.frame["run__present"].any()
    assert "no_run_for_config_hash" in set(other.frame["run__missing_reason"].dropna())
