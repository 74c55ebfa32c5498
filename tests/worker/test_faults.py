"""Fault tests of queue execution: real Redis, real S3 endpoint, real Triton, real worker processes.

Each test breaks one thing while jobs run and checks the batch still ends with every job done
exactly once, with its retries recorded: a worker SIGKILLed mid-job, Redis restarted (losing
every key), the S3 endpoint down for a while, Triton down (for a while, and for good).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.fixtures.queue import RedisServer
from tests.fixtures.services import S3_KEY, S3_SECRET
from trendflow.batch.dispatcher import Dispatcher, JobState, TrackedJob
from trendflow.batch.jobs import plan_jobs
from trendflow.batch.video_list import VideoEntry
from trendflow.contracts.errors import MAX_RETRIES, ErrorCode
from trendflow.contracts.manifest import Manifest
from trendflow.dataprocessor.state.journal import read_journal
from trendflow.storage.layout import RunLayout
from trendflow.storage.store import ResultStore
from trendflow.worker.config import WorkerSettings
from trendflow.worker.processes import free_port
from trendflow.worker.tasks import LEASE_KEY

# About 2 minutes together on a quiet 2-core machine (the SIGKILL test waits out a visibility
# timeout of 27 s): slow, run in CI.
pytestmark = pytest.mark.slow


def wait_for(condition: Callable[[], Any], timeout_s: float, what: str, every_s: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def planned(
    paths: list[Path], profile: str = "signals", staging: ResultStore | None = None
) -> list[TrackedJob]:
    jobs = plan_jobs([VideoEntry(source=str(p)) for p in paths], profile, staging_store=staging)
    assert all(j.payload is not None for j in jobs), [j.error for j in jobs]
    return [TrackedJob(payload=j.payload) for j in jobs]


def run_dirs(store: ResultStore, job: TrackedJob) -> list[str]:
    return store.listdir(f"{job.payload.platform_id}/{job.payload.video_id}")


def manifest_of(store: ResultStore, job: TrackedJob) -> Manifest | None:
    layout = RunLayout(job.payload.platform_id, job.payload.video_id, job.payload.run_id)
    if not store.exists(layout.manifest):
        return None
    return Manifest.model_validate_json(store.read_bytes(layout.manifest))


@pytest.fixture(scope="module")
def longer_videos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Inputs whose processing takes a few seconds, so a fault can land in the middle of a job."""
    from trendflow.testing.media import make_video

    folder = tmp_path_factory.mktemp("longer")
    sizes = [(320, 240), (256, 144), (320, 180), (240, 180), (288, 216), (224, 128)]
    return [
        make_video(folder / f"clip{i}.mp4", duration=20.0 + 2 * i, width=w, height=h, audio=i % 2 == 0)
        for i, (w, h) in enumerate(sizes)
    ]


def test_sigkill_mid_job_redelivers_to_another_worker_which_resumes(
    queue_settings: WorkerSettings, worker_factory, longer_videos: list[Path]
) -> None:
    # Short limits so the redelivery comes within the test; the visibility timeout stays above
    # the job time limit, as in production.
    settings = queue_settings.model_copy(update={"job_time_limit_s": 25, "visibility_timeout_s": 27})
    workers = {
        w.hostname: w for w in (worker_factory(settings, name="wa"), worker_factory(settings, name="wb"))
    }
    store = ResultStore(settings.store_root)
    dispatcher = Dispatcher(settings)
    [job] = planned([longer_videos[0]])
    dispatcher.submit(job)

    # The worker that holds the job's lease is the one running it; wait until it is mid-job.
    client = redis.Redis.from_url(settings.redis_url)
    owner = wait_for(lambda: client.get(LEASE_KEY.format(run_id=job.task_id)), 60, "a worker to take the job")
    victim = workers[owner.decode().rsplit(":", 1)[0]]
    survivor = next(w for w in workers.values() if w is not victim)

    def mid_job() -> bool:  # the segmenter and a component done, the run still going
        manifest = manifest_of(store, job)
        done = [c for c in manifest.components if c.status == "ok"] if manifest else []
        return manifest is not None and manifest.status == "running" and len(done) >= 2

    wait_for(mid_job, 90, "the job to be half done", every_s=0.05)
    victim.kill()  # SIGKILL to the worker and its pool children at once: a lost machine
    assert manifest_of(store, job).status == "running"

    [done] = dispatcher.follow([job], poll_s=0.2, timeout_s=180)
    result = done.result
    assert result.status == "success", result
    assert result.worker == survivor.hostname
    assert result.resumed is True and result.retry_count >= 1
    assert result.run_id == job.payload.run_id
    assert run_dirs(store, job) == [job.payload.run_id]  # finished exactly once, in one run
    manifest = manifest_of(store, job)
    assert manifest.status == "success" and manifest.retry_count == result.retry_count
    events = [e.event for e in read_journal(store, RunLayout.of(manifest.run).run_dir).events]
    assert events.count("run_started") == 1 and "run_resumed" in events
    assert "component_reused" in events  # the survivor kept what the victim had finished


def test_redis_restart_during_a_batch_loses_and_duplicates_nothing(
    queue_settings: WorkerSettings, worker_factory, longer_videos: list[Path], tmp_path: Path
) -> None:
    broker = RedisServer(tmp_path / "redis-restart").start()
    try:
        settings = queue_settings.model_copy(update={"redis_url": broker.url()})
        worker_factory(settings, name="ra")
        worker_factory(settings, name="rb")
        store = ResultStore(settings.store_root)
        jobs = planned(longer_videos)
        dispatcher = Dispatcher(settings, broker_outage_s=60)
        for job in jobs:
            dispatcher.submit(job)
        outcome: dict[str, Any] = {}

        def follow() -> None:
            try:
                outcome["jobs"] = dispatcher.follow(jobs, poll_s=0.2, timeout_s=300)
            except Exception as exc:  # reported by the main thread
                outcome["error"] = exc

        follower = threading.Thread(target=follow)
        follower.start()
        wait_for(lambda: any(j.state is JobState.DONE for j in jobs), 120, "a first finished job")
        assert not all(j.state is JobState.DONE for j in jobs), "the batch ended before the restart"
        broker.restart(down_s=3.0)  # no persistence: every queued job, result and marker is gone
        follower.join(timeout=320)
        assert "error" not in outcome, outcome.get("error")
        results = [j.result for j in outcome["jobs"]]
        assert [r.status for r in results] == ["success"] * len(jobs), results
        for job in jobs:
            assert run_dirs(store, job) == [job.payload.run_id]  # no job lost, none computed twice
            assert manifest_of(store, job).status == "success"
        assert sum(j.resubmits for j in jobs) >= 1  # the dispatcher did notice the loss
    finally:
        broker.stop()


def test_s3_down_for_a_while_is_retried_then_succeeds(
    queue_settings: WorkerSettings, worker_factory, tiny_videos: dict[str, Path], s3_options: dict[str, str]
) -> None:
    from moto.server import ThreadedMotoServer

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        options = {"key": S3_KEY, "secret": S3_SECRET, "endpoint_url": endpoint}
        bucket = f"s3down-{time.time_ns()}"
        import s3fs

        s3fs.S3FileSystem(**options).mkdir(bucket)
        settings = queue_settings.model_copy(
            update={"store_root": f"s3://{bucket}/results", "retry_base_s": 1.0, "retry_max_s": 4.0}
        )
        env = {
            "TRENDFLOW_S3_ENDPOINT_URL": endpoint,
            "TRENDFLOW_S3_KEY": S3_KEY,
            "TRENDFLOW_S3_SECRET": S3_SECRET,
        }
        worker_factory(settings, name="s3w", extra_env=env)
        store = ResultStore(settings.store_root, storage_options=options)
        [job] = planned([tiny_videos["valid_a"]], staging=store)  # the input is staged while S3 is up
        dispatcher = Dispatcher(settings)

        server.stop()  # S3 goes away
        dispatcher.submit(job)
        wait_for(lambda: dispatcher.poll([job]) or job.state is JobState.RETRYING, 120, "a storage retry")
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()  # ... and comes back with its data

        [done] = dispatcher.follow([job], poll_s=0.2, timeout_s=180)
        result = done.result
        assert result.status == "success", result
        assert result.retry_count >= 1
        assert ErrorCode.STORAGE_UNAVAILABLE in result.retry_error_codes
        manifest = manifest_of(store, job)
        assert manifest.status == "success" and manifest.retry_count == result.retry_count
    finally:
        server.stop()


@pytest.fixture
def image_encoder_repository(built_repository: dict, tmp_path: Path) -> Path:
    """A repository with only the model `baseline` needs, so a server comes up in seconds."""
    from tests.fixtures.triton import copy_model

    repository = tmp_path / "models"
    copy_model("image_encoder", repository)
    return repository


def test_triton_down_then_up_is_retried_with_backoff_then_succeeds(
    queue_settings: WorkerSettings,
    worker_factory,
    tiny_videos: dict[str, Path],
    image_encoder_repository: Path,
) -> None:
    from trendflow.serving.triton_server import TritonServer

    grpc_port = free_port()
    settings = queue_settings.model_copy(
        update={"profiles": ("baseline",), "triton_url": f"127.0.0.1:{grpc_port}",
                "retry_base_s": 2.0, "retry_max_s": 8.0}
    )  # fmt: skip
    worker_factory(settings, name="tw")
    dispatcher = Dispatcher(settings)
    [job] = planned([tiny_videos["valid_a"]], profile="baseline")
    dispatcher.submit(job)
    wait_for(lambda: dispatcher.poll([job]) or job.state is JobState.RETRYING, 120, "a triton retry")
    server = TritonServer(repository=image_encoder_repository, grpc_port=grpc_port).start()
    try:
        [done] = dispatcher.follow([job], poll_s=0.2, timeout_s=240)
    finally:
        server.stop()
    result = done.result
    assert result.status == "success", result
    assert result.retry_count >= 1
    assert set(result.retry_error_codes) == {ErrorCode.TRITON_UNAVAILABLE}


def test_triton_down_for_good_ends_with_a_clear_error(
    queue_settings: WorkerSettings, worker_factory, tiny_videos: dict[str, Path]
) -> None:
    settings = queue_settings.model_copy(
        update={"profiles": ("baseline",), "triton_url": f"127.0.0.1:{free_port()}",
                "retry_base_s": 0.2, "retry_max_s": 0.8}
    )  # fmt: skip
    worker = worker_factory(settings, name="tdown")
    status, body = worker.health()
    assert status == 503 and not body["checks"]["triton"]["ok"]
    dispatcher = Dispatcher(settings)
    [job] = planned([tiny_videos["valid_b"]], profile="baseline")
    dispatcher.submit(job)
    [done] = dispatcher.follow([job], poll_s=0.2, timeout_s=240)
    result = done.result
    budget = MAX_RETRIES[ErrorCode.TRITON_UNAVAILABLE]
    assert result.status == "error" and result.error_code is ErrorCode.TRITON_UNAVAILABLE
    assert result.retry_count == budget
    assert result.retry_error_codes == [ErrorCode.TRITON_UNAVAILABLE] * budget
    assert "Triton" in (result.error or "") or "triton" in (result.error or "")
    store = ResultStore(settings.store_root)
    manifest = manifest_of(store, job)
    assert manifest.status == "error" and manifest.error_code is ErrorCode.TRITON_UNAVAILABLE
    assert manifest.retry_count == budget


def test_two_workers_with_separate_scratch_share_one_batch(
    queue_settings: WorkerSettings, worker_factory, tiny_videos: dict[str, Path], longer_videos: list[Path]
) -> None:
    first = worker_factory(queue_settings, name="sa")
    second = worker_factory(queue_settings, name="sb")
    assert first.settings.scratch_root != second.settings.scratch_root
    dispatcher = Dispatcher(queue_settings)
    jobs = planned([*longer_videos[:4], tiny_videos["valid_a"], tiny_videos["valid_b"]])
    for job in jobs:
        dispatcher.submit(job)
    done = dispatcher.follow(jobs, poll_s=0.2, timeout_s=300)
    assert all(j.result.status == "success" for j in done), [j.result for j in done]
    assert {j.result.worker for j in done} == {first.hostname, second.hostname}
    for worker in (first, second):
        assert [p for p in Path(worker.settings.scratch_root).rglob("*") if p.is_file()] == []
