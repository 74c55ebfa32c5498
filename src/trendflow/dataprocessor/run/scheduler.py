"""Dependency-ordered execution of a profile: the segmenter, then every component a few at a time.

Each step runs through `StepRunner` (step.py), which measures and records it; this module only
decides what runs when: reuse on a resume, skip after a failure, a dependency error when a
dependency did not succeed, otherwise run as soon as the dependencies are recorded.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import numpy as np

from trendflow.contracts.errors import ErrorCode, TrendFlowError, is_transient
from trendflow.contracts.identity import RunIdentity, utc_now
from trendflow.contracts.manifest import ComponentRecord, ResolvedModel
from trendflow.contracts.metadata import FramesMetadata
from trendflow.contracts.npz_meta import NpzMeta
from trendflow.dataprocessor.adaptive_batch import run_halving
from trendflow.dataprocessor.component import RunContext, component_class
from trendflow.dataprocessor.frame_store import FrameStore
from trendflow.dataprocessor.frame_stream import StreamFrames, StreamRestarted, current_component
from trendflow.dataprocessor.graph import Profile
from trendflow.dataprocessor.manifest_writer import ManifestWriter
from trendflow.dataprocessor.resources import RssSampler, lower_thread_priority
from trendflow.dataprocessor.run.artifacts import load_audio, store_metadata, store_output
from trendflow.dataprocessor.run.request import ProcessRequest, ProgressCallback, RunOutcome
from trendflow.dataprocessor.run.reuse import ReusePlan
from trendflow.dataprocessor.run.step import StepRunner, StepSpec
from trendflow.dataprocessor.run.streaming import STOPPED, StreamingSegment, stream_consumers
from trendflow.dataprocessor.segmenter import RUN_WARNING_PREFIX, segment
from trendflow.dataprocessor.sources import ResolvedSource
from trendflow.dataprocessor.state import RunRecorder, faults
from trendflow.events import log_event
from trendflow.storage.layout import RunLayout
from trendflow.storage.npz_io import read_npz

logger = logging.getLogger(__name__)


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
        self.reuse = ReusePlan(resume_invalid)
        self.profile = profile
        self.source = source
        self.identity = identity
        self.store = request.store
        self.layout = RunLayout.of(identity)
        self.frames_dir = scratch / "frames_dir"
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
        self.steps = StepRunner(
            identity, recorder, self.writer, self.sampler, progress or (lambda component, status: None)
        )
        self.streaming: StreamingSegment | None = None
        self._waiting: set[str] = set()  # early components done computing, waiting for the segmenter
        self.ctx = RunContext(
            identity=identity,
            store=self.store,
            layout=self.layout,
            source_info=source.info,
            policy=request.policy,
            dependency_reader=self._read_dependency,
            services=request.services,
        )

    @property
    def records(self) -> dict[str, ComponentRecord]:
        return self.steps.records

    # -- top level -------------------------------------------------------------------------
    def execute(self) -> RunOutcome:
        log_event(
            logger, "run_started", **self.steps.ids(), profile=self.profile.name, resumed=self.reuse.resuming
        )
        with self.sampler:
            try:
                self.reuse.plan(self.profile, self.recorder)
                if self.reuse.resuming:
                    faults.crash_point("during_resume", "planned")
                self.writer.write()
                if self.reuse.all_reusable(self.profile, self.request.policy.keep_frames):
                    self.steps.reuse("segmenter")
                elif self.reuse.reusable - {"segmenter"}:
                    # A resume that keeps components: their check against the re-run segmenter
                    # (check_segmenter) must come before anything starts, so nothing streams.
                    self._run_segmenter()
                    self.reuse.check_segmenter(self.records.get("segmenter"), self.recorder)
                else:
                    self._run_streaming()
                if self._failure() is None and self.streaming is None:
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
            **self.steps.ids(),
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
            resumed=self.reuse.resuming,
            state_overhead_sec=self.recorder.overhead_sec,
        )

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

    # -- the segmenter ---------------------------------------------------------------------
    def _run_segmenter(self) -> None:
        step = StepSpec.of_segmenter(self.profile.components["segmenter"])
        self.steps.run(step, self._segment)

    def _run_streaming(self) -> None:
        """The segmenter in its own thread, the components beside it (docs/orchestrator.md)."""
        consumers = stream_consumers(self.profile, self.reuse.reusable)
        late_readers = any(
            spec.sampling is not None and name not in consumers
            for name, spec in self.profile.components.items()
        )
        keep_file = self.request.policy.keep_frames or late_readers
        timeout = self.profile.analysis.max_duration_sec * 6 + 600
        self.streaming = StreamingSegment(self.ctx, self.frames_dir, consumers, keep_file, timeout)
        errors: list[BaseException] = []
        thread = threading.Thread(target=self._segmenter_thread, args=(errors,), name="segmenter")
        thread.start()
        try:
            self._run_components()
        finally:
            thread.join()
        if errors:
            raise errors[0]

    def _segmenter_thread(self, errors: list[BaseException]) -> None:
        assert self.streaming is not None
        ok = False
        try:
            self._run_segmenter()
            record = self.records.get("segmenter")
            ok = record is not None and record.status == "ok"
        except BaseException as exc:  # re-raised by the scheduler's thread
            errors.append(exc)
        finally:
            self.streaming.segmenter_finished(ok, self.ctx.metadata if ok else None)

    def _segment(self) -> dict[str, Any]:
        result = segment(self.source, self.identity, self.profile, self.frames_dir, self.streaming)
        metadata: FramesMetadata = getattr(result, "metadata", result)
        warnings = list(getattr(result, "warnings", []))
        fields = store_metadata(self.store, self.layout, metadata, warnings)
        self.ctx.metadata = metadata
        for warning in warnings:  # damaged media: said at run level too (docs/segmenter.md)
            if warning.startswith(RUN_WARNING_PREFIX):
                self.writer.add_warning(warning)
        if not isinstance(self.ctx.frames, StreamFrames):
            self.ctx.frames = FrameStore(self.frames_dir, metadata)
        self.ctx.audio_loader = lambda: load_audio(self.frames_dir, metadata)
        return fields

    # -- the components --------------------------------------------------------------------
    def _run_components(self) -> None:
        """Dependency order. In a streaming run the segmenter's record may still be missing: the
        stream's readers start when the plan is made, the other components that read no frames
        when the audio is extracted; the stream's readers run in a pool of their own (all at once:
        one left waiting would block the decoder on its full queue)."""
        workers = self.profile.analysis.workers
        pending = [n for n in self.profile.order if n != "segmenter"]
        running: dict[Future[ComponentRecord], str] = {}
        readers = self.streaming.consumers if self.streaming is not None else []
        # Beside a decoder the components yield to it: on a busy core its frame threads stall the
        # whole run, while a component behind by a few frames has its queue (docs/orchestrator.md).
        nice = self.profile.analysis.component_nice if self.streaming is not None else 0
        with (
            # Threads beyond `workers` only ever wait (for the segmenter's record), never compute.
            ThreadPoolExecutor(
                max_workers=max(workers, len(pending)),
                thread_name_prefix="comp",
                initializer=lower_thread_priority,
                initargs=(nice,),
            ) as pool,
            ThreadPoolExecutor(
                max_workers=max(1, len(readers)),
                thread_name_prefix="stream",
                initializer=lower_thread_priority,
                initargs=(nice,),
            ) as streams,
        ):
            while pending or running:
                if self._failure() is not None:
                    for name in pending:
                        self._not_run(name, {"status": "skipped", "warnings": [_STOPPED]})
                    pending = []
                busy = sum(1 for n in running.values() if n not in readers and n not in self._waiting)
                for name in list(pending):
                    if not self._ready(name):
                        continue
                    deps = self.profile.components[name].depends_on
                    bad = [
                        d for d in deps if d in self.records and self.records[d].status not in ("ok", "empty")
                    ]
                    if name in self.reuse.reusable and not bad:
                        pending.remove(name)
                        self.steps.reuse(name)
                    elif "segmenter" in bad:  # it failed between this loop's checks: stopped, as above
                        pending.remove(name)
                        self._not_run(name, {"status": "skipped", "warnings": [_STOPPED]})
                    elif bad:
                        pending.remove(name)
                        self._dependency_failed(name, bad)
                    elif name in readers:
                        pending.remove(name)
                        running[streams.submit(self._run_component, name)] = name
                    elif busy < workers:
                        pending.remove(name)
                        running[pool.submit(self._run_component, name)] = name
                        busy += 1
                segmenter_running = self.streaming is not None and not self.streaming.done.is_set()
                if running or segmenter_running:
                    done, _ = wait(running, timeout=0.05 if pending else None, return_when=FIRST_COMPLETED)
                    for future in done:
                        running.pop(future)
                        future.result()  # the step records its own failures
                elif pending:
                    raise TrendFlowError(ErrorCode.INTERNAL, f"components never became ready: {pending}")

    def _ready(self, name: str) -> bool:
        spec = self.profile.components[name]
        for dep in spec.depends_on:
            if dep in self.records:
                continue
            early = dep == "segmenter" and self.streaming is not None
            if not (early and self.streaming.may_start(name, spec.sampling is not None)):  # type: ignore[union-attr]
                return False
        return True

    def _step(self, name: str) -> StepSpec:
        return StepSpec.of_component(self.profile.components[name], component_class(name))

    def _run_component(self, name: str) -> ComponentRecord:
        spec = self.profile.components[name]
        step = self._step(name)

        def work() -> dict[str, Any]:
            component = component_class(name)
            early = self.streaming is not None and not self.streaming.done.is_set()
            for _ in range(_MAX_ATTEMPTS):
                try:
                    output = run_halving(spec, lambda s: component(s).run(self.ctx), self._halved(name))
                    if early and self.streaming is not None:
                        self._waiting.add(name)  # frees its worker slot while it waits
                        try:
                            self.streaming.wait_segmenter(name)
                        finally:
                            self._waiting.discard(name)
                except StreamRestarted:
                    continue  # a replay pass: read the stream again from its start
                return store_output(self.store, self.identity, self.request.policy, step, component, output)
            raise TrendFlowError(ErrorCode.INTERNAL, f"{name}: the frame stream restarted too often")

        try:
            return self.steps.run(step, work)
        finally:
            # A reader that stopped for any reason (done, failed, or its step failed before
            # `work` read a frame: a full store refuses the journal entry) is dropped, or the
            # decoder would wait on its full queue until the run's deadline.
            if self.streaming is not None:
                self.streaming.drain(name)

    def _halved(self, name: str) -> Callable[[int, int, str], None]:
        def note(old: int, new: int, why: str) -> None:
            rss = self.sampler.current_mb()
            self.recorder.batch_halved(name, old, new, rss, why)
            log_event(logger, "batch_halved", **self.steps.ids(), component=name, batch_size=new, rss_mb=rss)

        return note

    def _not_run(self, name: str, fields: dict[str, Any]) -> None:
        """Record `name` without running it. A stream reader that never runs is drained first:
        the decoder would otherwise wait on its full queue until the run's deadline."""
        if self.streaming is not None:
            self.streaming.drain(name)
        self.steps.not_run(self._step(name), fields)

    def _dependency_failed(self, name: str, bad: list[str]) -> None:
        message = f"dependency {', '.join(bad)} did not succeed; component not run"
        fields = {"status": "error", "error_code": ErrorCode.DEPENDENCY_MISSING, "error": message}
        self._not_run(name, fields)
        if not self.profile.components[name].required:
            self.writer.add_warning(f"optional component {name} not run: {message}")

    def _read_dependency(self, name: str) -> tuple[dict[str, np.ndarray], NpzMeta]:
        """Through the state chain: the asking component's Level 3 -> Level 2 -> `name`'s Level 3."""
        state = self.recorder.dependency(current_component(), name)
        if state.status not in ("ok", "empty") or not state.artifacts:
            raise TrendFlowError(ErrorCode.DEPENDENCY_MISSING, f"dependency {name} has no valid artifact")
        return read_npz(self.store, self.layout.path(state.artifacts[0].path))

    def _keep_or_drop_frames(self) -> None:
        frames = self.ctx.frames
        if frames is None:
            return
        segmented = self.records.get("segmenter")
        if self.request.policy.keep_frames and self.ctx.metadata is not None and segmented is not None:
            frames_file = self.frames_dir / self.ctx.metadata.frames_file
            if segmented.status == "ok" and frames_file.exists():
                self.store.put_file(
                    str(frames_file), self.layout.path("frames_dir", self.ctx.metadata.frames_file)
                )
        if isinstance(frames, StreamFrames):
            frames.delete(self.ctx.metadata)
        else:
            frames.delete()


_STOPPED = STOPPED
_MAX_ATTEMPTS = 4  # a streaming component runs again after a replay pass, at most this often
