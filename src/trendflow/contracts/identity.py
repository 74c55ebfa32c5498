"""Run identity (SPEC section 3): one object written identically everywhere a run leaves a file."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from trendflow.contracts.errors import ErrorCode, TrendFlowError

VIDEO_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
PLATFORM_ID_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
RUN_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_VIDEO_ID_RE = re.compile(VIDEO_ID_PATTERN)
_PLATFORM_ID_RE = re.compile(PLATFORM_ID_PATTERN)


def utc_now() -> datetime:
    return datetime.now(UTC)


def validate_video_id(video_id: str) -> str:
    """Reject anything that could escape the per-run layout (`../../etc`, slashes, empty)."""
    if not isinstance(video_id, str) or not _VIDEO_ID_RE.match(video_id):
        raise TrendFlowError(
            ErrorCode.INVALID_REQUEST,
            f"video_id {video_id!r} is invalid: it must match {VIDEO_ID_PATTERN}",
        )
    return video_id


def validate_platform_id(platform_id: str) -> str:
    if not isinstance(platform_id, str) or not _PLATFORM_ID_RE.match(platform_id):
        raise TrendFlowError(
            ErrorCode.INVALID_REQUEST,
            f"platform_id {platform_id!r} is invalid: it must match {PLATFORM_ID_PATTERN}",
        )
    return platform_id


def file_sha256(path: str | Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def local_video_id(path: str | Path) -> str:
    """A stable id for a local file, derived from its content (same bytes -> same id)."""
    return "sha256-" + file_sha256(path)[:32]


def new_run_id(created_at: datetime | None = None) -> str:
    """Sortable by creation time, unique across workers."""
    stamp = (created_at or utc_now()).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{uuid.uuid4().hex[:8]}"


def canonical_json(obj: Any) -> str:
    """The one canonical JSON form used for hashing: sorted keys, no whitespace."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def compute_config_hash(
    profile: dict[str, Any], sampling_policy_version: str, model_mapping: dict[str, Any]
) -> str:
    """sha256 of the canonical analysis profile + sampling policy + model mapping (SPEC 3)."""
    payload = {
        "profile": profile,
        "sampling_policy_version": sampling_policy_version,
        "model_mapping": model_mapping,
    }
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


class RunIdentity(BaseModel):
    """Identical in frames_dir/metadata.json, manifest.json["run"] and every NPZ meta."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    platform_id: str = Field(pattern=PLATFORM_ID_PATTERN)
    video_id: str = Field(pattern=VIDEO_ID_PATTERN)
    run_id: str = Field(pattern=RUN_ID_PATTERN)
    config_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    sampling_policy_version: str
    dataprocessor_version: str
    created_at: datetime

    @field_validator("created_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("created_at must be timezone-aware (UTC)")
        return value.astimezone(UTC)

    @property
    def idempotency_key(self) -> tuple[str, str, str]:
        return (self.platform_id, self.video_id, self.config_hash)
