"""`trendflow batch` keeps sidecar raw text (title, description, tags) out of everything it
persists: the batch ledger (`*.state.jsonl`) and the results in Redis. A real Redis and a real
worker run the jobs; afterwards every Redis value and the ledger are searched for the text."""

from __future__ import annotations

import json
from pathlib import Path

import redis

from trendflow.batch.jobs import plan_jobs
from trendflow.batch.runner import BatchOptions, run_batch
from trendflow.batch.state import BatchState
from trendflow.batch.video_list import VideoEntry
from trendflow.worker.config import WorkerSettings

SECRET_TITLE = "zq-private-title-7731"
SECRET_DESCRIPTION = "zq-private-description-9942"
SECRET_TAG = "zq-private-tag-5521"
SECRETS = (SECRET_TITLE, SECRET_DESCRIPTION, SECRET_TAG)


def _sidecar(folder: Path) -> Path:
    path = folder / "sidecar.json"
    path.write_text(
        json.dumps(
            {
                "extractor_key": "Youtube",
                "id": "abcdefghijk",
                "title": SECRET_TITLE,
                "description": SECRET_DESCRIPTION,
                "tags": [SECRET_TAG],
                "uploader": "not needed by any run",
                "timestamp": 1700000000,
            }
        )
    )
    return path


def _redis_values(client: redis.Redis) -> list[bytes]:
    values: list[bytes] = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        if kind == b"string":
            values.append(client.get(key) or b"")
        elif kind == b"list":
            values.extend(client.lrange(key, 0, -1))
        elif kind == b"hash":
            values.extend(v for pair in client.hgetall(key).items() for v in pair)
        elif kind in (b"set", b"zset"):
            values.extend(client.zrange(key, 0, -1) if kind == b"zset" else client.smembers(key))
    return values


def test_payload_carries_only_what_the_run_needs(tiny_videos: dict[str, Path], tmp_path: Path) -> None:
    entry = VideoEntry(source=str(tiny_videos["valid_a"]), metadata=str(_sidecar(tmp_path)))
    (job,) = plan_jobs([entry], "signals")
    assert job.payload is not None and job.payload.metadata is not None
    assert job.payload.metadata["title"] == SECRET_TITLE  # the text components need it
    assert "uploader" not in json.dumps(job.payload.metadata)
    assert (job.payload.platform_id, job.payload.video_id) == ("youtube", "abcdefghijk")


def test_ledger_and_redis_results_hold_no_sidecar_text(
    queue_settings: WorkerSettings, worker_factory, tiny_videos: dict[str, Path], tmp_path: Path
) -> None:
    video_list = tmp_path / "videos.csv"
    video_list.write_text(f"source,metadata\n{tiny_videos['valid_a']},{_sidecar(tmp_path)}\n")
    state_path = tmp_path / "videos.csv.state.jsonl"

    # Submitted while no worker runs: the ledger line of a pending job has no text either.
    pending = run_batch(video_list, queue_settings, BatchOptions(profile="signals", wait=False), state_path)
    assert pending.submitted == 1
    assert not any(s in state_path.read_text() for s in SECRETS)
    (record,) = BatchState(state_path).latest.values()
    assert record.payload is not None and record.payload.metadata is None and record.metadata_sha256

    worker_factory(queue_settings)
    report = run_batch(
        video_list,
        queue_settings,
        BatchOptions(profile="signals", wait=True, poll_s=0.1, timeout_s=180),
        state_path,
    )
    (row,) = report.rows()
    assert row["status"] == "success", row
    assert report.followed == 1  # followed from the ledger; the run still got its metadata
    ledger = state_path.read_text()
    assert not any(s in ledger for s in SECRETS), "raw text in the batch ledger"

    client = redis.Redis.from_url(queue_settings.redis_url)
    blob = b"\n".join(_redis_values(client))
    assert b"success" in blob, "the job's result is in Redis"
    assert not any(s.encode() in blob for s in SECRETS), "raw text in Redis after the job finished"
