"""The types callers of the orchestrator see: what to process, and what came of it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.identity import RunIdentity
from trendflow.contracts.manifest import Manifest, ResolvedModel
from trendflow.dataprocessor.component import PrivacyPolicy
from trendflow.dataprocessor.graph import Profile
from trendflow.dataprocessor.services import Services
from trendflow.dataprocessor.state import StateSettings
from trendflow.storage.store import ResultStore

ProgressCallback = Callable[[str, str], None]  # (component, status)
ModelResolver = Callable[[Profile], dict[str, ResolvedModel]]


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
    services: Services = field(default_factory=Services)
    model_resolver: ModelResolver | None = None
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

    @classmethod
    def failed(cls, exc: TrendFlowError, **fields: Any) -> RunOutcome:
        """An outcome for an error raised before or around the run's work."""
        return cls(status="error", error_code=exc.code, error=exc.message, error_reason=exc.reason, **fields)

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
