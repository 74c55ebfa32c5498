"""Finish a crashed or failed run: recover its state, keep valid artifacts, recompute the rest.

The caller passes the same source (and metadata sidecar) again; the state records only its uri
and digests, never raw text. The profile and the source must be the ones the run started with.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.identity import local_video_id, utc_now
from trendflow.contracts.manifest import Manifest, ResolvedModel
from trendflow.dataprocessor.graph import ComponentGraph, Profile
from trendflow.dataprocessor.run.plan import check_params, config_hash_for, resolve_models, source_record
from trendflow.dataprocessor.run.request import ProcessRequest, ProgressCallback, RunOutcome
from trendflow.dataprocessor.run.scheduler import Run
from trendflow.dataprocessor.sources import ResolvedSource, resolve_source
from trendflow.dataprocessor.state import RunRecorder, faults
from trendflow.events import log_event
from trendflow.storage.layout import RunLayout
from trendflow.storage.store import ResultStore

logger = logging.getLogger(__name__)


def resume(
    request: ProcessRequest,
    layout: RunLayout,
    source: ResolvedSource | None,
    scratch: Path,
    progress: ProgressCallback | None,
) -> RunOutcome:
    """Recover the run's state, check the source and configuration are the same, then finish it."""
    try:
        recorder = RunRecorder.resume(request.store, layout, request.retry_count, request.state_settings)
    except TrendFlowError as exc:
        return RunOutcome.failed(exc)
    faults.crash_point("during_resume", "recovered")
    state = recorder.state
    identity = state.run
    report = recorder.report.as_payload() if recorder.report else {}
    log_event(logger, "run_resuming", run_id=identity.run_id, attempt=state.attempt, **report)
    try:
        profile = ComponentGraph.load(request.graph_path).profile(state.profile)
        if config_hash_for(profile) != identity.config_hash:
            raise TrendFlowError(
                ErrorCode.CONFIG_ERROR,
                f"profile {state.profile} changed since run {identity.run_id} started (config_hash differs); "
                "process the video as a new run instead of resuming",
            )
        if source is None:
            uri = request.source or str(state.source.get("uri") or "")
            source = resolve_source(uri, scratch / "download", request.metadata_file)
        platform_id = request.platform_id or source.platform_id
        video_id = request.video_id or source.video_id or local_video_id(source.path)
        if (platform_id, video_id) != (identity.platform_id, identity.video_id):
            raise TrendFlowError(
                ErrorCode.INVALID_REQUEST,
                f"the source is {platform_id}/{video_id}, the run is "
                f"{identity.platform_id}/{identity.video_id}: resume with the run's own video",
            )
        check_params(profile)
        invalid = source_changes(state.source, source_record(source), profile, recorder)
        resolved_models = resolve_models(request, profile)
        invalid |= model_changes(request.store, layout, resolved_models)
    except TrendFlowError as exc:
        try:
            recorder.finish("error", exc.code, exc.message)
            fail_manifest(request.store, layout, exc, recorder.state.retry_count)
        except TrendFlowError as storage:
            logger.warning(
                "resume of %s failed and could not be recorded: %s", layout.run_dir, storage.message
            )
        finally:
            recorder.close()
        return RunOutcome.failed(exc, identity=identity, resumed=True)
    run = Run(request, profile, source, identity, resolved_models, scratch, progress, recorder, invalid)
    return run.execute()


def fail_manifest(store: ResultStore, layout: RunLayout, error: TrendFlowError, retry_count: int) -> None:
    """A resume that failed before any work: the crashed attempt's manifest must not say `running`."""
    if not store.exists(layout.manifest):
        return
    manifest = Manifest.model_validate_json(store.read_bytes(layout.manifest))
    now = utc_now()
    update = {"status": "error", "error_code": error.code, "error": error.message}
    failed = manifest.model_copy(
        update={**update, "retry_count": retry_count, "updated_at": now, "finished_at": now}
    )
    store.write_bytes(
        layout.manifest, Manifest.model_validate(failed.model_dump()).model_dump_json(indent=2).encode()
    )


def source_changes(
    recorded: dict[str, Any], current: dict[str, Any], profile: Profile, recorder: RunRecorder
) -> set[str]:
    """Components to recompute because the source's metadata differs from the recorded one.

    A local sidecar must be the same file (a different one would make the run a mix of two
    inputs); a URL's metadata may have changed on the platform since, so its text components
    (the ones that read titles, tags, publish time) are recomputed, with a warning.
    """
    if recorded.get("info_sha256") in (None, current["info_sha256"]):
        return set()
    if current["kind"] == "local":
        raise TrendFlowError(
            ErrorCode.INVALID_REQUEST,
            "the metadata sidecar differs from the one the run started with: "
            "resume with the same --metadata file",
        )
    recorder.warning(
        "the platform's metadata of the video changed since the run started; text components recomputed"
    )
    return {n for n, c in profile.components.items() if c.processor == "text"}


def model_changes(store: ResultStore, layout: RunLayout, resolved: dict[str, ResolvedModel]) -> set[str]:
    """Components whose resolved model differs from the one recorded in the run's manifest."""
    if not store.exists(layout.manifest):
        return set()
    try:
        previous = Manifest.model_validate_json(store.read_bytes(layout.manifest)).resolved_models
    except ValueError:
        return set(resolved)
    return {name for name in set(previous) | set(resolved) if previous.get(name) != resolved.get(name)}
