"""The storage adapter, run against a local folder AND the real S3 HTTP endpoint."""

from __future__ import annotations

import numpy as np
import pytest

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.identity import RunIdentity, utc_now
from trendflow.contracts.npz_meta import NpzMeta, Producer
from trendflow.storage.layout import RunLayout
from trendflow.storage.npz_io import read_npz, write_npz
from trendflow.storage.store import TMP_MARKER, ResultStore


def _identity() -> RunIdentity:
    return RunIdentity(
        platform_id="local",
        video_id="abc_123",
        run_id="20260101T000000Z-deadbeef",
        config_hash="0" * 64,
        sampling_policy_version="sampling-1.0.0",
        dataprocessor_version="0.1.0",
        created_at=utc_now(),
    )


def test_write_read_roundtrip(store: ResultStore) -> None:
    digest = store.write_bytes("a/b/c.bin", b"hello")
    assert store.read_bytes("a/b/c.bin") == b"hello"
    assert digest == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    assert store.exists("a/b/c.bin")
    assert not store.exists("a/b/missing.bin")
    assert store.size("a/b/c.bin") == 5


def test_overwrite_is_whole(store: ResultStore) -> None:
    store.write_json("x/state.json", {"v": 1})
    store.write_json("x/state.json", {"v": 2, "pad": "y" * 10_000})
    assert store.read_json("x/state.json")["v"] == 2
    assert not [p for p in store.find("x") if TMP_MARKER in p], "no temp files may remain"


def test_listing_and_delete(store: ResultStore) -> None:
    for name in ("r1/manifest.json", "r2/manifest.json", "r2/visual/x.npz"):
        store.write_bytes(f"v/{name}", b"{}")
    assert store.listdir("v") == ["r1", "r2"]
    assert store.find("v", suffix=".npz") == ["v/r2/visual/x.npz"]
    store.delete("v/r2", recursive=True)
    assert store.listdir("v") == ["r1"]
    assert store.listdir("nothing-here") == []
    store.delete("v/not-there")  # deleting what is gone is not an error


def test_read_missing_raises_file_not_found(store: ResultStore) -> None:
    with pytest.raises(FileNotFoundError):
        store.read_bytes("missing.json")


def test_paths_cannot_escape(store: ResultStore) -> None:
    with pytest.raises(TrendFlowError) as err:
        store.write_bytes("../outside.txt", b"x")
    assert err.value.code is ErrorCode.INVALID_REQUEST


def test_npz_roundtrip_in_run_layout(store: ResultStore) -> None:
    identity = _identity()
    layout = RunLayout.of(identity)
    assert layout.run_dir == "local/abc_123/20260101T000000Z-deadbeef"
    arrays = {
        "brightness": np.array([1.0, np.nan], np.float32),
        "brightness__mask": np.array([True, False]),
        "language": np.array("en"),
        "language__mask": np.array(True),
    }
    meta = NpzMeta(
        run=identity,
        component="frame_stats",
        processor="visual",
        producer=Producer(name="t", version="1"),
        component_schema_version="1.0.0",
        status="ok",
    )
    ref = write_npz(store, layout.npz("visual", "frame_stats"), layout.run_dir, arrays, meta)
    assert ref.path == "visual/frame_stats.npz"
    loaded, loaded_meta = read_npz(store, layout.npz("visual", "frame_stats"))
    assert loaded_meta.run == identity
    assert loaded_meta.arrays["brightness"] == "<f4 (2,)"
    np.testing.assert_array_equal(loaded["brightness"], arrays["brightness"])
    assert str(loaded["language"]) == "en"


def test_npz_requires_masks(store: ResultStore) -> None:
    identity = _identity()
    layout = RunLayout.of(identity)
    meta = NpzMeta(
        run=identity,
        component="c",
        processor="visual",
        producer=Producer(name="t", version="1"),
        component_schema_version="1",
        status="ok",
    )
    with pytest.raises(ValueError, match="has no mask"):
        write_npz(store, layout.npz("visual", "c"), layout.run_dir, {"x": np.zeros(3)}, meta)


def test_unreachable_s3_is_storage_unavailable() -> None:
    from tests.fixtures.services import free_port

    dead = ResultStore(
        "s3://bucket/x",
        storage_options={
            "key": "k",
            "secret": "s",
            "endpoint_url": f"http://127.0.0.1:{free_port()}",
            "config_kwargs": {"connect_timeout": 1, "retries": {"max_attempts": 1}},
        },
    )
    with pytest.raises(TrendFlowError) as err:
        dead.write_bytes("a.json", b"{}")
    assert err.value.code is ErrorCode.STORAGE_UNAVAILABLE
    assert err.value.transient
