"""`manifest.json`: the record of one run (SPEC section 8)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from trendflow.contracts.errors import ErrorCode
from trendflow.contracts.identity import RunIdentity
from trendflow.contracts.npz_meta import ModelUsed, Producer
from trendflow.contracts.versions import MANIFEST_SCHEMA_VERSION

Processor = Literal["segmenter", "visual", "audio", "text"]
ComponentStatus = Literal["ok", "empty", "error", "skipped"]
RunStatus = Literal["running", "success", "error"]


class ArtifactRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="Path relative to the run directory.")
    sha256: str
    bytes: int = Field(ge=0)


class ProfileComponent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    processor: Processor
    required: bool


class ProfileInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    components: list[ProfileComponent]


class ResolvedModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_name: str
    model_version: str
    weights_digest: str
    engine: str
    precision: str
    device_policy: str


class ComponentRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    processor: Processor
    required: bool
    status: ComponentStatus
    error_code: ErrorCode | None = None
    error: str | None = None
    empty_reason: str | None = None
    device_used: str = "cpu"
    warnings: list[str] = Field(default_factory=list)
    artifacts: list[ArtifactRef] = Field(default_factory=list)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_sec: float | None = None
    cpu_time_sec: float | None = None
    peak_rss_mb: float | None = None
    units_processed: int | None = None
    batch_sizes: list[int] = Field(
        default_factory=list, description="Sizes of the batches the component processed (scheduler feedback)."
    )
    producer: Producer
    schema_version: str
    models_used: list[ModelUsed] = Field(default_factory=list)
    model_signature: str | None = None

    @model_validator(mode="after")
    def _error_has_code(self) -> ComponentRecord:
        if self.status == "error" and self.error_code is None:
            raise ValueError(f"component {self.name}: status 'error' requires error_code")
        if self.status == "empty" and not self.empty_reason:
            raise ValueError(f"component {self.name}: status 'empty' requires empty_reason")
        return self


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: str = MANIFEST_SCHEMA_VERSION
    run: RunIdentity
    profile: ProfileInfo
    resolved_models: dict[str, ResolvedModel] = Field(default_factory=dict)
    status: RunStatus
    error_code: ErrorCode | None = None
    error: str | None = None
    error_reason: str | None = Field(
        None, description="A finer cause within error_code, e.g. `private` for source_unavailable."
    )
    retry_count: int = Field(0, ge=0)
    warnings: list[str] = Field(default_factory=list)
    source: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict, description="Where the video came from (kind, uri); never raw text."
    )
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    duration_sec: float | None = None
    peak_rss_mb: float | None = None
    components: list[ComponentRecord] = Field(default_factory=list)

    @model_validator(mode="after")
    def _error_has_code(self) -> Manifest:
        if self.status == "error" and self.error_code is None:
            raise ValueError("run status 'error' requires error_code")
        return self

    def component(self, name: str) -> ComponentRecord | None:
        return next((c for c in self.components if c.name == name), None)
