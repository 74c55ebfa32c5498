"""The run orchestrator: one video -> a complete, contract-valid run in the result store.

Order of work: validate the request, resolve the source, derive the run identity, return a
cached run when the idempotency key already has one, then the segmenter (decode once) and
every component of the profile in dependency order, a few at a time. Each component's
outcome is journaled in the run state (dataprocessor/state), then written as an NPZ and a
manifest record before the next decision is made.

A crashed run is resumed (`ProcessRequest.resume`, or a redelivered job whose `run_id` already
has state): its state is recovered from checkpoints + journal, components whose artifacts
still match their sha256 are kept, the rest is recomputed. The caller passes the same source
(and metadata sidecar) again; the state records only its uri and digests, never raw text.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import shutil
import signal
import subprocess
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trendflow.contracts.errors import ErrorCode, TrendFlowError, is_transient
from trendflow.contracts.identity import (
    RunIdentity,
    canonical_json,
    compute_config_hash,
    local_video_id,
    new_run_id,
    utc_now,
    validate_platform_id,
    validate_video_id,
)
from trendflow.contracts.manifest import ArtifactRef, ComponentRecord, Manifest, ResolvedModel
from trendflow.contracts.metadata import FramesMetadata
from trendflow.contracts.npz_meta import NpzMeta, Producer, model_signature
from trendflow.contracts.versions import SAMPLING_POLICY_VERSION, dataprocessor_version
from trendflow.dataprocessor.adaptive_batch import run_halving
from trendflow.dataprocessor.component import ComponentOutput, PrivacyPolicy, RunContext, component_class
from trendflow.dataprocessor.frame_store import FrameStore
from trendflow.dataprocessor.graph import ComponentGraph, Profile, ResolvedComponent
from trendflow.dataprocessor.manifest_writer import ManifestWriter, write_rejected_manifest
from trendflow.dataprocessor.resources import RssSampler, measure
from trendflow.dataprocessor.run_index import find_cached_run
from trendflow.dataprocessor.scratch import clean_leftovers, default_root, new_scratch
from trendflow.dataprocessor.segmenter import RUN_WARNING_PREFIX, segment
from trendflow.dataprocessor.sources import ResolvedSource, is_url, redact_url, resolve_source
from trendflow.dataprocessor.state import RunRecorder, StateSettings, faults
from trendflow.dataprocessor.state.journal import run_has_state
from trendflow.events import log_event
from trendflow.storage.layout import RunLayout
from trendflow.storage.npz_io import encode_npz, read_npz, write_npz
from trendflow.storage.store import ResultStore

logger = logging.getLogger(__name__)
PRODUCER = "trendflow.dataprocessor"
ProgressCallback = Callable[[str, str], None]  # (component, status)
# The component whose thread is running: its dependency reads go through its own Level 3 state.
_CURRENT_COMPONENT: contextvars.ContextVar[str | None] = contextvars.ContextVar("component", default=None)


@dataclass
class ProcessRequest:
    source: str
    store: ResultStore
    profile: str = "baseline"
    platform_id: str | None = None
    video_id: str | None = None
    metadata_file: Path | None = None
    force: bool = False
    policy: PrivacyPolicy = field(default_factory=PrivacyPolicy)
    scratch_root: Path | None = None
    graph_path: Path | None = None
    retry_count: int = 0
    run_id: str | None = None
    services: dict[str, Any] = field(default_factory=dict)
    model_resolver: Callable[[Profile], dict[str, ResolvedModel]] | None = None
    resume: str | None = None  # run dir (<platform>/<video>/<run_id>) of a crashed run to finish
    state_settings: StateSettings | None = None


@dataclass
class RunOutcome:
    status: str
    error_code: ErrorCode | None = None
    error: str | None = None
    error_reason: str | None = None  # a finer cause, e.g. `private` for source_unavailable
    identity: RunIdentity | None = None
    manifest_uri: str | None = None
    manifest: Manifest | None = None
    cache_hit: bool = False
    resumed: bool = False
    state_overhead_sec: float = 0.0  # time spent in state tracking (journal, checkpoints, Level 1)

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.identity.run_id if self.identity else None,
            "status": self.status,
            "error_code": str(self.error_code) if self.error_code else None,
            **({"error_reason": self.error_reason} if self.error_reason else {}),
            "manifest": self.manifest_uri,
            "cache_hit": self.cache_hit,
            "resumed": self.resumed,
            **({"error": self.error} if self.error else {}),
        }


def resolve_models(request: ProcessRequest, profile: Profile) -> dict[str, ResolvedModel]:
    """The run's model mapping with weights digests (SPEC 12). Profiles without models need no
    model repository; the others resolve against the built repository unless the caller
    supplies its own resolver. Components find the mapping in `services["resolved_models"]`."""
    if not profile.model_mapping():
        return {}
    if request.model_resolver is None:
        from trendflow.serving.model_resolution import resolve_profile_models

        request.model_resolver = resolve_profile_models
    resolved = request.model_resolver(profile)
    request.services.setdefault("resolved_models", resolved)
    return resolved


def config_hash_for(profile: Profile) -> str:
    return compute_config_hash(profile.canonical(), SAMPLING_POLICY_VERSION, profile.model_mapping())


def source_record(source: ResolvedSource) -> dict[str, str | bool]:
    """What the state keeps about the source: enough to check a resume got the same one, no raw text."""
    info_json = canonical_json(source.info.model_dump(mode="json"))
    return {
        "kind": source.kind,
        "uri": source.uri,
        "downloaded": source.downloaded,
        "info_sha256": hashlib.sha256(info_json.encode()).hexdigest(),
    }


def resume_run(store: ResultStore, run_dir: str, source: str | None = None, **options: Any) -> RunOutcome:
    """Finish a crashed or failed run: same identity, valid artifacts kept, the rest recomputed.

    `source` (and `metadata_file` in `options`) must be the ones the run started with; without
    `source` the uri recorded in the run state is used (a URL, or a path this worker can read).
    """
    request = ProcessRequest(source=source or "", store=store, resume=run_dir, **options)
    return process_video(request)


def process_video(request: ProcessRequest, progress: ProgressCallback | None = None) -> RunOutcome:
    """Run one video through its profile. Never raises for bad input: the outcome says why."""
    try:
        profile = None if request.resume else ComponentGraph.load(request.graph_path).profile(request.profile)
        if request.platform_id is not None:
            validate_platform_id(request.platform_id)
        if request.video_id is not None:
            validate_video_id(request.video_id)
    except TrendFlowError as exc:
        return RunOutcome(status="error", error_code=exc.code, error=exc.message)

    root = default_root(request.scratch_root)
    try:
        clean_leftovers(root)  # frames a killed run left behind (dataprocessor/scratch.py)
        scratch = new_scratch(root)
    except OSError as exc:
        return RunOutcome(
            status="error", error_code=ErrorCode.STORAGE_UNAVAILABLE, error=f"scratch {root}: {exc}"
        )
    try:
        return _process(request, profile, scratch, progress)
    finally:
        if not request.policy.keep_media:
            shutil.rmtree(scratch, ignore_errors=True)


def _process(
    request: ProcessRequest, profile: Profile | None, scratch: Path, progress: ProgressCallback | None
) -> RunOutcome:
    if request.resume:
        try:
            layout = RunLayout.from_run_dir(request.resume)
            _ = layout.run_dir  # validates the ids
        except (ValueError, TrendFlowError) as exc:
            return RunOutcome(status="error", error_code=ErrorCode.INVALID_REQUEST, error=str(exc))
        return _resume(request, layout, None, scratch, progress)
    assert profile is not None
    try:
        source = resolve_source(request.source, scratch / "download", request.metadata_file)
    except TrendFlowError as exc:
        log_event(logger, "run_rejected", source=request.source, error_code=str(exc.code), reason=exc.reason)
        return RunOutcome(
            status="error",
            error_code=exc.code,
            error=exc.message,
            error_reason=exc.reason,
            manifest_uri=_record_rejected_source(request, profile, exc),
        )
    try:
        platform_id = validate_platform_id(request.platform_id or source.platform_id)
        video_id = validate_video_id(request.video_id or source.video_id or local_video_id(source.path))
        resolved_models = resolve_models(request, profile)
    except TrendFlowError as exc:
        log_event(logger, "run_rejected", source=request.source, error_code=str(exc.code), reason=exc.reason)
        return RunOutcome(status="error", error_code=exc.code, error=exc.message, error_reason=exc.reason)

    if request.run_id is not None:
        layout = RunLayout(platform_id, video_id, request.run_id)
        try:
            redelivered = run_has_state(request.store, layout)
        except TrendFlowError as exc:
            return RunOutcome(status="error", error_code=exc.code, error=exc.message)
        if redelivered:  # a queued job delivered again after its worker died: finish that run
            return _resume(request, layout, source, scratch, progress)

    config_hash = config_hash_for(profile)
    if not request.force:
        try:
            cached = find_cached_run(request.store, platform_id, video_id, config_hash)
        except TrendFlowError as exc:
            return RunOutcome(status="error", error_code=exc.code, error=exc.message)
        if cached is not None:
            log_event(logger, "cache_hit", run_id=cached.run.run_id, video_id=video_id)
            _note_cache_hit(request.store, RunLayout.of(cached.run))
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
        return RunOutcome(status="error", error_code=exc.code, error=exc.message, identity=identity)
    return Run(request, profile, source, identity, resolved_models, scratch, progress, recorder).execute()


def _record_rejected_source(request: ProcessRequest, profile: Profile, exc: TrendFlowError) -> str | None:
    """A queued run (its identity fixed by the dispatcher) whose video could not be fetched gets an
    error manifest with the code and reason; a run without a fixed identity gets none."""
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
        return write_rejected_manifest(request.store, identity, profile, source, exc, request.retry_count)
    except TrendFlowError as storage:
        logger.warning("rejected run %s not recorded: %s", request.run_id, storage.message)
        return None


def _note_cache_hit(store: ResultStore, layout: RunLayout) -> None:
    try:
        RunRecorder.note_cache_hit(store, layout)
    except TrendFlowError as exc:  # the hit stands; only its journal line is missing
        logger.warning("cache hit on %s not journaled: %s", layout.run_dir, exc.message)


def _resume(
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
        return RunOutcome(status="error", error_code=exc.code, error=exc.message)
    faults.crash_point("during_resume", "recovered")
    state = recorder.state
    identity = state.run
    log_event(
        logger,
        "run_resuming",
        run_id=identity.run_id,
        attempt=state.attempt,
        **(recorder.report.as_payload() if recorder.report else {}),
    )
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
        invalid = _source_changes(state.source, source_record(source), profile, recorder)
        resolved_models = resolve_models(request, profile)
        invalid |= _model_changes(request.store, layout, resolved_models)
    except TrendFlowError as exc:
        try:
            recorder.finish("error", exc.code, exc.message)
            _fail_manifest(request.store, layout, exc, recorder.state.retry_count)
        except TrendFlowError as storage:
            logger.warning(
                "resume of %s failed and could not be recorded: %s", layout.run_dir, storage.message
            )
        finally:
            recorder.close()
        return RunOutcome(
            status="error",
            error_code=exc.code,
            error=exc.message,
            error_reason=exc.reason,
            identity=identity,
            resumed=True,
        )
    run = Run(request, profile, source, identity, resolved_models, scratch, progress, recorder, invalid)
    return run.execute()


def _fail_manifest(store: ResultStore, layout: RunLayout, error: TrendFlowError, retry_count: int) -> None:
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


def _source_changes(
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


def _model_changes(store: ResultStore, layout: RunLayout, resolved: dict[str, ResolvedModel]) -> set[str]:
    """Components whose resolved model differs from the one recorded in the run's manifest."""
    if not store.exists(layout.manifest):
        return set()
    try:
        previous = Manifest.model_validate_json(store.read_bytes(layout.manifest)).resolved_models
    except ValueError:
        return set(resolved)
    return {name for name in set(previous) | set(resolved) if previous.get(name) != resolved.get(name)}


class Run:
    """One execution of a profile on a resolved source, with a fixed identity."""

    def __init__(
        self,
        request: ProcessRequest,
        profile: Profile,
        source: ResolvedSource,
        identity: RunIdentity,
        resolved_models: dict[str, ResolvedModel],
        scratch: Path,
        progress: ProgressCallback | None,
        recorder: RunRecorder,
        resume_invalid: set[str] | None = None,
    ) -> None:
        self.request = request
        self.recorder = recorder
        # None: a new run. A set: a resume, with components that must be recomputed anyway.
        self.resume_invalid = resume_invalid
        self.reusable: set[str] = set()
        self.profile = profile
        self.source = source
        self.identity = identity
        self.store = request.store
        self.layout = RunLayout.of(identity)
        self.scratch = scratch
        self.progress = progress or (lambda component, status: None)
        self.sampler = RssSampler()
        self.writer = ManifestWriter(
            self.store,
            identity,
            profile,
            resolved_models,
            source={"kind": source.kind, "uri": source.uri, "downloaded": source.downloaded},
            retry_count=recorder.state.retry_count,
            started_at=recorder.state.started_at,
        )
        self.records: dict[str, ComponentRecord] = {}
        self.ctx = RunContext(
            identity=identity,
            store=self.store,
            layout=self.layout,
            source_info=source.info,
            policy=request.policy,
            dependency_reader=self._read_dependency,
            services=request.services,
        )

    # -- top level -------------------------------------------------------------------------
    def execute(self) -> RunOutcome:
        log_event(
            logger,
            "run_started",
            **self._ids(),
            profile=self.profile.name,
            resumed=self.resume_invalid is not None,
        )
        with self.sampler:
            try:
                recorded_metadata = self._plan_resume()
                if self.resume_invalid is not None:
                    faults.crash_point("during_resume", "planned")
                self.writer.write()
                if self._all_reusable():
                    self._reuse("segmenter")
                else:
                    self._run_segmenter()
                    self._check_segmenter_output(recorded_metadata)
                if self._failure() is None:
                    self._run_components()
                self._keep_or_drop_frames()
            except TrendFlowError as exc:  # storage failures outside any component
                return self._finish("error", exc.code, exc.message)
            except Exception as exc:
                logger.exception("run crashed")
                return self._finish("error", ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}")
        failure = self._failure()
        if failure is not None:
            return self._finish("error", failure.error_code, f"{failure.name}: {failure.error}")
        faults.crash_point("before_finish", "run")
        return self._finish("success", None, None)

    def _finish(self, status: str, code: ErrorCode | None, error: str | None) -> RunOutcome:
        manifest = None
        try:  # state first: the journal is the record a resume trusts
            duration = (utc_now() - self.writer.manifest.started_at).total_seconds()
            self.recorder.finish(status, code, error, duration, self.sampler.peak_mb)
        except TrendFlowError as exc:
            status, code, error = "error", exc.code, exc.message
        try:  # the manifest must not stay `running` even when the state could not be written
            manifest = self.writer.finish(status, code, error, self.sampler.peak_mb)
        except TrendFlowError as exc:
            status, code, error = "error", code or exc.code, error or exc.message
        finally:
            self.recorder.close()
        log_event(
            logger,
            "run_finished",
            **self._ids(),
            status=status,
            error_code=code,
            state_overhead_sec=round(self.recorder.overhead_sec, 4),
        )
        return RunOutcome(
            status=status,
            error_code=code,
            error=error,
            identity=self.identity,
            manifest=manifest,
            manifest_uri=self.writer.uri,
            resumed=self.resume_invalid is not None,
            state_overhead_sec=self.recorder.overhead_sec,
        )

    def _ids(self) -> dict[str, str]:
        return {"run_id": self.identity.run_id, "video_id": self.identity.video_id}

    def _failure(self) -> ComponentRecord | None:
        """The record that decides the run: a required component's error, or any transient
        error (the queue retries the whole run; a down model server is never hidden)."""
        for name in ["segmenter", *self.profile.order]:
            record = self.records.get(name)
            if record is None or record.status != "error":
                continue
            if record.required or (record.error_code and is_transient(record.error_code)):
                return record
        return None

    # -- resume ----------------------------------------------------------------------------
    def _plan_resume(self) -> str | None:
        """On a resume: drop crash leftovers and find the components whose artifacts are still
        valid (their dependencies too). Returns the recorded metadata.json digest."""
        if self.resume_invalid is None:
            return None
        self.recorder.sweep_orphans()
        segmenter = self.recorder.component("segmenter")
        recorded = segmenter.artifacts[0].sha256 if segmenter.status == "ok" and segmenter.artifacts else None
        # The segmenter is deterministic: it counts as reusable here and is checked after it re-runs.
        for name in self.profile.order:
            deps = self.profile.components[name].depends_on
            if name in self.resume_invalid or any(d not in self.reusable and d != "segmenter" for d in deps):
                continue
            if self.recorder.verify(name):
                self.reusable.add(name)
        return recorded

    def _all_reusable(self) -> bool:
        """Nothing to recompute: the frames are not needed (unless the policy keeps them)."""
        return (
            self.resume_invalid is not None
            and set(self.profile.order) <= self.reusable
            and not self.request.policy.keep_frames
        )

    def _check_segmenter_output(self, recorded: str | None) -> None:
        if self.resume_invalid is None or not self.reusable - {"segmenter"}:
            return
        record = self.records.get("segmenter")
        current = record.artifacts[0].sha256 if record and record.artifacts else None
        if current is None or current != recorded:
            self.reusable.clear()
            self.recorder.warning(
                "the segmenter's output differs from the recorded one; every component recomputed"
            )

    def _reuse(self, name: str) -> None:
        record = self.recorder.reused(name)
        self.records[name] = record
        self.writer.record_component(record)
        self.progress(name, record.status)
        log_event(logger, "component_reused", **self._ids(), component=name, status=record.status)

    # -- segmenter -------------------------------------------------------------------------
    def _run_segmenter(self) -> None:
        spec = self.profile.components["segmenter"]
        started = utc_now()
        self.progress("segmenter", "running")
        self.recorder.started("segmenter")
        faults.crash_point("before_component", "segmenter")
        frames_dir = self.scratch / "frames_dir"
        oom_rss: float | None = None
        with measure(self.sampler) as m:
            try:
                result = segment(self.source, self.identity, self.profile, frames_dir)
                metadata: FramesMetadata = getattr(result, "metadata", result)
                warnings = list(getattr(result, "warnings", []))
                data = metadata.model_dump_json(indent=2).encode()
                digest = self.store.write_bytes(self.layout.metadata, data)
                error = None
            except TrendFlowError as exc:
                error = exc
            except MemoryError:
                oom_rss = self.sampler.current_mb()
                error = TrendFlowError(
                    ErrorCode.OUT_OF_MEMORY, f"segmenter ran out of memory (RSS {oom_rss:.0f} MB)"
                )
        record_fields: dict[str, Any] = {}
        if error is None:
            self.ctx.metadata = metadata
            for warning in warnings:  # damaged media: said at run level too (docs/segmenter.md)
                if warning.startswith(RUN_WARNING_PREFIX):
                    self.writer.add_warning(warning)
            self.ctx.frames = FrameStore(frames_dir, metadata)
            self.ctx.audio_loader = lambda: _load_audio(frames_dir, metadata)
            record_fields = {
                "status": "ok",
                "warnings": warnings,
                "artifacts": [ArtifactRef(path="frames_dir/metadata.json", sha256=digest, bytes=len(data))],
                "units_processed": len(metadata.union_timestamps_sec),
            }
        else:
            record_fields = {"status": "error", "error_code": error.code, "error": error.message}
        self._record(
            spec,
            started,
            m,
            Producer(name="trendflow.segmenter", version=dataprocessor_version()),
            "1.0.0",
            record_fields,
            oom_rss,
        )

    # -- components ------------------------------------------------------------------------
    def _run_components(self) -> None:
        pending = [n for n in self.profile.order if n != "segmenter"]
        running: dict[Future[None], str] = {}
        with ThreadPoolExecutor(max_workers=self.profile.analysis.workers, thread_name_prefix="comp") as pool:
            while pending or running:
                if self._failure() is not None:
                    for name in pending:
                        self._skip(name, "run stopped after an earlier failure")
                    pending = []
                for name in list(pending):
                    deps = self.profile.components[name].depends_on
                    if any(d not in self.records for d in deps):
                        continue
                    pending.remove(name)
                    bad = [d for d in deps if self.records[d].status not in ("ok", "empty")]
                    if name in self.reusable and not bad:
                        self._reuse(name)
                    elif bad:
                        self._dependency_failed(name, bad)
                    elif len(running) < self.profile.analysis.workers:
                        running[pool.submit(self._run_component, name)] = name
                    else:
                        pending.insert(0, name)
                        break
                if running:
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        running.pop(future)
                        future.result()  # _run_component records its own failures
                elif pending:
                    raise TrendFlowError(ErrorCode.INTERNAL, f"components never became ready: {pending}")

    def _dependency_failed(self, name: str, bad: list[str]) -> None:
        spec = self.profile.components[name]
        message = f"dependency {', '.join(bad)} did not succeed; component not run"
        cls = component_class(name)
        self._record(
            spec,
            utc_now(),
            None,
            _producer(cls),
            cls.schema_version,
            {"status": "error", "error_code": ErrorCode.DEPENDENCY_MISSING, "error": message},
        )
        if not spec.required:
            self.writer.add_warning(f"optional component {name} not run: {message}")

    def _skip(self, name: str, reason: str) -> None:
        spec = self.profile.components[name]
        cls = component_class(name)
        self._record(
            spec,
            utc_now(),
            None,
            _producer(cls),
            cls.schema_version,
            {"status": "skipped", "warnings": [reason]},
        )

    def _run_component(self, name: str) -> None:
        spec = self.profile.components[name]
        cls = component_class(name)
        producer = _producer(cls)
        started = utc_now()
        self.progress(name, "running")
        token = _CURRENT_COMPONENT.set(name)
        self.recorder.started(name)
        faults.crash_point("before_component", name)
        output: ComponentOutput | None = None
        fields: dict[str, Any]
        oom_rss: float | None = None
        with measure(self.sampler) as m:
            try:
                output = run_halving(spec, lambda s: cls(s).run(self.ctx), self._halved(name))
                fields = self._store_output(spec, cls.schema_version, producer, output)
            except TrendFlowError as exc:
                fields = {"status": "error", "error_code": exc.code, "error": exc.message}
            except MemoryError:
                oom_rss = self.sampler.current_mb()
                fields = {
                    "status": "error",
                    "error_code": ErrorCode.OUT_OF_MEMORY,
                    "error": f"out of memory (process RSS {oom_rss:.0f} MB)",
                }
            except subprocess.CalledProcessError as exc:
                # A child killed by SIGKILL is what the kernel's OOM killer leaves behind.
                killed = exc.returncode in (-signal.SIGKILL, 128 + signal.SIGKILL)
                oom_rss = self.sampler.current_mb() if killed else None
                fields = {
                    "status": "error",
                    "error_code": ErrorCode.OUT_OF_MEMORY if killed else ErrorCode.COMPONENT_FAILED,
                    "error": f"child process {exc.cmd!r} exited with {exc.returncode}"
                    + (f" (killed; process RSS {oom_rss:.0f} MB)" if killed else ""),
                }
            except Exception as exc:
                logger.error("component %s failed:\n%s", name, traceback.format_exc())
                fields = {
                    "status": "error",
                    "error_code": ErrorCode.COMPONENT_FAILED,
                    "error": f"{type(exc).__name__}: {exc}",
                }
        _CURRENT_COMPONENT.reset(token)
        if fields["status"] == "error" and not spec.required:
            self.writer.add_warning(f"optional component {name} failed: {fields['error']}")
        self._record(spec, started, m, producer, cls.schema_version, fields, oom_rss)

    def _halved(self, name: str) -> Callable[[int, int, str], None]:
        def note(old: int, new: int, why: str) -> None:
            rss = self.sampler.current_mb()
            self.recorder.batch_halved(name, old, new, rss, why)
            log_event(logger, "batch_halved", **self._ids(), component=name, batch_size=new, rss_mb=rss)

        return note

    def _store_output(
        self, spec: ResolvedComponent, schema_version: str, producer: Producer, output: ComponentOutput
    ) -> dict[str, Any]:
        if output.raw_text_kept and not self.request.policy.keep_raw_text:
            raise TrendFlowError(ErrorCode.INTERNAL, f"{spec.name} kept raw text against the privacy policy")
        status = "empty" if output.empty_reason else "ok"
        meta = NpzMeta(
            run=self.identity,
            component=spec.name,
            processor=spec.processor,
            producer=producer,
            component_schema_version=schema_version,
            status=status,
            empty_reason=output.empty_reason,
            models_used=output.models_used,
            model_signature=model_signature(output.models_used),
            raw_text_retention_days=(
                self.request.policy.raw_text_retention_days if output.raw_text_kept else None
            ),
        )
        rel = self.layout.npz(spec.processor, spec.name)
        if faults.armed("mid_npz_write", spec.name):
            faults.torn_write(self.store, rel, encode_npz(output.arrays, meta))
        artifact = write_npz(self.store, rel, self.layout.run_dir, output.arrays, meta)
        return {
            "status": status,
            "empty_reason": output.empty_reason,
            "warnings": output.warnings,
            "artifacts": [artifact],
            "units_processed": output.units_processed,
            "batch_sizes": list(output.batch_sizes),
            "device_used": output.device_used,
            "models_used": output.models_used,
            "model_signature": meta.model_signature,
        }

    def _record(
        self,
        spec: ResolvedComponent,
        started: Any,
        m: Any,
        producer: Producer,
        schema_version: str,
        fields: dict[str, Any],
        oom_rss_mb: float | None = None,
    ) -> None:
        record = ComponentRecord(
            name=spec.name,
            processor=spec.processor,
            required=spec.required,
            producer=producer,
            schema_version=schema_version,
            started_at=started,
            finished_at=utc_now(),
            duration_sec=round(m.wall_sec, 4) if m else 0.0,
            cpu_time_sec=round(m.cpu_sec, 4) if m else 0.0,
            peak_rss_mb=round(m.peak_rss_mb, 1) if m else None,
            **fields,
        )
        self.recorder.finished(record, oom_rss_mb=oom_rss_mb)
        faults.crash_point("after_component", spec.name)
        self.records[spec.name] = record
        self.writer.record_component(record)
        self.progress(spec.name, record.status)
        log_event(
            logger,
            "component_finished",
            **self._ids(),
            component=spec.name,
            status=record.status,
            error_code=record.error_code,
            duration_sec=record.duration_sec,
        )

    def _read_dependency(self, name: str) -> tuple[dict[str, np.ndarray], NpzMeta]:
        """Through the state chain: the asking component's Level 3 -> Level 2 -> `name`'s Level 3."""
        state = self.recorder.dependency(_CURRENT_COMPONENT.get(), name)
        if state.status not in ("ok", "empty") or not state.artifacts:
            raise TrendFlowError(ErrorCode.DEPENDENCY_MISSING, f"dependency {name} has no valid artifact")
        return read_npz(self.store, self.layout.path(state.artifacts[0].path))

    def _keep_or_drop_frames(self) -> None:
        frames = self.ctx.frames
        if frames is None:
            return
        if self.request.policy.keep_frames and self.ctx.metadata is not None:
            frames_file = self.scratch / "frames_dir" / self.ctx.metadata.frames_file
            self.store.put_file(
                str(frames_file), self.layout.path("frames_dir", self.ctx.metadata.frames_file)
            )
        frames.delete()


def _producer(cls: type) -> Producer:
    return Producer(name=f"{PRODUCER}.{cls.name}", version=f"{cls.version}+{dataprocessor_version()}")


def _load_audio(frames_dir: Path, metadata: FramesMetadata) -> np.ndarray | None:
    if metadata.audio is None:
        return None
    return np.load(frames_dir / metadata.audio.path, mmap_mode="r")
