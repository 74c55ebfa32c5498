"""Admit one request: validate it, resolve the source and models, answer from the cache, hand a
redelivered job to resume, or start a new run with a fresh identity."""

from __future__ import annotations

import logging
from pathlib import Path

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.identity import (
    RunIdentity,
    local_video_id,
    new_run_id,
    utc_now,
    validate_platform_id,
    validate_video_id,
)
from trendflow.contracts.versions import SAMPLING_POLICY_VERSION, dataprocessor_version
from trendflow.dataprocessor.graph import Profile
from trendflow.dataprocessor.manifest_writer import write_rejected_manifest
from trendflow.dataprocessor.run.plan import check_params, config_hash_for, resolve_models, source_record
from trendflow.dataprocessor.run.request import ProcessRequest, ProgressCallback, RunOutcome
from trendflow.dataprocessor.run.resume import resume
from trendflow.dataprocessor.run.scheduler import Run
from trendflow.dataprocessor.run_index import find_cached_run
from trendflow.dataprocessor.sources import is_url, redact_url, resolve_source
from trendflow.dataprocessor.state import GlobalStateManager, RunEntry, RunRecorder
from trendflow.dataprocessor.state.journal import run_has_state
from trendflow.events import log_event
from trendflow.storage.layout import RunLayout
from trendflow.storage.store import ResultStore

logger = logging.getLogger(__name__)


def admit(
    request: ProcessRequest, profile: Profile | None, scratch: Path, progress: ProgressCallback | None
) -> RunOutcome:
    if request.resume:
        try:
            layout = RunLayout.from_run_dir(request.resume)
            _ = layout.run_dir  # validates the ids
        except (ValueError, TrendFlowError) as exc:
            return RunOutcome(status="error", error_code=ErrorCode.INVALID_REQUEST, error=str(exc))
        return resume(request, layout, None, scratch, progress)
    assert profile is not None
    try:
        source = resolve_source(request.source, scratch / "download", request.metadata_file)
    except TrendFlowError as exc:
        log_event(logger, "run_rejected", source=request.source, error_code=str(exc.code), reason=exc.reason)
        return RunOutcome.failed(exc, manifest_uri=record_rejected_source(request, profile, exc))
    try:
        platform_id = validate_platform_id(request.platform_id or source.platform_id)
        video_id = validate_video_id(request.video_id or source.video_id or local_video_id(source.path))
        check_params(profile)
        resolved_models = resolve_models(request, profile)
    except TrendFlowError as exc:
        log_event(logger, "run_rejected", source=request.source, error_code=str(exc.code), reason=exc.reason)
        return RunOutcome.failed(exc)

    if request.run_id is not None:
        layout = RunLayout(platform_id, video_id, request.run_id)
        try:
            redelivered = run_has_state(request.store, layout)
        except TrendFlowError as exc:
            return RunOutcome.failed(exc)
        if redelivered:  # a queued job delivered again after its worker died: finish that run
            return resume(request, layout, source, scratch, progress)

    config_hash = config_hash_for(profile)
    if not request.force:
        try:
            cached = find_cached_run(request.store, platform_id, video_id, config_hash)
        except TrendFlowError as exc:
            return RunOutcome.failed(exc)
        if cached is not None:
            log_event(logger, "cache_hit", run_id=cached.run.run_id, video_id=video_id)
            note_cache_hit(request.store, RunLayout.of(cached.run))
            return RunOutcome(
                status=cached.status,
                identity=cached.run,
                manifest=cached,
                manifest_uri=request.store.uri(RunLayout.of(cached.run).manifest),
                cache_hit=True,
            )

    identity = RunIdentity(
        platform_id=platform_id,
        video_id=video_id,
        run_id=request.run_id or new_run_id(),
        config_hash=config_hash,
        sampling_policy_version=SAMPLING_POLICY_VERSION,
        dataprocessor_version=dataprocessor_version(),
        created_at=utc_now(),
    )
    components = [(n, profile.components[n].processor, profile.components[n].required) for n in profile.order]
    try:
        recorder = RunRecorder.start(
            request.store,
            identity,
            profile.name,
            components,
            source_record(source),
            request.retry_count,
            request.state_settings,
        )
    except TrendFlowError as exc:
        return RunOutcome.failed(exc, identity=identity)
    return Run(request, profile, source, identity, resolved_models, scratch, progress, recorder).execute()


def record_rejected_source(request: ProcessRequest, profile: Profile, exc: TrendFlowError) -> str | None:
    """A queued run (its identity fixed by the dispatcher) whose video could not be fetched gets an
    error manifest and a Level 1 entry (`attempt` 0: it never started) with the code and reason,
    so `trendflow stats` counts it; a run without a fixed identity gets neither."""
    if request.run_id is None or request.platform_id is None or request.video_id is None:
        return None
    identity = RunIdentity(
        platform_id=request.platform_id,
        video_id=request.video_id,
        run_id=request.run_id,
        config_hash=config_hash_for(profile),
        sampling_policy_version=SAMPLING_POLICY_VERSION,
        dataprocessor_version=dataprocessor_version(),
        created_at=utc_now(),
    )
    source = {"kind": "url" if is_url(request.source) else "local", "uri": redact_url(request.source)}
    try:
        if run_has_state(request.store, RunLayout.of(identity)):
            return None  # a started run keeps its own manifest; the retry resumes it
        uri = write_rejected_manifest(request.store, identity, profile, source, exc, request.retry_count)
        index_rejected_run(request.store, identity, profile.name, exc, request.retry_count)
        return uri
    except TrendFlowError as storage:
        logger.warning("rejected run %s not recorded: %s", request.run_id, storage.message)
        return None


def index_rejected_run(
    store: ResultStore, identity: RunIdentity, profile: str, exc: TrendFlowError, retry_count: int
) -> None:
    """Level 1 for a run rejected before it started: status `error`, its code and reason."""
    manager = GlobalStateManager(store)
    manager.put(
        RunEntry(
            platform_id=identity.platform_id,
            video_id=identity.video_id,
            run_id=identity.run_id,
            config_hash=identity.config_hash,
            profile=profile,
            status="error",
            error_code=exc.code,
            error_reason=exc.reason,
            retry_count=retry_count,
            attempt=0,
            created_at=identity.created_at,
            updated_at=identity.created_at,
        )
    )
    manager.compact()


def note_cache_hit(store: ResultStore, layout: RunLayout) -> None:
    try:
        RunRecorder.note_cache_hit(store, layout)
    except TrendFlowError as exc:  # the hit stands; only its journal line is missing
        logger.warning("cache hit on %s not journaled: %s", layout.run_dir, exc.message)
