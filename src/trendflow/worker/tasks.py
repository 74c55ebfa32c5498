"""The `trendflow.process_video` Celery task: validate, claim, execute, retry or return.

Delivery guarantees, on top of the app settings (late ack, requeue on worker loss):
- attempts are counted in Redis per run (`trendflow:attempts:<run_id>`), so `retry_count` covers
  both retries and redeliveries after a worker died, and a job that kills every worker it
  touches still ends (`MAX_ATTEMPTS`);
- a run is claimed with a lease (`trendflow:lease:<run_id>`) refreshed while it runs: a second
  delivery of the same job (after the broker lost its state and the dispatcher resubmitted)
  waits for the first to end instead of computing the same run twice, then returns the cached
  result;
- transient errors are retried with exponential backoff and jitter within their budget; a bad
  payload or any permanent error is returned at once, never retried.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

import redis
from celery import shared_task, signals

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.dataprocessor.download import DownloadOptions
from trendflow.events import log_event
from trendflow.worker import metrics
from trendflow.worker.config import TASK_NAME, WorkerSettings, settings_of
from trendflow.worker.execution import execute_job
from trendflow.worker.payload import JobPayload, JobResult
from trendflow.worker.retry import MAX_ATTEMPTS, RetryPolicy

logger = logging.getLogger(__name__)
ATTEMPTS_KEY = "trendflow:attempts:{run_id}"
LEASE_KEY = "trendflow:lease:{run_id}"
LEASE_TTL_S = 15
# Refreshed every second: after a Redis restart that lost it, the lease is back before the
# dispatcher resubmits the job (it waits `lost_grace_s` = 3 s), so no second copy can start.
LEASE_REFRESH_S = 1.0
_clients: dict[str, redis.Redis] = {}


def redis_client(settings: WorkerSettings) -> redis.Redis:
    """One client per process and URL (prefork children build their own after the fork)."""
    key = f"{os.getpid()}:{settings.redis_url}"
    if key not in _clients:
        _clients[key] = redis.Redis.from_url(
            settings.redis_url,
            socket_timeout=settings.broker_timeout_s,
            socket_connect_timeout=settings.broker_timeout_s,
            retry_on_timeout=True,
            health_check_interval=10,
        )
    return _clients[key]


def count_attempt(client: redis.Redis, run_id: str, ttl_s: int) -> int:
    key = ATTEMPTS_KEY.format(run_id=run_id)
    pipe = client.pipeline()
    pipe.incr(key)
    pipe.expire(key, ttl_s)
    return int(pipe.execute()[0])


class RunLease:
    """A lease on one run id, refreshed by a thread while the job runs."""

    def __init__(self, client: redis.Redis, run_id: str, owner: str, ttl_s: int = LEASE_TTL_S) -> None:
        self.client, self.key, self.owner, self.ttl_s = client, LEASE_KEY.format(run_id=run_id), owner, ttl_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self, wait_s: float) -> bool:
        """Take the lease, waiting up to `wait_s` for another holder to finish or die."""
        deadline = time.monotonic() + wait_s
        while True:
            if self.client.set(self.key, self.owner, nx=True, ex=self.ttl_s):
                self._thread = threading.Thread(target=self._refresh, name="run-lease", daemon=True)
                self._thread.start()
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(1.0)

    def _refresh(self) -> None:
        while not self._stop.wait(LEASE_REFRESH_S):
            try:
                # SET (not EXPIRE): after a Redis restart that lost the key, the lease comes back.
                self.client.set(self.key, self.owner, ex=self.ttl_s)
            except redis.RedisError as exc:
                logger.warning("cannot refresh lease %s: %s", self.key, exc)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        try:
            if self.client.get(self.key) == self.owner.encode():
                self.client.delete(self.key)
        except redis.RedisError as exc:  # it expires by itself
            logger.warning("cannot release lease %s: %s", self.key, exc)


def worker_name(task: Any) -> str:
    return str(getattr(task.request, "hostname", None) or f"{socket.gethostname()}:{os.getpid()}")


@shared_task(bind=True, name=TASK_NAME, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def process_video(
    self: Any, payload: dict[str, Any], retry_error_codes: list[str] | None = None
) -> dict[str, Any]:
    """Process one video job; returns a `JobResult` as a dict for success and for coded errors."""
    settings = settings_of(self.app)
    policy = RetryPolicy(settings.retry_base_s, settings.retry_max_s, _long_backoff_s())
    codes = [ErrorCode(c) for c in retry_error_codes or []]
    try:
        job = JobPayload.parse(payload)
    except TrendFlowError as exc:
        return _final(_rejected(payload, exc, worker_name(self)))

    client = redis_client(settings)
    try:
        attempt = count_attempt(client, job.run_id, settings.result_expires_s)
    except redis.RedisError as exc:  # the broker blinked after delivering: count from Celery
        logger.warning("cannot count attempts of %s: %s", job.run_id, exc)
        attempt = int(self.request.retries or 0) + 1
    retry_count = max(attempt - 1, int(self.request.retries or 0))
    if attempt > MAX_ATTEMPTS:
        error = TrendFlowError(
            ErrorCode.INTERNAL,
            f"job {job.run_id} was delivered {attempt} times; every worker that took it died or gave up "
            "(check worker memory limits and logs)",
        )
        return _final(_rejected(payload, error, worker_name(self), retry_count, codes))

    lease = RunLease(client, job.run_id, owner=f"{worker_name(self)}:{self.request.id}")
    try:
        claimed = lease.acquire(wait_s=min(60.0, settings.job_time_limit_s / 4))
    except redis.RedisError as exc:
        logger.warning("cannot take lease of %s (running without it): %s", job.run_id, exc)
        claimed = True
    if not claimed:  # another delivery of this job is still running; come back later
        metrics.record_retry("lease_busy")
        raise self.retry(countdown=LEASE_TTL_S, kwargs={"retry_error_codes": [str(c) for c in codes]})
    try:
        log_event(logger, "job_started", run_id=job.run_id, attempt=attempt, video_id=job.video_id)
        result = execute_job(
            job, settings, retry_count=retry_count, retry_error_codes=codes, worker=worker_name(self)
        )
    finally:
        lease.release()

    if result.status == "error" and policy.should_retry(result.error_code, len(codes)):
        countdown = policy.delay(len(codes), reason=result.error_reason)
        log_event(
            logger,
            "job_retry",
            run_id=job.run_id,
            error_code=result.error_code,
            reason=result.error_reason,
            retry=len(codes) + 1,
            countdown_s=round(countdown, 2),
        )
        metrics.record_retry(result.error_code)
        raise self.retry(
            countdown=countdown,
            kwargs={"retry_error_codes": [*map(str, codes), str(result.error_code)]},
        )
    log_event(
        logger,
        "job_finished",
        run_id=job.run_id,
        status=result.status,
        error_code=result.error_code,
        reason=result.error_reason,
        retry_count=result.retry_count,
    )
    return _final(result)


def _final(result: JobResult) -> dict[str, Any]:
    """The task's return value; counts the job's final outcome."""
    try:
        metrics.record_final(result)
    except Exception as exc:  # metrics never fail a job
        logger.warning("cannot record metrics of %s: %s", result.requested_run_id, exc)
    return result.model_dump(mode="json")


def _rejected(
    raw: Any,
    error: TrendFlowError,
    worker: str,
    retry_count: int = 0,
    codes: list[ErrorCode] | None = None,
) -> JobResult:
    raw = raw if isinstance(raw, dict) else {}
    return JobResult(
        run_id=None,
        requested_run_id=str(raw.get("run_id") or "unknown"),
        platform_id=_str_or_none(raw.get("platform_id")),
        video_id=_str_or_none(raw.get("video_id")),
        profile=_str_or_none(raw.get("profile")),
        config_hash=_str_or_none(raw.get("config_hash")),
        status="error",
        error_code=error.code,
        error=error.message,
        retry_count=retry_count,
        retry_error_codes=codes or [],
        worker=worker,
    )


def _long_backoff_s() -> float:
    """TRENDFLOW_YTDLP_LONG_BACKOFF_S; a bad download setting fails the job, not the retry policy."""
    try:
        return DownloadOptions.from_env().long_backoff_s
    except TrendFlowError:
        return DownloadOptions().long_backoff_s


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@signals.worker_process_init.connect
def _warm_up(**_: Any) -> None:
    """Import the orchestrator in each pool process once, not inside the first job's timing."""
    try:
        import trendflow.dataprocessor.run  # noqa: F401
    except Exception as exc:  # the job reports it with its code; do not kill the pool
        logger.warning("cannot import the orchestrator: %s", exc)
