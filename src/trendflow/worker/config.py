"""Worker and queue settings, read from `TRENDFLOW_*` environment variables.

One object holds everything a worker, the batch dispatcher and the health server need to agree
on: the Redis URL (broker and result backend), the result store, the queue name, the time limits
and the retry policy. Every node of a deployment reads the same variables, so dispatchers and
workers cannot disagree on, say, the visibility timeout.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from trendflow.contracts.errors import ErrorCode, TrendFlowError

if TYPE_CHECKING:
    from celery import Celery

TASK_NAME = "trendflow.process_video"  # the one Celery task (worker/tasks.py)
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_STORE = "data/02_intermediate/result_store"
DEFAULT_QUEUE = "trendflow"

# Environment variable -> settings field. Secrets (S3 keys) are not here: the storage adapter
# reads them itself (trendflow.storage.store.s3_options_from_env) and nothing logs them.
ENV_FIELDS: dict[str, str] = {
    "TRENDFLOW_REDIS_URL": "redis_url",
    "TRENDFLOW_STORE": "store_root",
    "TRENDFLOW_SCRATCH": "scratch_root",
    "TRENDFLOW_QUEUE": "queue",
    "TRENDFLOW_JOB_TIME_LIMIT_S": "job_time_limit_s",
    "TRENDFLOW_VISIBILITY_TIMEOUT_S": "visibility_timeout_s",
    "TRENDFLOW_RESULT_EXPIRES_S": "result_expires_s",
    "TRENDFLOW_RETRY_BASE_S": "retry_base_s",
    "TRENDFLOW_RETRY_MAX_S": "retry_max_s",
    "TRENDFLOW_HEALTH_HOST": "health_host",
    "TRENDFLOW_HEALTH_PORT": "health_port",
    "TRENDFLOW_TRITON_URL": "triton_url",
    "TRENDFLOW_WORKER_PROFILES": "profiles",
    "TRENDFLOW_BROKER_TIMEOUT_S": "broker_timeout_s",
}


class WorkerSettings(BaseModel):
    """Queue, worker and health settings. Build with `WorkerSettings.from_env()`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    redis_url: str = Field(DEFAULT_REDIS_URL, description="Celery broker and result backend.")
    store_root: str = Field(DEFAULT_STORE, description="Result store: a folder or s3://bucket/prefix.")
    scratch_root: str = Field(
        default_factory=lambda: os.path.join(tempfile.gettempdir(), "trendflow-scratch"),
        description="Local scratch for downloads and frames; emptied after every job.",
    )
    queue: str = Field(DEFAULT_QUEUE, pattern=r"^[A-Za-z0-9_.:-]{1,128}$")
    job_time_limit_s: int = Field(
        3600, gt=0, description="Hard limit of one job; a 20-minute video with every model fits."
    )
    visibility_timeout_s: int | None = Field(
        None, description="Redis redelivers an unacknowledged job after this; > job_time_limit_s."
    )
    result_expires_s: int = Field(7 * 24 * 3600, gt=0)
    retry_base_s: float = Field(5.0, gt=0, description="First retry delay (before jitter).")
    retry_max_s: float = Field(300.0, gt=0, description="Cap of the exponential backoff.")
    health_host: str = "127.0.0.1"
    health_port: int = Field(8765, ge=0, le=65535)
    triton_url: str | None = None
    profiles: tuple[str, ...] = ("baseline",)
    broker_timeout_s: float = Field(5.0, gt=0, description="Connect/read timeout of Redis calls.")

    @model_validator(mode="after")
    def _visibility_above_time_limit(self) -> WorkerSettings:
        if self.visibility_timeout_s is None:
            # Margin for the soft-limit cleanup and the final store writes after the hard limit.
            object.__setattr__(
                self, "visibility_timeout_s", self.job_time_limit_s + max(60, self.job_time_limit_s // 10)
            )
        if self.visibility_timeout_s <= self.job_time_limit_s:
            raise ValueError(
                f"visibility_timeout_s ({self.visibility_timeout_s}) must be above job_time_limit_s "
                f"({self.job_time_limit_s}): otherwise Redis hands a running job to a second worker"
            )
        if self.retry_max_s < self.retry_base_s:
            raise ValueError("retry_max_s must be >= retry_base_s")
        return self

    @property
    def soft_time_limit_s(self) -> int:
        """The job gets `timeout` (transient) here, leaving time to write its manifest."""
        return max(1, self.job_time_limit_s - max(5, self.job_time_limit_s // 20))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> WorkerSettings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name, field in ENV_FIELDS.items():
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            values[field] = (
                tuple(p.strip() for p in raw.split(",") if p.strip()) if field == "profiles" else raw
            )
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise TrendFlowError(ErrorCode.CONFIG_ERROR, f"invalid worker settings: {exc}") from exc

    def to_env(self) -> dict[str, str]:
        """The variables that reproduce these settings in a child process (a local worker)."""
        env: dict[str, str] = {}
        for name, field in ENV_FIELDS.items():
            value = getattr(self, field)
            if value is None:
                continue
            env[name] = ",".join(value) if isinstance(value, tuple) else str(value)
        return env

    def redacted_redis_url(self) -> str:
        """The Redis URL without its password, for logs and health output."""
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(self.redis_url)
        if parts.password is None:
            return self.redis_url
        netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))


def settings_of(celery: Celery) -> WorkerSettings:
    """The settings an app was built with (`make_celery`), else the environment's."""
    settings = getattr(celery.conf, "trendflow_settings", None)
    return settings if isinstance(settings, WorkerSettings) else WorkerSettings.from_env()
