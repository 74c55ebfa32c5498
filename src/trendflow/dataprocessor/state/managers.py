"""Level 2 (`RunStateManager`) and Level 3 (`ProcessorStateManager`) state of one run.

Every change is an event: appended to the journal first (durable when `append` returns), then
applied to the in-memory state with the reducers, and every `checkpoint_every` events (and at
the end) the state files are rewritten atomically, each with `last_seq`: the journal position it
reflects. Recovery = each file's checkpoint + replay of the journal events after its `last_seq`.

The managers form a chain: a Level 3 manager asks the Level 2 manager for another component's
state, and Level 2 asks the Level 3 manager of that component's processor (L3 -> L2 -> L3).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.identity import RunIdentity, utc_now
from trendflow.dataprocessor.state import faults
from trendflow.dataprocessor.state.global_state import GlobalStateManager
from trendflow.dataprocessor.state.journal import EventDraft, Journal, JournalContents, read_journal
from trendflow.dataprocessor.state.models import (
    ComponentState,
    ProcessorState,
    ProcessorSummary,
    RunEntry,
    RunState,
    StateEvent,
)
from trendflow.dataprocessor.state.reducers import (
    apply_processor_event,
    apply_run_event,
    component_of,
    next_component_status,
    summarize,
)
from trendflow.storage.layout import RUN_STATE, RunLayout
from trendflow.storage.store import ResultStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StateSettings:
    """fsync: durability of every journal append (off only to measure its cost);
    checkpoint_every: journal events between two checkpoints of the state files."""

    fsync: bool = True
    checkpoint_every: int = 50
    compact_global: bool = True

    @classmethod
    def from_env(cls) -> StateSettings:
        return cls(
            fsync=os.environ.get("TRENDFLOW_STATE_FSYNC", "1") not in ("0", "false", "no"),
            checkpoint_every=max(1, int(os.environ.get("TRENDFLOW_STATE_CHECKPOINT_EVERY", "50"))),
            compact_global=os.environ.get("TRENDFLOW_STATE_COMPACT_GLOBAL", "1") not in ("0", "false", "no"),
        )


@dataclass
class RecoveryReport:
    """What recovery found; journaled with `run_resumed` so the journal tells what happened."""

    checkpoint_seq: int  # last_seq of run_state.json (-1: no checkpoint)
    replayed: int  # events applied on top of the checkpoints
    last_seq: int
    torn_bytes: int
    segments: int

    def as_payload(self) -> dict[str, int]:
        return dict(self.__dict__)


class ProcessorStateManager:
    """Level 3: the components of one processor (`state_<processor>.json`)."""

    def __init__(self, run: RunStateManager, state: ProcessorState) -> None:
        self._run = run
        self.state = state

    @property
    def processor(self) -> str:
        return self.state.processor

    @property
    def path(self) -> str:
        return self._run.layout.state_file(self.processor)

    def component(self, name: str) -> ComponentState:
        if name not in self.state.components:
            raise KeyError(f"{name} is not a component of processor {self.processor}")
        with self._run.lock:
            return self.state.components[name].model_copy(deep=True)

    def dependency(self, name: str) -> ComponentState:
        """Another component's state, through Level 2 (which asks that component's Level 3)."""
        return self._run.component_state(name)

    def _subject(self, name: str) -> str:
        if name not in self.state.components:
            raise KeyError(f"{name} is not a component of processor {self.processor}")
        return f"{self.processor}/{name}"

    def started(self, name: str) -> None:
        required = self.state.components[name].required if name in self.state.components else True
        # Not fsynced on its own: recovery is the same with or without it (a running component is
        # recomputed like a pending one); the component's outcome, synced, makes it durable.
        self._run.emit(
            [EventDraft(3, self._subject(name), "component_started", {"required": required})], sync=False
        )

    def finished(self, name: str, outcome: ComponentState, oom_rss_mb: float | None = None) -> None:
        payload = outcome.model_dump(
            mode="json", exclude={"attempts", "oom_rss_mb", "oom_retries", "updated_at"}
        )
        drafts = [EventDraft(3, self._subject(name), "component_finished", payload)]
        if oom_rss_mb is not None:
            drafts.insert(
                0,
                EventDraft(
                    3,
                    self._subject(name),
                    "out_of_memory",
                    {"rss_mb": oom_rss_mb, "peak_rss_mb": outcome.peak_rss_mb, "error": outcome.error},
                ),
            )
        self._run.emit(drafts)

    def batch_halved(self, name: str, old: int, new: int, rss_mb: float | None, error: str) -> None:
        payload = {"batch_size": old, "next_batch_size": new, "rss_mb": rss_mb, "error": error}
        self._run.emit([EventDraft(3, self._subject(name), "batch_halved", payload)])

    def reused(self, name: str, verified: str) -> None:
        self._run.emit([EventDraft(3, self._subject(name), "component_reused", {"verified": verified})])

    def invalid(self, name: str, problems: list[dict[str, Any]]) -> None:
        self._run.emit([EventDraft(3, self._subject(name), "artifact_invalid", {"problems": problems})])

    def apply(self, event: StateEvent) -> None:
        apply_processor_event(self.state, event)

    def checkpoint(self, position: int) -> None:
        self.state.last_seq = position
        self._run.store.write_bytes(self.path, self.state.model_dump_json(indent=1).encode())


class RunStateManager:
    """Level 2: one run. Owns the journal and the Level 3 managers of the run's processors."""

    def __init__(
        self,
        store: ResultStore,
        layout: RunLayout,
        state: RunState,
        processors: dict[str, ProcessorState],
        journal: Journal | None,
        settings: StateSettings,
    ) -> None:
        self.store = store
        self.layout = layout
        self.state = state
        self.settings = settings
        self.journal = journal
        self.global_state = GlobalStateManager(store)
        self.processors = {name: ProcessorStateManager(self, ps) for name, ps in processors.items()}
        self.lock = threading.RLock()
        self._since_checkpoint = 0
        self.checkpoints_written = 0
        # The last journal event applied (or skipped as irrelevant) to this state.
        self.position = max([state.last_seq, *(p.last_seq for p in processors.values())])

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        store: ResultStore,
        identity: RunIdentity,
        profile: str,
        components: list[tuple[str, str, bool]],
        source: dict[str, Any],
        retry_count: int = 0,
        settings: StateSettings | None = None,
    ) -> RunStateManager:
        """Start the state of a new run: `run_started` and its Level 1 entry. The first checkpoint
        comes after `checkpoint_every` events: until then the journal alone is the state."""
        settings = settings or StateSettings()
        layout = RunLayout.of(identity)
        if read_journal(store, layout.run_dir).last_seq >= 0:
            raise TrendFlowError(
                ErrorCode.INVALID_REQUEST,
                f"run {layout.run_dir} already has state; resume it (--resume) or use a new run id",
            )
        now = utc_now()
        summaries: dict[str, ProcessorSummary] = {}
        for name, processor, required in components:
            summary = summaries.setdefault(processor, ProcessorSummary())
            summary.components.append(name)
            if not required:
                summary.optional.append(name)
        state = RunState(
            run=identity,
            profile=profile,
            retry_count=retry_count,
            source=source,
            started_at=now,
            updated_at=now,
            processors=summaries,
        )
        journal = Journal(store, layout.run_dir, next_seq=0, fsync=settings.fsync)
        manager = cls(store, layout, state, _initial_processors(state), journal, settings)
        manager.emit([EventDraft(2, "run", "run_started", state.model_dump(mode="json"))])
        manager.index()
        return manager

    @classmethod
    def recover(
        cls,
        store: ResultStore,
        layout: RunLayout,
        settings: StateSettings | None = None,
        writable: bool = False,
    ) -> tuple[RunStateManager, RecoveryReport]:
        """Rebuild the state after a crash: checkpoints + replay. Read-only unless `writable`."""
        settings = settings or StateSettings()
        state = _read_model(store, layout.path(RUN_STATE), RunState)
        checkpoints: dict[str, ProcessorState | None] = {}
        oldest = -1
        if state is not None:
            checkpoints = {
                n: _read_model(store, layout.state_file(n), ProcessorState) for n in state.processors
            }
            # Events every checkpoint already contains are not validated again (see read_journal).
            oldest = min([state.last_seq, *(p.last_seq if p else -1 for p in checkpoints.values())])
        contents = read_journal(store, layout.run_dir, after_seq=oldest)
        checkpoint_seq = state.last_seq if state is not None else -1
        replayed = 0
        for event in contents.events:  # Level 2 first: it says which processors exist
            if event.level == 2 and event.seq > checkpoint_seq:
                state = apply_run_event(state, event)
                replayed += 1
        if state is None:
            raise TrendFlowError(
                ErrorCode.INVALID_REQUEST,
                f"{store.uri(layout.run_dir)} has no run state (no run_state.json, no run_started event): "
                "it is not a run directory, or the run never started",
            )
        processors = _initial_processors(state)
        for name in processors:
            checkpoint = (
                checkpoints[name] if name in checkpoints
                else _read_model(store, layout.state_file(name), ProcessorState)
            )  # fmt: skip
            if checkpoint is not None:
                processors[name] = checkpoint
        for event in contents.events:
            if event.level == 3:
                target = processors.get(component_of(event)[0])
                if target is not None and event.seq > target.last_seq:
                    apply_processor_event(target, event)
                    replayed += 1
        last_seq = max([contents.last_seq, state.last_seq, *(p.last_seq for p in processors.values())])
        journal = _writer(store, layout, settings, contents, last_seq) if writable else None
        report = RecoveryReport(checkpoint_seq, replayed, last_seq, contents.torn_bytes, contents.segments)
        manager = cls(store, layout, state, processors, journal, settings)
        manager.position = last_seq
        return manager, report

    # -- the chain -------------------------------------------------------------------------------
    def processor(self, name: str) -> ProcessorStateManager:
        return self.processors[name]

    def processor_of(self, component: str) -> ProcessorStateManager:
        try:
            return self.processors[self.state.processor_of(component)]
        except KeyError:
            raise TrendFlowError(ErrorCode.DEPENDENCY_MISSING, f"run has no component {component}") from None

    def component_state(self, name: str) -> ComponentState:
        return self.processor_of(name).component(name)

    # -- Level 2 events --------------------------------------------------------------------------
    def resumed(self, report: RecoveryReport, retry_count: int) -> None:
        payload = {"attempt": self.state.attempt + 1, "retry_count": retry_count, **report.as_payload()}
        self.emit([EventDraft(2, "run", "run_resumed", payload)])
        self.index()

    def retry(self, retry_count: int, error_code: str | None) -> None:
        self.emit([EventDraft(2, "run", "retry", {"retry_count": retry_count, "error_code": error_code})])

    def warning(self, message: str) -> None:
        self.emit([EventDraft(2, "run", "warning", {"message": message})])

    def orphan_removed(self, path: str) -> None:
        self.emit([EventDraft(2, "run", "orphan_removed", {"path": path})])

    def cache_hit(self) -> None:
        self.emit([EventDraft(2, "run", "cache_hit", {"requested_at": utc_now().isoformat()})])

    def finished(
        self,
        status: str,
        error_code: str | None,
        error: str | None,
        duration_sec: float | None,
        peak_rss_mb: float | None,
    ) -> None:
        payload = {
            "status": status,
            "error_code": error_code,
            "error": error,
            "duration_sec": duration_sec,
            "peak_rss_mb": peak_rss_mb,
        }
        self.emit([EventDraft(2, "run", "run_finished", payload)])
        self.index()
        self.checkpoint()
        if self.settings.compact_global:
            self.global_state.compact()

    # -- Level 1 ---------------------------------------------------------------------------------
    def entry(self) -> RunEntry:
        run = self.state.run
        return RunEntry(
            platform_id=run.platform_id,
            video_id=run.video_id,
            run_id=run.run_id,
            config_hash=run.config_hash,
            profile=self.state.profile,
            status=self.state.status,
            error_code=self.state.error_code,
            retry_count=self.state.retry_count,
            attempt=self.state.attempt,
            created_at=run.created_at,
            updated_at=self.state.updated_at,
        )

    def index(self) -> None:
        """Journal the run's Level 1 entry, then publish it to the store-wide index."""
        entry = self.entry()
        self.emit([EventDraft(1, entry.key, "run_indexed", entry.model_dump(mode="json"))])
        self.global_state.put(entry)

    # -- journal + checkpoints -------------------------------------------------------------------
    def emit(self, drafts: list[EventDraft], sync: bool = True) -> list[StateEvent]:
        """Append durably, then apply. A processor's status change rides in the same append."""
        if self.journal is None:
            raise TrendFlowError(ErrorCode.INTERNAL, "state was opened read-only")
        with self.lock:
            drafts = drafts + self._summary_drafts(drafts)
            events = self.journal.append(drafts, sync=sync)
            self.position = events[-1].seq
            for event in events:
                if event.level == 2:
                    self.state = apply_run_event(self.state, event)
                elif event.level == 3:
                    self.processors[component_of(event)[0]].apply(event)
            self._since_checkpoint += len(events)
            if self._since_checkpoint >= self.settings.checkpoint_every:
                self.checkpoint()
            return events

    def _summary_drafts(self, drafts: list[EventDraft]) -> list[EventDraft]:
        statuses: dict[str, dict[str, str]] = {}
        for draft in drafts:
            if draft.level != 3:
                continue
            processor, _, name = draft.subject.partition("/")
            current = statuses.setdefault(
                processor, {n: c.status for n, c in self.processors[processor].state.components.items()}
            )
            probe = StateEvent(
                seq=0, ts=utc_now(), level=3, subject=draft.subject, event=draft.event, payload=draft.payload
            )
            current[name] = next_component_status(current.get(name, "pending"), probe)
        out = []
        for processor, current in statuses.items():
            summary = self.state.processors[processor]
            status, counts = summarize(summary.components, current)
            if (status, counts) != (summary.status, summary.counts):
                out.append(
                    EventDraft(
                        2,
                        "run",
                        "processor_status",
                        {"processor": processor, "status": status, "counts": counts},
                    )
                )
        return out

    def checkpoint(self) -> None:
        """Rewrite every state file atomically (Level 3 first, then Level 2). Each file's
        `last_seq` is the journal position: every event up to it is reflected in the file."""
        with self.lock:
            self.checkpoints_written += 1
            for i, manager in enumerate(self.processors.values()):
                manager.checkpoint(self.position)
                if i == 0:
                    faults.crash_point("mid_checkpoint", self.checkpoints_written)
            self.state.last_seq = self.position
            self.store.write_bytes(self.layout.path(RUN_STATE), self.state.model_dump_json(indent=1).encode())
            self._since_checkpoint = 0

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()


def _initial_processors(state: RunState) -> dict[str, ProcessorState]:
    return {
        name: ProcessorState(
            run_id=state.run.run_id,
            processor=name,  # type: ignore[arg-type]
            components={c: ComponentState(required=c not in s.optional) for c in s.components},
        )
        for name, s in state.processors.items()
    }


def _read_model(store: ResultStore, rel: str, model: type[Any]) -> Any:
    if not store.exists(rel):
        return None
    try:
        return model.model_validate_json(store.read_bytes(rel))
    except (ValidationError, ValueError) as exc:
        # Checkpoints are written atomically, so this is damage from outside: replay instead.
        logger.warning("ignoring unreadable checkpoint %s (%s); replaying the journal", rel, exc)
        return None


def _writer(
    store: ResultStore, layout: RunLayout, settings: StateSettings, contents: JournalContents, last_seq: int
) -> Journal:
    return Journal(
        store, layout.run_dir, next_seq=last_seq + 1, fsync=settings.fsync, valid_bytes=contents.valid_bytes
    )
