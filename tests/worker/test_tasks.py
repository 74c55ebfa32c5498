"""The `process_video` task in real worker processes, over a real Redis."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from trendflow.batch.dispatcher import Dispatcher, JobState, TrackedJob
from trendflow.batch.jobs import plan_jobs
from trendflow.batch.video_list import VideoEntry
from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.manifest import Manifest
from trendflow.storage.store import ResultStore
from trendflow.worker.celery_app import TASK_NAME
from trendflow.worker.config import WorkerSettings


def jobs_for(paths: list[Path], profile: str = "signals", force: bool = False) -> list[TrackedJob]:
    planned = plan_jobs([VideoEntry(source=str(p)) for p in paths], profile, force=force)
    return [TrackedJob(payload=p.payload) for p in planned]


def run(dispatcher: Dispatcher, jobs: list[TrackedJob]) -> list[TrackedJob]:
    for job in jobs:
        dispatcher.submit(job)
    return dispatcher.follow(jobs, poll_s=0.1, timeout_s=180, no_worker_timeout_s=60)


def test_jobs_succeed_and_a_second_request_is_a_cache_hit(
    queue_settings: WorkerSettings, worker_factory, tiny_videos: dict[str, Path]
) -> None:
    worker = worker_factory(queue_settings)
    dispatcher = Dispatcher(queue_settings)
    [first] = run(dispatcher, jobs_for([tiny_videos["valid_a"]]))
    result = first.result
    assert result.status == "success", result
    assert result.run_id == first.payload.run_id and not result.cache_hit
    assert result.retry_count == 0 and result.worker == worker.hostname
    assert result.queue_wait_sec is not None and result.duration_sec > 0
    store = ResultStore(queue_settings.store_root)
    manifest = Manifest.model_validate_json(Path(result.manifest_uri).read_bytes())
    assert manifest.status == "success" and manifest.retry_count == 0
    assert manifest.run.run_id == first.payload.run_id

    # Same idempotency key, new run id: the finished run is returned, nothing is recomputed.
    [again] = run(dispatcher, jobs_for([tiny_videos["valid_a"]]))
    assert again.payload.run_id != first.payload.run_id
    assert again.result.cache_hit and again.result.run_id == first.payload.run_id
    assert not store.exists(f"local/{first.payload.video_id}/{again.payload.run_id}/manifest.json")

    # force: a new run.
    [forced] = run(dispatcher, jobs_for([tiny_videos["valid_a"]], force=True))
    assert forced.result.status == "success" and not forced.result.cache_hit
    assert forced.result.run_id == forced.payload.run_id
    # Scratch is emptied after every job.
    assert [p for p in Path(worker.settings.scratch_root).rglob("*") if p.is_file()] == []


def test_bad_input_fails_fast_with_its_code(
    queue_settings: WorkerSettings, worker_factory, tiny_videos: dict[str, Path]
) -> None:
    worker_factory(queue_settings)
    dispatcher = Dispatcher(queue_settings)
    broken, short = run(dispatcher, jobs_for([tiny_videos["broken"], tiny_videos["too_short"]]))
    assert (broken.result.error_code, short.result.error_code) == (
        ErrorCode.INVALID_MEDIA,
        ErrorCode.VIDEO_TOO_SHORT,
    )
    assert broken.result.retry_count == 0 and short.result.retry_count == 0

    # A malformed payload is `invalid_request` and is never retried.
    task_id = "bad-payload-1"
    dispatcher.app.send_task(
        TASK_NAME, args=[{"run_id": "x", "bogus": True}], task_id=task_id, queue=queue_settings.queue
    )
    deadline = time.monotonic() + 60
    while (meta := dispatcher.app.backend.get_task_meta(task_id))["status"] != "SUCCESS":
        assert time.monotonic() < deadline, meta
        time.sleep(0.1)
    assert meta["result"]["error_code"] == "invalid_request" and meta["result"]["retry_count"] == 0
    assert not meta.get("args"), "results do not keep the task's arguments (the payload's sidecar text)"


def test_worker_health_endpoints(queue_settings: WorkerSettings, worker_factory) -> None:
    worker = worker_factory(queue_settings)
    status, body = worker.health("/health/live")
    assert status == 200 and body["status"] == "ok"
    status, body = worker.health("/health")
    assert status == 200, body
    assert body["queue"] == queue_settings.queue
    assert {name for name, check in body["checks"].items() if check["ok"]} == {
        "broker",
        "storage",
        "triton",
        "consumer",
    }


def test_a_job_nobody_consumes_is_reported_not_waited_for_forever(
    queue_settings: WorkerSettings, tiny_videos: dict[str, Path]
) -> None:
    dispatcher = Dispatcher(queue_settings)
    [job] = jobs_for([tiny_videos["valid_a"]])
    dispatcher.submit(job)
    dispatcher.poll([job])
    assert job.state is JobState.QUEUED
    started = time.monotonic()
    with pytest.raises(TrendFlowError) as info:
        dispatcher.follow([job], poll_s=0.1, timeout_s=2)
    assert info.value.code is ErrorCode.TIMEOUT and "not finished after 2s" in info.value.message
    assert time.monotonic() - started < 10
