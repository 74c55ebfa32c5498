"""Pure state transitions: (state, event) -> state, one function per level.

The live managers and crash recovery call the same functions, so a recovered state is the
state the crashed process had (up to its last durable event) by construction.
"""

from __future__ import annotations

from collections import Counter

from trendflow.dataprocessor.state.models import (
    DONE_STATUSES,
    ComponentState,
    ProcessorState,
    RunState,
    StateEvent,
)

# Fields of ComponentState the journal's component_finished payload does not carry: they
# accumulate across attempts and events instead.
CARRIED_FIELDS = ("attempts", "oom_rss_mb", "oom_retries")


def apply_run_event(state: RunState | None, event: StateEvent) -> RunState:
    """Level 2. `run_started` creates the state; every other event needs one."""
    if event.event == "run_started":
        state = RunState.model_validate(event.payload)
    elif state is None:
        raise ValueError(f"event {event.seq} ({event.event}) arrived before run_started")
    else:
        payload = event.payload
        match event.event:
            case "run_resumed":
                state.status = "running"
                state.attempt = payload["attempt"]
                state.retry_count = payload["retry_count"]
                state.error_code = state.error = state.finished_at = None
            case "retry":
                state.retry_count = payload["retry_count"]
            case "processor_status":
                summary = state.processors[payload["processor"]]
                summary.status = payload["status"]
                summary.counts = payload["counts"]
            case "run_finished":
                state.status = payload["status"]
                state.error_code = payload.get("error_code")
                state.error = payload.get("error")
                state.finished_at = event.ts
                state.duration_sec = payload.get("duration_sec")
                state.peak_rss_mb = payload.get("peak_rss_mb")
            case "cache_hit":
                state.cache_hits += 1
            case _:  # warning, orphan_removed: facts for the reader of the journal, no state change
                pass
    state.last_seq = event.seq
    state.updated_at = event.ts
    return state


def component_of(event: StateEvent) -> tuple[str, str]:
    processor, _, component = event.subject.partition("/")
    if not component:
        raise ValueError(f"level 3 event {event.seq} has subject {event.subject!r}, not processor/component")
    return processor, component


def next_component_status(current: str, event: StateEvent) -> str:
    """The status a component has after `event` (used to update its processor's summary)."""
    match event.event:
        case "component_started":
            return "running"
        case "component_finished":
            return event.payload["status"]
        case "artifact_invalid":
            return "pending"
        case _:
            return current


def apply_processor_event(state: ProcessorState, event: StateEvent) -> ProcessorState:
    """Level 3: one component section changes."""
    _, name = component_of(event)
    current = state.components.get(name) or ComponentState()
    payload = event.payload
    match event.event:
        case "component_started":
            current = ComponentState(
                status="running",
                required=payload.get("required", current.required),
                attempts=current.attempts + 1,
                started_at=payload.get("started_at", event.ts),
                oom_rss_mb=current.oom_rss_mb,
                oom_retries=current.oom_retries,
            )
        case "component_finished":
            carried = {f: getattr(current, f) for f in CARRIED_FIELDS}
            current = ComponentState.model_validate({**payload, **carried})
        case "component_reused":
            current.reused = True
        case "artifact_invalid":
            current.status = "pending"
            current.artifacts = []
            current.reused = False
        case "out_of_memory":
            current.oom_rss_mb = payload.get("rss_mb")
        case "batch_halved":
            current.oom_retries += 1
            current.oom_rss_mb = payload.get("rss_mb") or current.oom_rss_mb
    current.updated_at = event.ts
    state.components[name] = current
    state.last_seq = event.seq
    state.updated_at = event.ts
    return state


def summarize(order: list[str], statuses: dict[str, str]) -> tuple[str, dict[str, int]]:
    """A processor's status and counts by status, from its components' statuses."""
    values = [statuses.get(name, "pending") for name in order]
    counts = dict(sorted(Counter(values).items()))
    if not all(v in DONE_STATUSES for v in values):
        status = "pending" if all(v == "pending" for v in values) else "running"
    elif any(v == "error" for v in values):
        status = "error"
    elif values and all(v == "skipped" for v in values):
        status = "skipped"
    else:
        status = "ok"
    return status, counts
