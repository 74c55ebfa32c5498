"""One step of a run, the segmenter or a component alike: measure it, map its exceptions to
error codes, and record the outcome (journal, then manifest, then progress and the log).

A step's work returns the record fields of its success (status, artifacts, ...); whatever it
raises becomes an `error` record with a SPEC error code, never an exception out of the run.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.identity import RunIdentity, utc_now
from trendflow.contracts.manifest import ComponentRecord
from trendflow.contracts.npz_meta import Producer
from trendflow.contracts.versions import dataprocessor_version
from trendflow.dataprocessor.frame_stream import (
    StreamStopped,
    reset_current_component,
    set_current_component,
)
from trendflow.dataprocessor.graph import ResolvedComponent
from trendflow.dataprocessor.manifest_writer import ManifestWriter
from trendflow.dataprocessor.resources import Measurement, RssSampler, measure
from trendflow.dataprocessor.run.request import ProgressCallback
from trendflow.dataprocessor.state import RunRecorder, faults
from trendflow.events import log_event

logger = logging.getLogger(__name__)
PRODUCER = "trendflow.dataprocessor"
StepWork = Callable[[], dict[str, Any]]


@dataclass(frozen=True)
class StepSpec:
    """Who a step is: the resolved component and the producer its records and NPZ name."""

    spec: ResolvedComponent
    producer: Producer
    schema_version: str

    @property
    def name(self) -> str:
        return self.spec.name

    @classmethod
    def of_component(cls, spec: ResolvedComponent, component: type) -> StepSpec:
        version = f"{component.version}+{dataprocessor_version()}"
        producer = Producer(name=f"{PRODUCER}.{component.name}", version=version)
        return cls(spec=spec, producer=producer, schema_version=component.schema_version)

    @classmethod
    def of_segmenter(cls, spec: ResolvedComponent) -> StepSpec:
        producer = Producer(name="trendflow.segmenter", version=dataprocessor_version())
        return cls(spec=spec, producer=producer, schema_version="1.0.0")


def error_fields(exc: BaseException, sampler: RssSampler, name: str) -> tuple[dict[str, Any], float | None]:
    """An exception -> the record fields of its error and, for an out-of-memory, the RSS seen."""
    if isinstance(exc, StreamStopped):  # the segmenter failed under a streaming component: not run
        return {"status": "skipped", "warnings": [str(exc)]}, None
    if isinstance(exc, TrendFlowError):
        return {"status": "error", "error_code": exc.code, "error": exc.message}, None
    if isinstance(exc, MemoryError):
        rss = sampler.current_mb()
        return {
            "status": "error",
            "error_code": ErrorCode.OUT_OF_MEMORY,
            "error": f"{name} ran out of memory (process RSS {rss:.0f} MB)",
        }, rss
    if isinstance(exc, subprocess.CalledProcessError):
        # A child killed by SIGKILL is what the kernel's OOM killer leaves behind.
        killed = exc.returncode in (-signal.SIGKILL, 128 + signal.SIGKILL)
        rss = sampler.current_mb() if killed else None
        return {
            "status": "error",
            "error_code": ErrorCode.OUT_OF_MEMORY if killed else ErrorCode.COMPONENT_FAILED,
            "error": f"child process {exc.cmd!r} exited with {exc.returncode}"
            + (f" (killed; process RSS {rss:.0f} MB)" if killed else ""),
        }, rss
    logger.error("%s failed:\n%s", name, "".join(traceback.format_exception(exc)))
    return {
        "status": "error",
        "error_code": ErrorCode.COMPONENT_FAILED,
        "error": f"{type(exc).__name__}: {exc}",
    }, None


class StepRunner:
    """Runs and records steps for one run; `records` is what the scheduler decides on."""

    def __init__(
        self,
        identity: RunIdentity,
        recorder: RunRecorder,
        writer: ManifestWriter,
        sampler: RssSampler,
        progress: ProgressCallback,
    ) -> None:
        self.identity = identity
        self.recorder = recorder
        self.writer = writer
        self.sampler = sampler
        self.progress = progress
        self.records: dict[str, ComponentRecord] = {}

    def ids(self) -> dict[str, str]:
        return {"run_id": self.identity.run_id, "video_id": self.identity.video_id}

    def run(self, step: StepSpec, work: StepWork) -> ComponentRecord:
        """Measure `work`, turn what it raises into an error record, record the outcome."""
        started = utc_now()
        self.progress(step.name, "running")
        token = set_current_component(step.name)
        try:
            self.recorder.started(step.name)
            faults.crash_point("before_component", step.name)
            oom_rss: float | None = None
            with measure(self.sampler) as m:
                try:
                    fields = work()
                except Exception as exc:  # every failure becomes a record (SPEC error codes)
                    fields, oom_rss = error_fields(exc, self.sampler, step.name)
        finally:
            reset_current_component(token)
        if fields["status"] == "error" and not step.spec.required:
            self.writer.add_warning(f"optional component {step.name} failed: {fields['error']}")
        return self.record(step, fields, started, m, oom_rss)

    def not_run(self, step: StepSpec, fields: dict[str, Any]) -> ComponentRecord:
        """A step decided without running it (skipped, a dependency failed)."""
        return self.record(step, fields, utc_now(), None)

    def reuse(self, name: str) -> ComponentRecord:
        """A step whose valid artifact a resume keeps."""
        record = self.recorder.reused(name)
        self._publish(record)
        log_event(logger, "component_reused", **self.ids(), component=name, status=record.status)
        return record

    def record(
        self,
        step: StepSpec,
        fields: dict[str, Any],
        started: Any,
        m: Measurement | None,
        oom_rss_mb: float | None = None,
    ) -> ComponentRecord:
        spec = step.spec
        record = ComponentRecord(
            name=spec.name,
            processor=spec.processor,
            required=spec.required,
            producer=step.producer,
            schema_version=step.schema_version,
            started_at=started,
            finished_at=utc_now(),
            duration_sec=round(m.wall_sec, 4) if m else 0.0,
            cpu_time_sec=round(m.cpu_sec, 4) if m else 0.0,
            peak_rss_mb=round(m.peak_rss_mb, 1) if m else None,
            **fields,
        )
        self.recorder.finished(record, oom_rss_mb=oom_rss_mb)  # the journal first: what a resume trusts
        faults.crash_point("after_component", spec.name)
        record = self.recorder.record_of(spec.name)  # the manifest is written from the state
        self._publish(record)
        log_event(
            logger,
            "component_finished",
            **self.ids(),
            component=spec.name,
            status=record.status,
            error_code=record.error_code,
            duration_sec=record.duration_sec,
        )
        return record

    def _publish(self, record: ComponentRecord) -> None:
        self.records[record.name] = record
        self.writer.record_component(record)
        self.progress(record.name, record.status)
