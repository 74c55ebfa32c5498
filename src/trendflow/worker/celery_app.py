"""The Celery application: Redis as broker and result backend, configured for long, idempotent jobs.

Why each setting (SPEC 11):
- `task_acks_late` + `task_reject_on_worker_lost`: a job is acknowledged only after it ended, so a
  worker that dies mid-job (SIGKILL, OOM, lost machine) does not lose it;
- `worker_prefetch_multiplier=1`: a worker holds one job per process, so a second idle worker
  is never starved by a busy one that prefetched the queue;
- `visibility_timeout` above the hard time limit: Redis redelivers an unacknowledged job only
  after this delay, and must never hand a job that is still running to a second worker;
- `unacked_restore_*`: how often a live worker sweeps for jobs abandoned by a dead one;
- socket timeouts and health checks: a restarted Redis is noticed and reconnected, not waited on;
- task events on: Flower (compose.yaml) shows queues, workers and tasks live.

`app` is built from the environment at import (for `celery -A trendflow.worker.celery_app`);
`make_celery` builds one from explicit settings (the CLI, tests, the batch dispatcher).
"""

from __future__ import annotations

from celery import Celery

from trendflow.worker.config import TASK_NAME, WorkerSettings, settings_of

__all__ = ["TASK_NAME", "app", "celery_config", "make_celery", "settings_of"]


def celery_config(settings: WorkerSettings) -> dict[str, object]:
    visibility = int(settings.visibility_timeout_s or 0)
    redis_socket = {
        "socket_timeout": max(10.0, settings.broker_timeout_s * 2),
        "socket_connect_timeout": settings.broker_timeout_s,
        "socket_keepalive": True,
        "retry_on_timeout": True,
        "health_check_interval": 10,
    }
    return {
        "broker_url": settings.redis_url,
        "result_backend": settings.redis_url,
        "broker_transport_options": {
            "visibility_timeout": visibility,
            # Sweep for abandoned jobs often enough that redelivery follows the timeout closely.
            "unacked_restore_interval": max(1, min(10, visibility // 10)),
            "unacked_restore_throttle": 1,
            **redis_socket,
        },
        "result_backend_transport_options": {
            **redis_socket,
            # The backend reconnects for up to about a minute (a Redis restart takes seconds).
            "retry_policy": {
                "max_retries": 60,
                "interval_start": 0.2,
                "interval_step": 0.5,
                "interval_max": 2,
            },
        },
        # Storing a result reads the old one first, outside the backend's retry policy: without
        # this, a job that ends while Redis restarts is recorded as a ConnectionError failure.
        "result_backend_always_retry": True,
        "result_backend_max_retries": 60,
        "result_backend_base_sleep_between_retries_ms": 200,
        "result_backend_max_sleep_between_retries_ms": 5000,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "task_track_started": True,
        "task_time_limit": settings.job_time_limit_s,
        "task_soft_time_limit": settings.soft_time_limit_s,
        "task_default_queue": settings.queue,
        "task_routes": {TASK_NAME: {"queue": settings.queue}},
        "worker_prefetch_multiplier": 1,
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "worker_hijack_root_logger": False,
        # Task events (sent, received, started, succeeded, failed, retried) for Flower and
        # `celery events`; the worker's own numbers are Prometheus metrics (trendflow.worker.metrics).
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "result_expires": settings.result_expires_s,
        # Not extended: a result then holds only the JobResult, never the task's arguments (the
        # payload's sidecar text lives in the queue only until the job is acknowledged).
        "result_extended": False,
        "enable_utc": True,
        "timezone": "UTC",
    }


def make_celery(settings: WorkerSettings | None = None) -> Celery:
    settings = settings or WorkerSettings.from_env()
    celery = Celery("trendflow", include=["trendflow.worker.tasks"])
    celery.conf.update(celery_config(settings))
    celery.conf.trendflow_settings = settings  # read by the task and the health server
    import trendflow.worker.tasks  # noqa: F401  (registers the shared task on every app)

    return celery


app = make_celery()
