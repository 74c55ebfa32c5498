"""The state files of SPEC section 10, as pydantic models, and the journal's event record.

Level 1 `state_level1_global.json` (one per result store): every run known, its status, counts.
Level 2 `run_state.json` (one per run): processors and their status, retry count, error code.
Level 3 `state_<processor>.json` (one per processor of a run): one section per component.
There is no Level 4. Each checkpoint file carries `last_seq`, the sequence number of the last
journal event it already contains, so recovery replays only what came after it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from trendflow.contracts.errors import ErrorCode
from trendflow.contracts.identity import RunIdentity
from trendflow.contracts.manifest import ArtifactRef, ComponentRecord, Processor
from trendflow.contracts.npz_meta import ModelUsed, Producer
from trendflow.contracts.versions import STATE_SCHEMA_VERSION

StateLevel = Literal[1, 2, 3]
ComponentStateStatus = Literal["pending", "running", "ok", "empty", "error", "skipped"]
ProcessorStateStatus = Literal["pending", "running", "ok", "error", "skipped"]
RunStateStatus = Literal["running", "success", "error"]
DONE_STATUSES = frozenset({"ok", "empty", "error", "skipped"})
VALID_STATUSES = frozenset({"ok", "empty"})

# Every event the journal may hold, by level. Unknown names are rejected on write and on read.
EVENTS_BY_LEVEL: dict[int, frozenset[str]] = {
    1: frozenset({"run_indexed"}),
    2: frozenset(
        {
            "run_started",
            "run_resumed",
            "processor_status",
            "run_finished",
            "cache_hit",
            "retry",
            "warning",
            "orphan_removed",
        }
    ),
    3: frozenset(
        {
            "component_started",
            "component_finished",
            "component_reused",
            "artifact_invalid",
            "out_of_memory",
            "batch_halved",
        }
    ),
}
EventName = Literal[
    "run_indexed",
    "run_started",
    "run_resumed",
    "processor_status",
    "run_finished",
    "cache_hit",
    "retry",
    "warning",
    "orphan_removed",
    "component_started",
    "component_finished",
    "component_reused",
    "artifact_invalid",
    "out_of_memory",
    "batch_halved",
]


class StateEvent(BaseModel):
    """One line of `state_events.jsonl` (or of one S3 journal segment)."""

    model_config = ConfigDict(extra="forbid")

    seq: int = Field(ge=0, description="Position in the run's journal; strictly increasing.")
    ts: datetime = Field(description="UTC time the event was appended.")
    level: StateLevel
    subject: str = Field(
        description="Level 1: '<platform>/<video>/<run_id>'; level 2: 'run'; "
        "level 3: '<processor>/<component>'."
    )
    event: EventName
    payload: dict[str, Any] = Field(default_factory=dict)


# -- Level 3 ------------------------------------------------------------------------------------
class ComponentState(BaseModel):
    """One component's section of a Level 3 file: what the scheduler and a resume need."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    status: ComponentStateStatus = "pending"
    required: bool = True
    error_code: ErrorCode | None = None
    error: str | None = None
    empty_reason: str | None = None
    artifacts: list[ArtifactRef] = Field(default_factory=list, description="Paths relative to the run dir.")
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_sec: float | None = Field(None, description="Wall time.")
    cpu_time_sec: float | None = None
    peak_rss_mb: float | None = None
    units_processed: int | None = None
    batch_sizes: list[int] = Field(default_factory=list)
    oom_rss_mb: float | None = Field(None, description="Process RSS when an out-of-memory was seen.")
    oom_retries: int = Field(0, ge=0, description="Out-of-memory retries with a halved batch.")
    attempts: int = Field(0, ge=0, description="How many times the component was started.")
    reused: bool = Field(False, description="Kept from an earlier attempt after its sha256 matched.")
    device_used: str = "cpu"
    warnings: list[str] = Field(default_factory=list)
    producer: Producer | None = None
    schema_version: str | None = None
    models_used: list[ModelUsed] = Field(default_factory=list)
    model_signature: str | None = None
    updated_at: datetime | None = None

    def to_record(self, name: str, processor: Processor) -> ComponentRecord:
        """The manifest record of a finished component (used when a resume reuses it)."""
        if self.status not in DONE_STATUSES or self.producer is None or self.schema_version is None:
            raise ValueError(f"component {name} has not finished (status {self.status})")
        return ComponentRecord(
            name=name,
            processor=processor,
            required=self.required,
            status=self.status,  # type: ignore[arg-type]
            error_code=self.error_code,
            error=self.error,
            empty_reason=self.empty_reason,
            device_used=self.device_used,
            warnings=self.warnings,
            artifacts=self.artifacts,
            started_at=self.started_at,
            finished_at=self.finished_at,
            duration_sec=self.duration_sec,
            cpu_time_sec=self.cpu_time_sec,
            peak_rss_mb=self.peak_rss_mb,
            units_processed=self.units_processed,
            batch_sizes=self.batch_sizes,
            producer=self.producer,
            schema_version=self.schema_version,
            models_used=self.models_used,
            model_signature=self.model_signature,
        )


class ProcessorState(BaseModel):
    """`state_<processor>.json`: Level 3, one section per component of that processor."""

    model_config = ConfigDict(extra="forbid")

    schema_version: str = STATE_SCHEMA_VERSION
    level: Literal[3] = 3
    run_id: str
    processor: Processor
    last_seq: int = Field(-1, ge=-1, description="Last journal event this checkpoint contains.")
    updated_at: datetime | None = None
    components: dict[str, ComponentState] = Field(default_factory=dict)


# -- Level 2 ------------------------------------------------------------------------------------
class ProcessorSummary(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    status: ProcessorStateStatus = "pending"
    components: list[str] = Field(default_factory=list, description="In execution order.")
    optional: list[str] = Field(default_factory=list, description="Components the profile marks optional.")
    counts: dict[str, int] = Field(default_factory=dict, description="Components by status.")


class RunState(BaseModel):
    """`run_state.json`: Level 2, one run."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    schema_version: str = STATE_SCHEMA_VERSION
    level: Literal[2] = 2
    run: RunIdentity
    profile: str
    status: RunStateStatus = "running"
    error_code: ErrorCode | None = None
    error: str | None = None
    retry_count: int = Field(0, ge=0, description="Deliveries of the job after the first (queue retries).")
    attempt: int = Field(1, ge=1, description="Executions of this run: 1 + resumes.")
    cache_hits: int = Field(0, ge=0)
    source: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict,
        description="How to obtain the video again (kind, uri) and digests of the video and of "
        "its metadata sidecar; never raw text.",
    )
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    duration_sec: float | None = None
    peak_rss_mb: float | None = None
    last_seq: int = Field(-1, ge=-1)
    processors: dict[str, ProcessorSummary] = Field(default_factory=dict)

    def processor_of(self, component: str) -> str:
        for name, summary in self.processors.items():
            if component in summary.components:
                return name
        raise KeyError(component)


# -- Level 1 ------------------------------------------------------------------------------------
class RunEntry(BaseModel):
    """One run as the store-wide index knows it; written by the run's own process only."""

    model_config = ConfigDict(extra="forbid")

    platform_id: str
    video_id: str
    run_id: str
    config_hash: str
    profile: str
    status: RunStateStatus
    error_code: ErrorCode | None = None
    error_reason: str | None = Field(
        None, description="Machine-readable detail of error_code (e.g. `private` for source_unavailable)."
    )
    retry_count: int = 0
    attempt: int = Field(1, ge=0, description="Executions of this run; 0: rejected before it started.")
    created_at: datetime
    updated_at: datetime
    revision: int = Field(0, ge=0, description="Increases with every update of this entry.")

    @property
    def key(self) -> str:
        return f"{self.platform_id}/{self.video_id}/{self.run_id}"


class GlobalState(BaseModel):
    """`state_level1_global.json`: Level 1, every run known to one result store."""

    model_config = ConfigDict(extra="forbid")

    schema_version: str = STATE_SCHEMA_VERSION
    level: Literal[1] = 1
    updated_at: datetime | None = None
    runs: dict[str, RunEntry] = Field(
        default_factory=dict, description="'<platform>/<video>/<run_id>' -> entry."
    )
    counts: dict[str, int] = Field(default_factory=dict, description="Runs by status.")

    def recount(self) -> GlobalState:
        counts: dict[str, int] = {}
        for entry in self.runs.values():
            counts[entry.status] = counts.get(entry.status, 0) + 1
        self.counts = dict(sorted(counts.items()))
        return self
