"""Durable run state (SPEC 10): three levels of state files, an event journal, crash recovery.

Level 1 `GlobalStateManager` (store-wide index), Level 2 `RunStateManager` (one run),
Level 3 `ProcessorStateManager` (one processor's components). `RunRecorder` is what the
orchestrator calls. See docs/contracts.md, section "State files".
"""

from trendflow.dataprocessor.state.global_state import GlobalStateManager
from trendflow.dataprocessor.state.journal import EventDraft, Journal, read_journal
from trendflow.dataprocessor.state.managers import (
    ProcessorStateManager,
    RecoveryReport,
    RunStateManager,
    StateSettings,
)
from trendflow.dataprocessor.state.models import (
    ComponentState,
    GlobalState,
    ProcessorState,
    RunEntry,
    RunState,
    StateEvent,
)
from trendflow.dataprocessor.state.recorder import RunRecorder, verify_artifacts

__all__ = [
    "ComponentState",
    "EventDraft",
    "GlobalState",
    "GlobalStateManager",
    "Journal",
    "ProcessorState",
    "ProcessorStateManager",
    "RecoveryReport",
    "RunEntry",
    "RunRecorder",
    "RunState",
    "RunStateManager",
    "StateEvent",
    "StateSettings",
    "read_journal",
    "verify_artifacts",
]
