"""The run orchestrator: one video -> a complete, contract-valid run in the result store.

Order of work: validate the request, resolve the source, derive the run identity, return a
cached run when the idempotency key already has one, then the segmenter (decode once) and
every component of the profile in dependency order, a few at a time. Each component's
outcome is written as an NPZ and a manifest record before the next decision is made.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
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
from trendflow.dataprocessor.component import ComponentOutput, PrivacyPolicy, RunContext, component_class
from trendflow.dataprocessor.frame_store import FrameStore
from trendflow.dataprocessor.graph import ComponentGraph, Profile, ResolvedComponent
from trendflow.dataprocessor.manifest_writer import ManifestWriter
from trendflow.dataprocessor.resources import RssSampler, measure
from trendflow.dataprocessor.run_index import find_cached_run
from trendflow.dataprocessor.segmenter import segment
from trendflow.dataprocessor.sources import ResolvedSource, resolve_source
from trendflow.events import log_event
from trendflow.storage.layout import RunLayout
from trendflow.storage.npz_io import read_npz, write_npz
from trendflow.storage.store import ResultStore

logger = logging.getLogger(__name__)
PRODUCER = "trendflow.dataprocessor"
ProgressCallback = Callable[[str, str], None]  # (component, status)


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


@dataclass
class RunOutcome:
    status: str
    error_code: ErrorCode | None = None
    error: str | None = None
    identity: RunIdentity | None = None
    manifest_uri: str | None = None
    manifest: Manifest | None = None
    cache_hit: bool = False

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.identity.run_id if self.identity else None,
            "status": self.status,
            "error_code": str(self.error_code) if self.error_code else None,
            "manifest": self.manifest_uri,
            "cache_hit": self.cache_hit,
            **({"error": self.error} if self.error else {}),
        }


def config_hash_for(profile: Profile) -> str:
    return compute_config_hash(profile.canonical(), SAMPLING_POLICY_VERSION, profile.model_mapping())


def process_video(request: ProcessRequest, progress: ProgressCallback | None = None) -> RunOutcome:
    """Run one video through its profile. Never raises for bad input: the outcome says why."""
    try:
        profile = ComponentGraph.load(request.graph_path).profile(request.profile)
        if request.platform_id is not None:
            validate_platform_id(request.platform_id)
        if request.video_id is not None:
            validate_video_id(request.video_id)
    except TrendFlowError as exc:
        return RunOutcome(status="error", error_code=exc.code, error=exc.message)

    scratch = Path(tempfile.mkdtemp(prefix="trendflow-", dir=request.scratch_root))
    try:
        return _process(request, profile, scratch, progress)
    finally:
        if not request.policy.keep_media:
            shutil.rmtree(scratch, ignore_errors=True)


def _process(
    request: ProcessRequest, profile: Profile, scratch: Path, progress: ProgressCallback | None
) -> RunOutcome:
    try:
        source = resolve_source(request.source, scratch / "download", request.metadata_file)
        platform_id = validate_platform_id(request.platform_id or source.platform_id)
        video_id = validate_video_id(request.video_id or source.video_id or local_video_id(source.path))
        resolved_models = request.model_resolver(profile) if request.model_resolver else {}
    except TrendFlowError as exc:
        log_event(logger, "run_rejected", source=request.source, error_code=str(exc.code))
        return RunOutcome(status="error", error_code=exc.code, error=exc.message)

    config_hash = config_hash_for(profile)
    if not request.force:
        cached = find_cached_run(request.store, platform_id, video_id, config_hash)
        if cached is not None:
            log_event(logger, "cache_hit", run_id=cached.run.run_id, video_id=video_id)
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
    return Run(request, profile, source, identity, resolved_models, scratch, progress).execute()


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
    ) -> None:
        self.request = request
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
            retry_count=request.retry_count,
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
        log_event(logger, "run_started", **self._ids(), profile=self.profile.name)
        with self.sampler:
            try:
                self.writer.write()
                self._run_segmenter()
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
        return self._finish("success", None, None)

    def _finish(self, status: str, code: ErrorCode | None, error: str | None) -> RunOutcome:
        try:
            manifest = self.writer.finish(status, code, error, self.sampler.peak_mb)
        except TrendFlowError as exc:
            status, code, error, manifest = "error", exc.code, exc.message, None
        log_event(logger, "run_finished", **self._ids(), status=status, error_code=code)
        return RunOutcome(
            status=status,
            error_code=code,
            error=error,
            identity=self.identity,
            manifest=manifest,
            manifest_uri=self.writer.uri,
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

    # -- segmenter -------------------------------------------------------------------------
    def _run_segmenter(self) -> None:
        spec = self.profile.components["segmenter"]
        started = utc_now()
        self.progress("segmenter", "running")
        frames_dir = self.scratch / "frames_dir"
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
                error = TrendFlowError(ErrorCode.OUT_OF_MEMORY, "segmenter ran out of memory")
        record_fields: dict[str, Any] = {}
        if error is None:
            self.ctx.metadata = metadata
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
        self._record(spec, started, m, Producer(name="trendflow.segmenter", version=dataprocessor_version()),
                     "1.0.0", record_fields)

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
                    if bad:
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
        self._record(spec, utc_now(), None, _producer(cls), cls.schema_version,
                     {"status": "error", "error_code": ErrorCode.DEPENDENCY_MISSING, "error": message})
        if not spec.required:
            self.writer.add_warning(f"optional component {name} not run: {message}")

    def _skip(self, name: str, reason: str) -> None:
        spec = self.profile.components[name]
        cls = component_class(name)
        self._record(spec, utc_now(), None, _producer(cls), cls.schema_version,
                     {"status": "skipped", "warnings": [reason]})

    def _run_component(self, name: str) -> None:
        spec = self.profile.components[name]
        cls = component_class(name)
        producer = _producer(cls)
        started = utc_now()
        self.progress(name, "running")
        output: ComponentOutput | None = None
        fields: dict[str, Any]
        with measure(self.sampler) as m:
            try:
                output = cls(spec).run(self.ctx)
                fields = self._store_output(spec, cls.schema_version, producer, output)
            except TrendFlowError as exc:
                fields = {"status": "error", "error_code": exc.code, "error": exc.message}
            except MemoryError:
                fields = {"status": "error", "error_code": ErrorCode.OUT_OF_MEMORY,
                          "error": f"out of memory (process RSS {self.sampler.current_mb():.0f} MB)"}
            except Exception as exc:
                logger.error("component %s failed:\n%s", name, traceback.format_exc())
                fields = {"status": "error", "error_code": ErrorCode.COMPONENT_FAILED,
                          "error": f"{type(exc).__name__}: {exc}"}
        if fields["status"] == "error" and not spec.required:
            self.writer.add_warning(f"optional component {name} failed: {fields['error']}")
        self._record(spec, started, m, producer, cls.schema_version, fields)

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
        artifact = write_npz(self.store, rel, self.layout.run_dir, output.arrays, meta)
        return {
            "status": status,
            "empty_reason": output.empty_reason,
            "warnings": output.warnings,
            "artifacts": [artifact],
            "units_processed": output.units_processed,
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
        self.records[spec.name] = record
        self.writer.record_component(record)
        self.progress(spec.name, record.status)
        log_event(logger, "component_finished", **self._ids(), component=spec.name, status=record.status,
                  error_code=record.error_code, duration_sec=record.duration_sec)

    def _read_dependency(self, name: str) -> tuple[dict[str, np.ndarray], NpzMeta]:
        record = self.records.get(name)
        if record is None or record.status not in ("ok", "empty") or not record.artifacts:
            raise TrendFlowError(ErrorCode.DEPENDENCY_MISSING, f"dependency {name} has no valid artifact")
        return read_npz(self.store, self.layout.path(record.artifacts[0].path))

    def _keep_or_drop_frames(self) -> None:
        frames = self.ctx.frames
        if frames is None:
            return
        if self.request.policy.keep_frames and self.ctx.metadata is not None:
            frames_file = self.scratch / "frames_dir" / self.ctx.metadata.frames_file
            self.store.put_file(str(frames_file), self.layout.path("frames_dir", self.ctx.metadata.frames_file))
        frames.delete()


def _producer(cls: type) -> Producer:
    return Producer(name=f"{PRODUCER}.{cls.name}", version=f"{cls.version}+{dataprocessor_version()}")


def _load_audio(frames_dir: Path, metadata: FramesMetadata) -> np.ndarray | None:
    if metadata.audio is None:
        return None
    return np.load(frames_dir / metadata.audio.path, mmap_mode="r")
