"""Video list entries -> job payloads with their run identity fixed before dispatch.

The dispatcher decides `platform_id`, `video_id`, `config_hash` and `run_id` (SPEC 11), so every
delivery of a job, and every later batch over the same list, names the same run. Identity:
explicit ids in the list win; else a sidecar's ids; else a YouTube URL's id; else a local file's
content hash. Other URLs need explicit ids (their id is only known after a download).

With a shared (S3) store, a local file is copied to `<store>/_staging/...` first: a worker on
another machine cannot read the dispatcher's disk.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from trendflow.batch.video_list import VideoEntry
from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.identity import (
    local_video_id,
    new_run_id,
    utc_now,
    validate_platform_id,
    validate_video_id,
)
from trendflow.contracts.versions import SAMPLING_POLICY_VERSION, dataprocessor_version
from trendflow.dataprocessor.sources import is_url, ytdlp_identity
from trendflow.storage.store import ResultStore
from trendflow.worker.execution import profile_config_hash
from trendflow.worker.payload import MAX_SIDECAR_BYTES, JobPayload, JobResult

STAGING_DIR = "_staging"
_YOUTUBE_HOSTS = {"youtube.com", "www.youtube.com", "m.youtube.com", "music.youtube.com", "youtu.be"}
_YOUTUBE_PATH_ID = re.compile(r"^/(?:shorts|embed|live|v)/([A-Za-z0-9_-]{6,64})")


@dataclass
class PlannedJob:
    """One list entry: a payload to dispatch, or the error that kept it from becoming one."""

    key: str
    entry: VideoEntry
    payload: JobPayload | None = None
    error: JobResult | None = None


def youtube_id(url: str) -> str | None:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host not in _YOUTUBE_HOSTS:
        return None
    if host == "youtu.be":
        candidate = parts.path.strip("/").split("/")[0]
    elif match := _YOUTUBE_PATH_ID.match(parts.path):
        candidate = match.group(1)
    else:
        candidate = (parse_qs(parts.query).get("v") or [""])[0]
    return candidate or None


def read_sidecar(path: str) -> dict[str, Any]:
    file = Path(path)
    if not file.is_file():
        raise TrendFlowError(ErrorCode.INVALID_REQUEST, f"metadata sidecar {path}: no such file")
    if file.stat().st_size > MAX_SIDECAR_BYTES:
        raise TrendFlowError(
            ErrorCode.INVALID_REQUEST, f"metadata sidecar {path}: over {MAX_SIDECAR_BYTES} bytes"
        )
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TrendFlowError(
            ErrorCode.INVALID_REQUEST, f"metadata sidecar {path}: not UTF-8 JSON ({exc})"
        ) from exc
    if not isinstance(data, dict):
        raise TrendFlowError(ErrorCode.INVALID_REQUEST, f"metadata sidecar {path}: must be a JSON object")
    return data


def run_metadata(sidecar: dict[str, Any], path: str) -> dict[str, Any]:
    """Only what a run reads from a sidecar (the SourceInfo fields and the ids), never the rest
    of, say, a yt-dlp info JSON. It travels in the queued message only; the batch ledger and the
    Redis results never hold it (batch/state.py, worker/celery_app.py)."""
    from pydantic import ValidationError

    from trendflow.dataprocessor.sources import SourceSidecar, info_from_ytdlp, ytdlp_identity

    try:
        if "extractor_key" in sidecar or "extractor" in sidecar:
            platform_id, video_id = ytdlp_identity(sidecar)
            info = info_from_ytdlp(sidecar).model_dump()
            normalized = SourceSidecar(**info, platform_id=platform_id, video_id=video_id)
        else:
            normalized = SourceSidecar.model_validate(sidecar)
    except ValidationError as exc:
        fields = sorted({".".join(map(str, e["loc"])) for e in exc.errors(include_input=False)})
        raise TrendFlowError(
            ErrorCode.INVALID_REQUEST, f"metadata sidecar {path}: invalid fields {fields}"
        ) from exc
    return normalized.model_dump(mode="json", exclude_none=True)


def identify(entry: VideoEntry, sidecar: dict[str, Any] | None) -> tuple[str, str]:
    """(platform_id, video_id) of an entry, without downloading anything."""
    platform_id, video_id = entry.platform_id, entry.video_id
    if sidecar and (platform_id is None or video_id is None):
        if "extractor_key" in sidecar or "extractor" in sidecar:
            side_platform, side_video = ytdlp_identity(sidecar)
        else:
            side_platform, side_video = sidecar.get("platform_id"), sidecar.get("video_id")
        platform_id = platform_id or side_platform
        video_id = video_id or side_video
    if is_url(entry.source):
        if video_id is None and (yt := youtube_id(entry.source)):
            platform_id, video_id = platform_id or "youtube", yt
        if platform_id is None or video_id is None:
            raise TrendFlowError(
                ErrorCode.INVALID_REQUEST,
                f"{entry.source}: give platform_id and video_id in the list for this URL "
                "(only YouTube ids can be read from the URL)",
            )
    else:
        path = Path(entry.source)
        if not path.is_file():
            raise TrendFlowError(ErrorCode.SOURCE_NOT_FOUND, f"no such video file: {entry.source}")
        platform_id = platform_id or "local"
        video_id = video_id or local_video_id(path)
    return validate_platform_id(platform_id), validate_video_id(video_id)


def stage_local_file(store: ResultStore, path: str, platform_id: str, video_id: str) -> str:
    """Copy a local video into the shared store once; returns the URI workers download."""
    rel = f"{STAGING_DIR}/{platform_id}/{video_id}/{Path(path).name}"
    size = Path(path).stat().st_size
    if not (store.exists(rel) and store.size(rel) == size):
        store.put_file(path, rel)
    return store.uri(rel)


def job_key(platform_id: str, video_id: str, config_hash: str) -> str:
    """The idempotency key (SPEC 3) as one string: one job, one state line, one index row."""
    return f"{platform_id}/{video_id}/{config_hash}"


def plan_job(
    entry: VideoEntry,
    profile: str,
    config_hash: str,
    staging_store: ResultStore | None = None,
    force: bool = False,
    batch_id: str | None = None,
    run_id: str | None = None,
) -> PlannedJob:
    try:
        sidecar = read_sidecar(entry.metadata) if entry.metadata else None
        platform_id, video_id = identify(entry, sidecar)
        if sidecar is not None:
            sidecar = run_metadata(sidecar, str(entry.metadata))
    except TrendFlowError as exc:
        return PlannedJob(
            key=f"source:{entry.source}", entry=entry, error=_entry_error(entry, profile, config_hash, exc)
        )
    key = job_key(platform_id, video_id, config_hash)
    try:
        source = entry.source
        if staging_store is not None and not is_url(source):
            source = stage_local_file(staging_store, source, platform_id, video_id)
        payload = JobPayload(
            run_id=run_id or new_run_id(),
            platform_id=platform_id,
            video_id=video_id,
            video_source=source,
            profile=profile,
            config_hash=config_hash,
            sampling_policy_version=SAMPLING_POLICY_VERSION,
            dataprocessor_version=dataprocessor_version(),
            force=force,
            metadata=sidecar,
            batch_id=batch_id,
        )
    except TrendFlowError as exc:
        return PlannedJob(
            key=key, entry=entry, error=_entry_error(entry, profile, config_hash, exc, platform_id, video_id)
        )
    return PlannedJob(key=key, entry=entry, payload=payload)


def plan_jobs(
    entries: list[VideoEntry],
    profile: str,
    staging_store: ResultStore | None = None,
    force: bool = False,
    batch_id: str | None = None,
) -> list[PlannedJob]:
    """Plan every entry; entries naming the same video (same key) become one job."""
    config_hash = profile_config_hash(profile)
    planned: dict[str, PlannedJob] = {}
    for entry in entries:
        job = plan_job(entry, profile, config_hash, staging_store, force, batch_id)
        planned.setdefault(job.key, job)
    return list(planned.values())


def _entry_error(
    entry: VideoEntry,
    profile: str,
    config_hash: str,
    exc: TrendFlowError,
    platform_id: str | None = None,
    video_id: str | None = None,
) -> JobResult:
    now = utc_now()
    return JobResult(
        run_id=None,
        requested_run_id="not-submitted",
        platform_id=platform_id or entry.platform_id,
        video_id=video_id or entry.video_id,
        profile=profile,
        config_hash=config_hash,
        status="error",
        error_code=exc.code,
        error=exc.message,
        submitted_at=now,
        finished_at=now,
    )
