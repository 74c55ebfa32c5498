"""Run one job payload in this process: stage inputs into scratch, process or resume, clean up.

The Celery task is a thin shell around `execute_job`; the benchmark calls it directly to measure
the same work without the queue. Everything a run needs comes from the payload and the shared
result store, never from this machine's disk, so any worker can take any job (SPEC 11). Scratch
(downloads, the metadata sidecar, frames) lives in one folder per job and is deleted afterwards.
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import fsspec

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.identity import utc_now
from trendflow.dataprocessor.scratch import clean_leftovers, new_scratch
from trendflow.events import log_event
from trendflow.storage.layout import RunLayout
from trendflow.storage.store import (
    MIN_THROUGHPUT,
    ResultStore,
    StorageLimits,
    bounded_s3_options,
    s3_options_from_env,
)
from trendflow.worker import metrics
from trendflow.worker.config import WorkerSettings
from trendflow.worker.payload import JobPayload, JobResult

logger = logging.getLogger(__name__)
SCRATCH_PREFIX = "job-"
# Sources the worker copies from shared storage itself; http(s) URLs go to the source resolver.
STAGED_PROTOCOLS = ("s3://", "gs://", "az://", "abfs://", "file://")


def job_scratch(settings: WorkerSettings, run_id: str) -> Path:
    """`<scratch>/job-<pid>-<run_id>-<rand>` with its owner marker (dataprocessor/scratch.py)."""
    return new_scratch(settings.scratch_root, SCRATCH_PREFIX, run_id)


def clean_stale_scratch(scratch_root: str | Path, max_age_s: float | None = None) -> list[str]:
    """Delete job and run folders whose process is gone or that outlived the job time limit."""
    return [leftover.path.name for leftover in clean_leftovers(scratch_root, max_age_s)]


def stage_source(video_source: str, scratch: Path, timeout_s: float = 600) -> str:
    """A source on shared storage (s3://...) -> a local copy in scratch; anything else unchanged."""
    if not video_source.startswith(STAGED_PROTOCOLS):
        return video_source
    protocol = video_source.split("://", 1)[0]
    options: dict[str, Any] = s3_options_from_env() if protocol == "s3" else {}
    limits = StorageLimits.from_env()
    if protocol == "s3":
        options.setdefault("skip_instance_cache", True)
        options = bounded_s3_options(options, limits)
    target = scratch / "input" / Path(video_source.rstrip("/")).name
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        fs, path = fsspec.core.url_to_fs(video_source, **options)
        if protocol == "s3":  # bounded: a hung endpoint fails within the deadline, not the job limit
            size = fs.info(path, timeout=limits.deadline_s).get("size") or 0
            deadline = min(timeout_s, limits.deadline_s + size / MIN_THROUGHPUT)
            fs.get_file(path, str(target), timeout=deadline)
        else:
            fs.get_file(path, str(target))
    except FileNotFoundError as exc:
        raise TrendFlowError(ErrorCode.SOURCE_NOT_FOUND, f"no such staged video: {video_source}") from exc
    except Exception as exc:
        raise TrendFlowError(
            ErrorCode.STORAGE_UNAVAILABLE, f"cannot copy {video_source}: {type(exc).__name__}: {exc}"
        ) from exc
    return str(target)


def write_sidecar(metadata: dict[str, Any] | None, scratch: Path) -> Path | None:
    if metadata is None:
        return None
    path = scratch / "metadata.json"
    path.write_text(json.dumps(metadata, ensure_ascii=False), encoding="utf-8")
    return path


def run_job(request: Any) -> Any:
    """Run (or finish) the payload's run. A redelivered job - its `run_id` already has state in
    the store because an earlier delivery started it - is resumed by the orchestrator itself:
    components with valid artifacts are kept, the rest recomputed (SPEC 10)."""
    from trendflow.dataprocessor.run import process_video

    return process_video(request)


def execute_job(
    payload: JobPayload,
    settings: WorkerSettings,
    retry_count: int = 0,
    retry_error_codes: list[ErrorCode] | None = None,
    worker: str | None = None,
    store: ResultStore | None = None,
) -> JobResult:
    """Process one payload to an outcome and record the attempt's metrics. Never raises."""
    result, manifest = _execute(payload, settings, retry_count, retry_error_codes, worker, store)
    try:
        metrics.record_attempt(result, manifest)
    except Exception as exc:  # metrics never fail a job
        logger.warning("cannot record metrics of %s: %s", payload.run_id, exc)
    return result


def _execute(
    payload: JobPayload,
    settings: WorkerSettings,
    retry_count: int = 0,
    retry_error_codes: list[ErrorCode] | None = None,
    worker: str | None = None,
    store: ResultStore | None = None,
) -> tuple[JobResult, Any | None]:
    """(result, manifest of a run this attempt computed). Every failure is a coded JobResult."""
    started_at = utc_now()
    clock = time.perf_counter()
    result = JobResult(
        run_id=None,
        requested_run_id=payload.run_id,
        platform_id=payload.platform_id,
        video_id=payload.video_id,
        profile=payload.profile,
        config_hash=payload.config_hash,
        status="error",
        retry_count=retry_count,
        retry_error_codes=list(retry_error_codes or []),
        worker=worker,
        submitted_at=payload.submitted_at,
        started_at=started_at,
        queue_wait_sec=_seconds_between(payload.submitted_at, started_at),
    )
    scratch: Path | None = None
    try:
        store = store or ResultStore(settings.store_root)
        _check_profile(payload)
        if not payload.force:
            cached = _cached_run(store, payload)
            if cached is not None:
                return _finish(result, clock, cached), None
        clean_stale_scratch(settings.scratch_root, settings.job_time_limit_s)  # a killed job's frames
        scratch = job_scratch(settings, payload.run_id)
        outcome = run_job(_request(payload, store, scratch, retry_count))
        return _finish(result, clock, outcome), outcome.manifest
    except TrendFlowError as exc:
        result.error_code, result.error, result.error_reason = exc.code, exc.message, exc.reason
    except Exception as exc:  # a bug, not an input problem: keep the worker alive, say so
        logger.exception("job %s crashed", payload.run_id)
        result.error_code, result.error = ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}"
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    result.finished_at = utc_now()
    result.duration_sec = round(time.perf_counter() - clock, 4)
    return result, None


def _check_profile(payload: JobPayload) -> None:
    """The worker must compute what the dispatcher asked for: same profile, same config hash."""
    local_hash = profile_config_hash(payload.profile)
    if local_hash != payload.config_hash:
        raise TrendFlowError(
            ErrorCode.INVALID_REQUEST,
            f"job was built for config_hash {payload.config_hash[:12]}... but this worker's profile "
            f"{payload.profile!r} hashes to {local_hash[:12]}...: dispatcher and worker run different "
            "component_graph.yaml or package versions; rebuild the job with this deployment",
        )


def profile_config_hash(profile: str) -> str:
    """config_hash of a profile of the installed component graph, re-read when the file changes."""
    from trendflow.dataprocessor.graph import DEFAULT_GRAPH

    return _profile_hash(profile, DEFAULT_GRAPH.stat().st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _profile_hash(profile: str, graph_mtime_ns: int) -> str:
    from trendflow.dataprocessor.graph import ComponentGraph
    from trendflow.dataprocessor.run import config_hash_for

    return config_hash_for(ComponentGraph.load().profile(profile))


def _cached_run(store: ResultStore, payload: JobPayload) -> Any | None:
    """SPEC 3: a finished run with the same idempotency key is returned, not recomputed."""
    from trendflow.dataprocessor.run import RunOutcome
    from trendflow.dataprocessor.run_index import find_cached_run

    manifest = find_cached_run(store, *payload.idempotency_key)
    if manifest is None:
        return None
    log_event(logger, "cache_hit", run_id=manifest.run.run_id, video_id=payload.video_id)
    return RunOutcome(
        status=manifest.status,
        identity=manifest.run,
        manifest=manifest,
        manifest_uri=store.uri(RunLayout.of(manifest.run).manifest),
        cache_hit=True,
    )


def _request(payload: JobPayload, store: ResultStore, scratch: Path, retry_count: int) -> Any:
    from trendflow.dataprocessor.run import ProcessRequest

    source = stage_source(payload.video_source, scratch)
    return ProcessRequest(
        source=source,
        store=store,
        profile=payload.profile,
        platform_id=payload.platform_id,
        video_id=payload.video_id,
        metadata_file=write_sidecar(payload.metadata, scratch),
        force=payload.force,
        scratch_root=scratch,
        retry_count=retry_count,
        run_id=payload.run_id,
    )


def _finish(result: JobResult, clock: float, outcome: Any) -> JobResult:
    identity = outcome.identity
    result.status = "success" if outcome.status == "success" else "error"
    result.error_code = outcome.error_code
    result.error = outcome.error
    result.error_reason = getattr(outcome, "error_reason", None)
    if result.status == "error" and result.error_code is None:
        result.error_code = ErrorCode.INTERNAL
    result.cache_hit = bool(outcome.cache_hit)
    result.resumed = bool(getattr(outcome, "resumed", False))
    result.manifest_uri = outcome.manifest_uri
    if identity is not None:
        result.run_id = identity.run_id
        result.platform_id, result.video_id = identity.platform_id, identity.video_id
    if outcome.error and "SoftTimeLimitExceeded" in outcome.error:
        result.error_code = ErrorCode.TIMEOUT  # the orchestrator saw Celery's soft limit as a crash
    result.finished_at = utc_now()
    result.duration_sec = round(time.perf_counter() - clock, 4)
    return result


def _seconds_between(start: datetime | None, end: datetime) -> float | None:
    return None if start is None else round((end - start).total_seconds(), 4)
