"""`trendflow delete` and `trendflow retention apply` on a local store and on the S3 endpoint.

Real runs are made first (profile `signals` on small generated videos), with their Level 1
entries, journals and checkpoints; a staged input, cached API answers and queue results in a
real Redis name the video too. After the delete nothing in the store, the cache or Redis names
the video, another video is untouched, and a second delete succeeds doing nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np
import redis

from trendflow.contracts.identity import utc_now
from trendflow.dataprocessor.component import PrivacyPolicy
from trendflow.dataprocessor.run import ProcessRequest, RunOutcome, process_video
from trendflow.dataprocessor.run_index import find_cached_run
from trendflow.dataprocessor.state.global_state import GlobalStateManager
from trendflow.dataset.youtube_api import ApiCacheIndex
from trendflow.privacy.deletion import delete_video, subject_digest
from trendflow.privacy.retention import apply_retention
from trendflow.storage.npz_io import read_npz
from trendflow.storage.store import ResultStore


def _process(
    store: ResultStore, video: Path, video_id: str, force: bool = False, **policy: object
) -> RunOutcome:
    sidecar = video.parent / f"{video_id}.json"
    sidecar.write_text(json.dumps({"title": f"title of {video_id}", "tags": ["a", "b"]}))
    outcome = process_video(
        ProcessRequest(
            source=str(video),
            store=store,
            profile="signals",
            platform_id="youtube",
            video_id=video_id,
            metadata_file=sidecar,
            force=force,
            policy=PrivacyPolicy(**policy),  # type: ignore[arg-type]
        )
    )
    assert outcome.status == "success", outcome
    return outcome


def _everything(store: ResultStore) -> dict[str, bytes]:
    return {rel: store.read_bytes(rel) for rel in store.find("")}


def test_delete_removes_every_trace_on_both_stores(
    store_factory: Callable[[], ResultStore],
    tiny_videos: dict[str, Path],
    tmp_path: Path,
    redis_server,
) -> None:
    store = store_factory()
    doomed, kept = "doomedvid01", "keptvideo02"
    first = _process(store, tiny_videos["valid_a"], doomed)
    _process(store, tiny_videos["valid_a"], doomed, True, keep_raw_text=True, raw_text_retention_days=3)
    other = _process(store, tiny_videos["valid_c"], kept)
    store.write_bytes(f"_staging/youtube/{doomed}/input.mp4", b"staged bytes")
    assert doomed in GlobalStateManager(store).compact().model_dump_json()

    cache = ApiCacheIndex(tmp_path / "api.jsonl")
    cache.put_many("video", {doomed: {"status": "found", "channel_id": "UCx"}, kept: {"status": "found"}})
    client = redis.Redis.from_url(redis_server.url())
    result = {"status": "SUCCESS", "result": {"platform_id": "youtube", "video_id": doomed}}
    run_id = first.identity.run_id
    client.set(f"celery-task-meta-{run_id}", json.dumps(result))
    client.set("celery-task-meta-cachehit-job", json.dumps(result))  # a cache hit's own task id
    client.set(f"trendflow:attempts:{run_id}", 1)
    client.set("celery-task-meta-other", json.dumps({"result": {"platform_id": "youtube", "video_id": kept}}))

    report = delete_video(
        store, "youtube", doomed, api_cache=tmp_path / "api.jsonl", redis_url=redis_server.url()
    )
    assert len(report.run_ids) == 2 and report.store_objects > 10
    assert (report.api_cache_entries, report.queue_keys) == (1, 3)

    leftovers = {
        rel: data for rel, data in _everything(store).items() if doomed.encode() in data or doomed in rel
    }
    assert not leftovers, sorted(leftovers)
    record = store.read_json(f"_deletions/{subject_digest('youtube', doomed)}.json")
    assert record["runs"] == 2 and doomed not in json.dumps(record)
    assert doomed not in (tmp_path / "api.jsonl").read_text() and kept in (tmp_path / "api.jsonl").read_text()
    assert not client.exists(f"celery-task-meta-{run_id}", "celery-task-meta-cachehit-job")
    assert client.exists("celery-task-meta-other")

    survivor = find_cached_run(store, "youtube", kept, other.identity.config_hash)
    assert survivor is not None and survivor.run.run_id == other.identity.run_id

    again = delete_video(
        store, "youtube", doomed, api_cache=tmp_path / "api.jsonl", redis_url=redis_server.url()
    )
    assert (again.run_ids, again.store_objects, again.api_cache_entries, again.queue_keys) == ([], 0, 0, 0)


def test_retention_strips_expired_raw_text_only(
    store_factory: Callable[[], ResultStore], tiny_videos
) -> None:
    store = store_factory()
    outcome = _process(
        store, tiny_videos["valid_a"], "rawtextvid1", keep_raw_text=True, raw_text_retention_days=2
    )
    plain = _process(store, tiny_videos["valid_c"], "plainvid001")
    (npz,) = [p for p in store.find(outcome.identity.platform_id + "/rawtextvid1") if "text_stats" in p]
    arrays, meta = read_npz(store, npz)
    assert "raw_title" in arrays and meta.raw_text_retention_days == 2

    assert apply_retention(store).expired == []  # inside its retention: kept
    later = utc_now() + timedelta(days=2, hours=1)
    report = apply_retention(store, now=later)
    assert report.expired == [npz]
    arrays_after, meta_after = read_npz(store, npz)
    assert (
        not [k for k in arrays_after if k.startswith("raw_")] and meta_after.raw_text_retention_days is None
    )
    assert set(arrays_after) == {k for k in arrays if not k.startswith("raw_")}
    for name, values in arrays_after.items():
        np.testing.assert_array_equal(values, arrays[name])
    assert find_cached_run(store, "youtube", "rawtextvid1", outcome.identity.config_hash) is not None
    assert find_cached_run(store, "youtube", "plainvid001", plain.identity.config_hash) is not None
    assert apply_retention(store, now=later).expired == []  # idempotent


def test_cli_delete_and_retention(tiny_videos: dict[str, Path], tmp_path: Path) -> None:
    store = ResultStore(str(tmp_path / "store"))
    _process(store, tiny_videos["valid_a"], "clivideo001")
    env = {**os.environ, "TRENDFLOW_STORE": str(tmp_path / "store")}
    env.pop("TRENDFLOW_REDIS_URL", None)

    def cli(*args: str) -> dict:
        proc = subprocess.run(
            [sys.executable, "-m", "trendflow", *args], env=env, cwd=tmp_path, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.strip().splitlines()[-1])

    first = cli("delete", "--platform-id", "youtube", "--video-id", "clivideo001")
    assert first["status"] == "success" and len(first["run_ids"]) == 1 and first["queue"] == "skipped"
    assert "clivideo001" not in json.dumps(first)
    assert cli("delete", "--platform-id", "youtube", "--video-id", "clivideo001")["store_objects"] == 0
    assert cli("retention", "apply")["expired"] == 0
    bad = subprocess.run(
        [sys.executable, "-m", "trendflow", "delete", "--platform-id", "youtube", "--video-id", "../etc"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert (
        bad.returncode != 0
        and json.loads(bad.stdout.strip().splitlines()[-1])["error_code"] == "invalid_request"
    )
