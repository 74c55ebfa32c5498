"""Submit jobs to the queue and follow them to their outcome, surviving a broker that forgets.

The task id of a job is its `run_id`, so a resubmission is the same job. Next to each queued job
the dispatcher keeps a marker key in Redis (`trendflow:job:<task_id>`). While following:
- a result in the backend (SUCCESS/FAILURE) ends the job;
- STARTED / RETRY mean a worker has it;
- no result *and* no marker means Redis lost the job (restarted without persistence, flushed):
  the dispatcher resubmits it. The worker side makes that safe: the run id names the same run
  directory, a lease stops two deliveries from computing at once, and a finished run is a cache
  hit. Nothing is lost and no run is computed twice.
A broker that is down is waited for (up to `broker_outage_s`), then reported; a queue that no
worker consumes is reported after `no_worker_timeout_s`; nothing here waits forever.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import redis
from celery import Celery
from kombu.exceptions import OperationalError

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.identity import utc_now
from trendflow.events import log_event
from trendflow.worker.celery_app import TASK_NAME, make_celery
from trendflow.worker.config import WorkerSettings
from trendflow.worker.payload import JobPayload, JobResult

logger = logging.getLogger(__name__)
MARKER_KEY = "trendflow:job:{task_id}"
MAX_RESUBMITS = 5
_BROKER_ERRORS = (redis.RedisError, OperationalError, ConnectionError, OSError)


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    DONE = "done"
    LOST = "lost"


@dataclass
class TrackedJob:
    payload: JobPayload
    state: JobState = JobState.QUEUED
    result: JobResult | None = None
    resubmits: int = 0
    observed_at: datetime | None = None
    lost_since: float | None = None

    @property
    def task_id(self) -> str:
        return self.payload.run_id


@dataclass
class Progress:
    counts: dict[str, int]
    finished: list[TrackedJob] = field(default_factory=list)
    total: int = 0


ProgressCallback = Callable[[Progress], None]


class Dispatcher:
    """One queue, one Redis: submit payloads, poll their state, follow them to the end."""

    def __init__(
        self,
        settings: WorkerSettings,
        app: Celery | None = None,
        broker_outage_s: float = 600.0,
        lost_grace_s: float = 3.0,
    ) -> None:
        self.settings = settings
        self.broker_outage_s = broker_outage_s
        # A job must look lost this long before it is resubmitted: a worker that still runs it
        # re-takes its lease within a second of Redis coming back, so the copy waits for it.
        self.lost_grace_s = lost_grace_s
        self.app = app or make_celery(settings)
        self.redis = redis.Redis.from_url(
            settings.redis_url,
            socket_timeout=settings.broker_timeout_s,
            socket_connect_timeout=settings.broker_timeout_s,
        )
        self.backend = self.app.backend

    # -- broker access ---------------------------------------------------------------------
    def check_broker(self) -> None:
        try:
            self.redis.ping()
        except _BROKER_ERRORS as exc:
            raise TrendFlowError(
                ErrorCode.CONFIG_ERROR,
                f"Redis is not reachable at {self.settings.redacted_redis_url()} ({exc}); start it "
                "(`redis-server --port 6379 --daemonize yes --save '' --appendonly no`) "
                "or set TRENDFLOW_REDIS_URL",
            ) from exc

    def _with_broker(self, action: str, call: Callable[[], Any]) -> Any:
        """Run `call`, waiting out a broker outage up to `broker_outage_s`."""
        deadline = time.monotonic() + self.broker_outage_s
        delay = 0.2
        while True:
            try:
                return call()
            except _BROKER_ERRORS as exc:
                if time.monotonic() >= deadline:
                    raise TrendFlowError(
                        ErrorCode.TIMEOUT,
                        f"cannot {action}: Redis at {self.settings.redacted_redis_url()} unreachable for "
                        f"{self.broker_outage_s:.0f}s ({exc}); start it and run the batch again (it resumes)",
                    ) from exc
                log_event(logger, "broker_unreachable", level=logging.WARNING, action=action, error=str(exc))
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    # -- submit ------------------------------------------------------------------------------
    def submit(self, job: TrackedJob) -> None:
        payload = job.payload
        if payload.submitted_at is None:
            payload = payload.model_copy(update={"submitted_at": utc_now()})
            job.payload = payload
        message = payload.to_message()

        def publish() -> None:
            if job.resubmits:  # drop the stale outcome (a transport failure) of the lost delivery
                self.redis.delete(self.backend.get_key_for_task(job.task_id))
            self.app.send_task(
                TASK_NAME,
                args=[message],
                task_id=job.task_id,
                queue=self.settings.queue,
                retry=True,
                retry_policy={
                    "max_retries": 3,
                    "interval_start": 0.2,
                    "interval_step": 0.5,
                    "interval_max": 2,
                },
            )
            # Marker after the publish: a crash between the two costs a duplicate, never a loss.
            self.redis.set(
                MARKER_KEY.format(task_id=job.task_id),
                json.dumps({"queue": self.settings.queue, "submitted_at": payload.submitted_at.isoformat()}),
                ex=self.settings.result_expires_s,
            )

        self._with_broker("submit a job", publish)
        job.state, job.result = JobState.QUEUED, None
        log_event(
            logger, "job_submitted", run_id=job.task_id, video_id=payload.video_id, queue=self.settings.queue
        )

    # -- poll --------------------------------------------------------------------------------
    def poll(self, jobs: Iterable[TrackedJob]) -> None:
        """Refresh the state (and result) of the given jobs with two round trips to Redis."""
        jobs = [j for j in jobs if j.state is not JobState.DONE]
        if not jobs:
            return
        meta_keys = [self.backend.get_key_for_task(j.task_id) for j in jobs]
        marker_keys = [MARKER_KEY.format(task_id=j.task_id) for j in jobs]
        metas, markers = self._with_broker(
            "read job states", lambda: (self.redis.mget(meta_keys), self.redis.mget(marker_keys))
        )
        now = utc_now()
        for job, raw_meta, marker in zip(jobs, metas, markers, strict=True):
            meta = self.backend.decode_result(raw_meta) if raw_meta else None
            status = meta.get("status") if meta else None
            if status == "SUCCESS":
                job.result = JobResult.model_validate(meta["result"])
                job.state, job.observed_at = JobState.DONE, now
            elif status == "FAILURE" and _transport_failure(meta):
                job.state = JobState.LOST  # the job may well have run; resubmitting is safe
            elif status == "FAILURE":
                job.result = failure_result(job.payload, meta)
                job.state, job.observed_at = JobState.DONE, now
            elif status == "STARTED":
                job.state = JobState.RUNNING
            elif status == "RETRY":
                job.state = JobState.RETRYING
            elif marker is None:
                job.state = JobState.LOST
            else:
                job.state = JobState.QUEUED

    def forget(self, job: TrackedJob) -> None:
        with contextlib.suppress(*_BROKER_ERRORS):  # else it expires with the results
            self.redis.delete(MARKER_KEY.format(task_id=job.task_id))

    # -- follow ------------------------------------------------------------------------------
    def follow(
        self,
        jobs: list[TrackedJob],
        on_progress: ProgressCallback | None = None,
        poll_s: float = 0.5,
        timeout_s: float | None = None,
        no_worker_timeout_s: float = 300.0,
    ) -> list[TrackedJob]:
        """Wait until every job is done; resubmit what the broker lost."""
        started = time.monotonic()
        last_change = started
        last_worker_check = started
        last_report = started - 5.0
        while True:
            before = {j.task_id: j.state for j in jobs}
            self.poll(jobs)
            finished = [
                j for j in jobs if j.state is JobState.DONE and before[j.task_id] is not JobState.DONE
            ]
            for job in jobs:
                if job.state is not JobState.LOST:
                    job.lost_since = None
                elif job.lost_since is None:
                    job.lost_since = time.monotonic()
                elif time.monotonic() - job.lost_since >= self.lost_grace_s:
                    job.lost_since = None
                    self._resubmit(job)
            for job in finished:
                self.forget(job)
            changed = finished or any(before[j.task_id] != j.state for j in jobs)
            now = time.monotonic()
            if changed:
                last_change = now
            if on_progress is not None and (changed or now - last_report >= 5.0):
                last_report = now  # also a heartbeat while long jobs run, for periodic logs
                on_progress(Progress(counts=count_states(jobs), finished=finished, total=len(jobs)))
            if all(j.state is JobState.DONE for j in jobs):
                return jobs
            if timeout_s is not None and now - started > timeout_s:
                raise TrendFlowError(
                    ErrorCode.TIMEOUT,
                    f"batch not finished after {timeout_s:.0f}s: {count_states(jobs)}; "
                    "run it again to resume",
                )
            if now - last_change > 30 and now - last_worker_check > 30:
                last_worker_check = now
                if not self.workers_for_queue():
                    if now - last_change > no_worker_timeout_s:
                        raise TrendFlowError(
                            ErrorCode.TIMEOUT,
                            f"no worker consumes queue {self.settings.queue!r} "
                            f"(waited {no_worker_timeout_s:.0f}s); start one with `trendflow worker`, "
                            "then run the batch again (it resumes)",
                        )
                    log_event(logger, "no_worker", level=logging.WARNING, queue=self.settings.queue)
            time.sleep(poll_s)

    def _resubmit(self, job: TrackedJob) -> None:
        if job.resubmits >= MAX_RESUBMITS:
            job.result = lost_result(job.payload, job.resubmits)
            job.state, job.observed_at = JobState.DONE, utc_now()
            return
        job.resubmits += 1
        log_event(logger, "job_resubmitted", level=logging.WARNING, run_id=job.task_id, times=job.resubmits)
        self.submit(job)

    def workers_for_queue(self) -> list[str]:
        """Names of live workers consuming this queue (asks them; about a second)."""
        try:
            replies = self.app.control.inspect(timeout=1.0).active_queues() or {}
        except _BROKER_ERRORS:
            return []
        return sorted(
            w for w, queues in replies.items() if any(q.get("name") == self.settings.queue for q in queues)
        )

    def close(self) -> None:
        self.redis.close()


def count_states(jobs: Iterable[TrackedJob]) -> dict[str, int]:
    counts = {s.value: 0 for s in JobState}
    counts.update(success=0, error=0)
    for job in jobs:
        counts[job.state.value] += 1
        if job.result is not None:
            counts[job.result.status] += 1
    return counts


# Failures of the result transport, not of the job: the job is resubmitted (same run id), and
# the worker returns the finished run from the store or resumes it.
_TRANSPORT_FAILURES = {"ConnectionError", "OperationalError", "TimeoutError", "ConnectionRefusedError"}


def _transport_failure(meta: dict[str, Any]) -> bool:
    exc = meta.get("result")
    return isinstance(exc, dict) and str(exc.get("exc_type")) in _TRANSPORT_FAILURES


def failure_result(payload: JobPayload, meta: dict[str, Any]) -> JobResult:
    """The task raised instead of returning (hard time limit, a crash outside the job)."""
    exc = meta.get("result") or {}
    exc_type = str(exc.get("exc_type", "Exception")) if isinstance(exc, dict) else "Exception"
    message = str(exc.get("exc_message", exc)) if isinstance(exc, dict) else str(exc)
    code = (
        ErrorCode.TIMEOUT
        if exc_type in ("TimeLimitExceeded", "SoftTimeLimitExceeded")
        else ErrorCode.INTERNAL
    )
    return _error_result(payload, code, f"{exc_type}: {message}")


def lost_result(payload: JobPayload, resubmits: int) -> JobResult:
    return _error_result(
        payload,
        ErrorCode.INTERNAL,
        f"the broker lost this job {resubmits + 1} times; check Redis persistence",
    )


def _error_result(payload: JobPayload, code: ErrorCode, message: str) -> JobResult:
    return JobResult(
        run_id=None,
        requested_run_id=payload.run_id,
        platform_id=payload.platform_id,
        video_id=payload.video_id,
        profile=payload.profile,
        config_hash=payload.config_hash,
        status="error",
        error_code=code,
        error=message,
        submitted_at=payload.submitted_at,
        finished_at=utc_now(),
    )
