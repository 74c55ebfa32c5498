"""Code run by the child processes of the Level 1 concurrency test (importable by spawn)."""

from __future__ import annotations

from typing import Any

from trendflow.contracts.identity import utc_now
from trendflow.dataprocessor.state.global_state import GlobalStateManager
from trendflow.dataprocessor.state.models import RunEntry
from trendflow.storage.store import ResultStore

UPDATES = ("running", "running", "final")


def final_status(worker: int, run: int) -> str:
    return "error" if (worker + run) % 3 == 0 else "success"


def publish_runs(root: str, options: dict[str, Any] | None, worker: int, runs: int, barrier: Any) -> None:
    """Like a worker processing `runs` runs: each run's entry changes 3 times; compactions interleave."""
    store = ResultStore(root, storage_options=options)
    manager = GlobalStateManager(store)
    barrier.wait(timeout=60)  # every process starts writing at the same moment
    for run in range(runs):
        for attempt, status in enumerate(UPDATES, start=1):
            manager.put(
                RunEntry(
                    platform_id="local",
                    video_id=f"worker{worker}",
                    run_id=f"run{run:03d}",
                    config_hash="c" * 64,
                    profile="p",
                    status=final_status(worker, run) if status == "final" else status,
                    attempt=attempt,
                    created_at=utc_now(),
                    updated_at=utc_now(),
                )
            )
        if run % 2 == worker % 2:
            manager.compact()
