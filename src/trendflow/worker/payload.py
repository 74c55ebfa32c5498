"""The queue's job contract (SPEC section 11): what a dispatcher sends and what a worker returns.

`JobPayload` is validated on both sides: a dispatcher cannot enqueue a malformed job, and a
worker turns anything it cannot validate into `invalid_request` (permanent, never retried).
`JobResult` is the task's return value and the row the batch tools index.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.identity import PLATFORM_ID_PATTERN, RUN_ID_PATTERN, VIDEO_ID_PATTERN

JOB_SCHEMA_VERSION = "1.0.0"
# A sidecar is a few KB of title/description/tags; a cap keeps a bad list from filling Redis.
MAX_SIDECAR_BYTES = 256 * 1024


class JobPayload(BaseModel):
    """One video to process. Identity is fixed by the dispatcher, so every delivery of this
    job (retries, redeliveries after a worker died) works on the same run directory."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal["1.0.0"] = JOB_SCHEMA_VERSION
    run_id: str = Field(pattern=RUN_ID_PATTERN)
    platform_id: str = Field(pattern=PLATFORM_ID_PATTERN)
    video_id: str = Field(pattern=VIDEO_ID_PATTERN)
    video_source: str = Field(min_length=1, max_length=4096, description="URL, s3:// URI or path.")
    profile: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    config_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    sampling_policy_version: str = Field(min_length=1)
    dataprocessor_version: str = Field(min_length=1)
    force: bool = False
    metadata: dict[str, Any] | None = Field(
        None, description="Content of the metadata sidecar (title, description, tags, ...)."
    )
    submitted_at: datetime | None = None
    batch_id: str | None = Field(None, max_length=128)

    @classmethod
    def parse(cls, raw: Any) -> JobPayload:
        """Validate a payload from the queue; any defect is `invalid_request`."""
        try:
            payload = cls.model_validate(raw)
        except ValidationError as exc:
            raise TrendFlowError(ErrorCode.INVALID_REQUEST, f"invalid job payload: {_short(exc)}") from exc
        if payload.metadata is not None:
            encoded = payload.model_dump_json(include={"metadata"})
            if len(encoded) > MAX_SIDECAR_BYTES:
                raise TrendFlowError(
                    ErrorCode.INVALID_REQUEST,
                    f"metadata sidecar is {len(encoded)} bytes; the limit is {MAX_SIDECAR_BYTES}",
                )
        return payload

    def to_message(self) -> dict[str, Any]:
        """The JSON-safe dict that travels through Redis."""
        return self.model_dump(mode="json", exclude_none=True)

    @property
    def idempotency_key(self) -> tuple[str, str, str]:
        return (self.platform_id, self.video_id, self.config_hash)


JobStatus = Literal["success", "error"]


class JobResult(BaseModel):
    """What one job ended with; also one row of `runs_index`."""

    model_config = ConfigDict(extra="forbid")

    requested_run_id: str
    status: JobStatus
    run_id: str | None = Field(None, description="The run that holds the outcome (a cache hit's own id).")
    platform_id: str | None = None
    video_id: str | None = None
    profile: str | None = None
    config_hash: str | None = None
    error_code: ErrorCode | None = None
    error: str | None = None
    error_reason: str | None = Field(
        None, description="A finer cause within error_code, e.g. `private` for source_unavailable."
    )
    retry_count: int = Field(0, ge=0)
    retry_error_codes: list[ErrorCode] = Field(
        default_factory=list, description="The transient error of each earlier attempt, in order."
    )
    cache_hit: bool = False
    resumed: bool = False
    manifest_uri: str | None = None
    worker: str | None = None
    submitted_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    queue_wait_sec: float | None = None
    duration_sec: float | None = None

    @property
    def last_error_code(self) -> ErrorCode | None:
        """The final error, else the error that caused the last retry."""
        if self.error_code is not None:
            return self.error_code
        return self.retry_error_codes[-1] if self.retry_error_codes else None


def _short(exc: ValidationError) -> str:
    parts = [f"{'.'.join(str(p) for p in e['loc']) or 'payload'}: {e['msg']}" for e in exc.errors()[:5]]
    more = f" (+{exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
    return "; ".join(parts) + more
