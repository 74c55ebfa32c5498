"""Run selection through manifests and NPZ aggregation into fixed, named columns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from trendflow.contracts.identity import RunIdentity
from trendflow.contracts.manifest import ComponentRecord, Manifest, ProfileInfo
from trendflow.contracts.npz_meta import NpzMeta, Producer
from trendflow.dataset.npz_fast import fast_decode_npz
from trendflow.dataset.run_features import (
    RunRecord,
    apply_pca,
    build_run_features,
    known_components,
    select_runs,
    series_stats,
    vector_mean,
)
from trendflow.storage.layout import RunLayout
from trendflow.storage.npz_io import decode_npz, write_npz
from trendflow.storage.store import ResultStore

H1, H2 = "1" * 64, "2" * 64
PRODUCER = Producer(name="test", version="1")
T = datetime(2024, 1, 1, tzinfo=UTC)


def write_run(store, video, run_id, created, components, status="success", config_hash=H1):
    run = RunIdentity(
        platform_id="youtube",
        video_id=video,
        run_id=run_id,
        config_hash=config_hash,
        sampling_policy_version="s",
        dataprocessor_version="t",
        created_at=created,
    )
    layout = RunLayout.of(run)
    records = []
    for name, processor, arrays, empty in components:
        meta = NpzMeta(
            run=run,
            component=name,
            processor=processor,
            producer=PRODUCER,
            component_schema_version="1",
            status="empty" if empty else "ok",
            empty_reason=empty,
        )
        ref = write_npz(store, layout.npz(processor, name), layout.run_dir, arrays, meta)
        records.append(
            ComponentRecord(
                name=name,
                processor=processor,
                required=True,
                status="empty" if empty else "ok",
                empty_reason=empty,
                artifacts=[ref],
                producer=PRODUCER,
                schema_version="1",
            )
        )
    manifest = Manifest(
        run=run,
        profile=ProfileInfo(name="p", components=[]),
        status=status,
        error_code="component_failed" if status == "error" else None,
        started_at=created,
        updated_at=created,
        components=records,
        source={"kind": "youtube", "channel_id": "UCfromRun"},
    )
    store.write_bytes(layout.manifest, manifest.model_dump_json().encode())


def frame_stats(brightness):
    b = np.asarray(brightness, dtype=np.float32)
    mask = np.isfinite(b)
    mask[-1] = False  # the last unit is masked out
    return (
        "frame_stats",
        "visual",
        {
            "timestamps_sec": np.arange(len(b), dtype=np.float64),
            "timestamps_sec__mask": np.ones(len(b), bool),
            "brightness": b,
            "brightness__mask": mask,
        },
        None,
    )


def custom(dim, value):
    emb = np.full((3, dim), value, dtype=np.float32)
    emb[:, 0] += np.arange(3)
    return (
        "image_embedding",
        "visual",
        {
            "embedding": emb,
            "embedding__mask": np.ones(3, bool),
            "label": np.array("cat"),
            "label__mask": np.array(True),
            "score": np.array(0.5),
            "score__mask": np.array(False),
            "small": np.ones((3, 4)),
            "small__mask": np.array([True, True, False]),
        },
        None,
    )


def test_aggregation_rules():
    assert series_stats(np.array([1.0, 2.0, np.nan, 100.0]), np.array([True, True, True, False])) == [
        1.5,
        0.5,
        1.0,
        2.0,
        1.5,
    ]
    assert all(np.isnan(series_stats(np.array([1.0]), np.array([False]))))
    np.testing.assert_allclose(vector_mean(np.array([[1.0, 2.0], [3.0, np.nan]]), None), [2.0, 2.0])


@pytest.fixture
def populated(tmp_path):
    store = ResultStore(str(tmp_path / "store"))
    # v1: an old and a new run of the same config -> the new one wins
    write_run(store, "v1", "old", T, [frame_stats([9, 9, 9, 9])])
    write_run(store, "v1", "new", T + timedelta(hours=1), [frame_stats([1, 2, 3, 99]), custom(100, 1.0)])
    # v2: a newer run of a rarer config is ignored under `auto`
    write_run(store, "v2", "a", T, [frame_stats([4, 4, 4, 4]), custom(100, 2.0)])
    write_run(store, "v2", "b", T + timedelta(days=1), [frame_stats([7, 7, 7, 7])], config_hash=H2)
    # v3: only a failed run
    write_run(store, "v3", "x", T, [frame_stats([5, 5, 5, 5])], status="error")
    # v4: an empty audio component
    write_run(
        store,
        "v4",
        "y",
        T,
        [
            frame_stats([1, 1, 1, 1]),
            custom(100, 3.0),
            (
                "loudness",
                "audio",
                {"silence_ratio": np.array(np.nan), "silence_ratio__mask": np.array(False)},
                "no_audio_track",
            ),
        ],
    )
    keys = pd.DataFrame({"platform_id": ["youtube"] * 5, "video_id": ["v1", "v2", "v3", "v4", "v5"]})
    return store, keys


def test_selection_and_columns(populated):
    store, keys = populated
    rf = build_run_features(keys, store, pca_components=2)
    f = rf.frame
    f.index = keys["video_id"]
    assert rf.info["config_hash"] == H1
    assert f.loc["v1", "run_id"] == "new" and f.loc["v2", "run_id"] == "a"
    assert f.loc["v1", "frame_stats__brightness__mean"] == 2.0  # masked 99 excluded
    assert f.loc["v1", "frame_stats__brightness__max"] == 3.0
    assert f.loc["v3", "run__missing_reason"] == "no_successful_run"
    assert f.loc["v5", "run__missing_reason"] == "no_run"
    assert not f.loc["v3", "frame_stats__present"] and np.isnan(f.loc["v3", "frame_stats__brightness__mean"])
    assert f.loc["v4", "loudness__empty_reason"] == "no_audio_track" and not f.loc["v4", "loudness__present"]
    assert f.loc["v1", "loudness__empty_reason"] == "component_not_in_run"
    assert f.loc["v1", "run__channel_id"] == "UCfromRun"
    # positions are not features; known components always have columns; new arrays get columns
    assert not any("timestamps_sec" in c for c in rf.columns)
    assert "spectral__mfcc__mean_12" in rf.columns and "tempo__tempo_bpm" in rf.columns
    assert {
        "image_embedding__label",
        "image_embedding__score",
        "image_embedding__small__mean_3",
        "image_embedding__embedding__pca_1",
    } <= set(rf.columns)
    assert f.loc["v1", "image_embedding__label"] == "cat" and np.isnan(f.loc["v1", "image_embedding__score"])
    assert f.loc["v1", "image_embedding__small__mean_0"] == 1.0
    assert rf.vectors["image_embedding__embedding"].shape == (5, 100)
    assert rf.info["counts"]["runs_superseded"] == 1
    # explicit config hash
    rf2 = build_run_features(keys, store, config_hash=H2)
    assert (
        rf2.frame["run_id"].tolist()[1] == "b"
        and rf2.frame["run__missing_reason"].tolist()[0] == "no_run_for_config_hash"
    )
    # every known component has a present/empty_reason pair
    for comp in known_components():
        assert f"{comp}__present" in rf.columns


def test_pca_is_fit_on_training_rows_only(populated):
    store, keys = populated
    rf = build_run_features(keys, store, pca_components=2)
    train = np.array([True, True, False, False, False])
    frame = rf.frame.copy()
    info = apply_pca(frame, rf.vectors, train, 2)
    assert info["image_embedding__embedding"]["fit_rows"] == 2
    before = frame["image_embedding__embedding__pca_0"].to_numpy()
    # changing a non-training row's vector changes only that row's projection
    vectors = {k: v.copy() for k, v in rf.vectors.items()}
    vectors["image_embedding__embedding"][3] += 50.0
    frame2 = rf.frame.copy()
    apply_pca(frame2, vectors, train, 2)
    after = frame2["image_embedding__embedding__pca_0"].to_numpy()
    np.testing.assert_allclose(before[:2], after[:2])
    assert np.isnan(before[2]) and np.isnan(before[4])  # no vector: NaN


def test_fast_decoder_matches_numpy(populated):
    store, _ = populated
    for path in store.find("youtube", suffix=".npz"):
        data = store.read_bytes(path)
        a, ma = decode_npz(data)
        b, mb = fast_decode_npz(data)
        assert ma == mb and a.keys() == b.keys()
        for k in a:
            assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape
            np.testing.assert_array_equal(a[k], b[k])


def test_select_runs_tie_breaks():
    recs = [
        RunRecord("youtube/v/a", "youtube", "v", "a", H1, "2024-01-01T00:00:00+00:00", "success"),
        RunRecord("youtube/v/b", "youtube", "v", "b", H1, "2024-01-01T00:00:00+00:00", "success"),
        RunRecord("youtube/w/c", "youtube", "w", "c", H2, "2024-01-02T00:00:00+00:00", "success"),
    ]
    # one video each: the tie goes to the config with the newest run
    sel = select_runs(recs, [("youtube", "v"), ("youtube", "w")])
    assert sel.config_hash == H2
    recs.append(RunRecord("youtube/x/d", "youtube", "x", "d", H1, "2023-01-01T00:00:00+00:00", "success"))
    sel = select_runs(recs, [("youtube", "v"), ("youtube", "w"), ("youtube", "x")])
    assert sel.config_hash == H1  # more videos wins
    assert sel.selected[("youtube", "v")].run_id == "b"  # same created_at: the larger run_id
    assert sel.missing_reason[("youtube", "w")] == "no_run_for_config_hash"


@pytest.mark.s3
def test_run_features_from_s3(s3_options, s3_bucket):
    store = ResultStore(f"s3://{s3_bucket}/results", storage_options=dict(s3_options))
    write_run(store, "v1", "r1", T, [frame_stats([1, 2, 3, 4])])
    keys = pd.DataFrame({"platform_id": ["youtube"], "video_id": ["v1"]})
    rf = build_run_features(keys, store, storage_options=dict(s3_options))
    assert rf.frame["frame_stats__brightness__mean"].iat[0] == 2.0


def test_fast_decoder_skips_entries(populated):
    store, _ = populated
    path = next(p for p in store.find("youtube", suffix=".npz") if p.endswith("frame_stats.npz"))
    arrays, meta = fast_decode_npz(store.read_bytes(path), skip=lambda n: n.startswith("timestamps"))
    assert "brightness" in arrays and not any(k.startswith("timestamps") for k in arrays)
    assert meta.component == "frame_stats"
