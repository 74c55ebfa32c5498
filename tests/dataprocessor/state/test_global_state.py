"""Level 1: per-run entries merged on read; several processes at once lose no update."""

from __future__ import annotations

import multiprocessing
from typing import Any

import pytest

from tests.dataprocessor.state.concurrent_workers import final_status, publish_runs
from trendflow.contracts.identity import utc_now
from trendflow.dataprocessor.state.global_state import ENTRIES_DIR, GlobalStateManager
from trendflow.dataprocessor.state.models import GlobalState, RunEntry
from trendflow.storage.layout import GLOBAL_STATE
from trendflow.storage.store import ResultStore

WORKERS = 4
RUNS = 5


def _entry(video: str, run: str, status: str = "running") -> RunEntry:
    now = utc_now()
    return RunEntry(
        platform_id="local",
        video_id=video,
        run_id=run,
        config_hash="c" * 64,
        profile="p",
        status=status,
        created_at=now,
        updated_at=now,
    )


def test_put_read_compact(store: ResultStore) -> None:
    manager = GlobalStateManager(store)
    assert manager.read().runs == {}
    manager.put(_entry("a", "r1"))
    manager.put(_entry("a", "r1", "success"))
    manager.put(_entry("b", "r1", "error"))
    state = manager.read()
    assert {k: e.status for k, e in state.runs.items()} == {"local/a/r1": "success", "local/b/r1": "error"}
    assert state.runs["local/a/r1"].revision == 2
    assert state.counts == {"error": 1, "success": 1}
    assert store.listdir(f"{ENTRIES_DIR}/local/a/r1") == ["0000000002.json"]  # older revisions dropped
    compacted = manager.compact()
    on_disk = GlobalState.model_validate_json(store.read_bytes(GLOBAL_STATE))
    assert on_disk.runs == compacted.runs == state.runs
    # Newer entries than the checkpoint win on read; the checkpoint is only a cache.
    manager.put(_entry("a", "r1", "error"))
    assert manager.read().runs["local/a/r1"].status == "error"
    manager.forget_video("local", "a")
    assert list(manager.read().runs) == ["local/b/r1"]


def test_damaged_checkpoint_is_rebuilt_from_entries(store: ResultStore) -> None:
    manager = GlobalStateManager(store)
    manager.put(_entry("a", "r1", "success"))
    store.write_bytes(GLOBAL_STATE, b"{not json")
    assert list(manager.compact().runs) == ["local/a/r1"]


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_concurrent_processes_lose_no_update(
    backend: str, tmp_path: Any, request: pytest.FixtureRequest
) -> None:
    if backend == "local":
        root, options = str(tmp_path / "store"), None
    else:
        options = dict(request.getfixturevalue("s3_options"))
        root = f"s3://{request.getfixturevalue('s3_bucket')}/results"
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    procs = [ctx.Process(target=publish_runs, args=(root, options, w, RUNS, barrier)) for w in range(WORKERS)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=300)
        assert proc.exitcode == 0
    store = ResultStore(root, storage_options=options)
    manager = GlobalStateManager(store)
    expected = {
        f"local/worker{w}/run{r:03d}": final_status(w, r) for w in range(WORKERS) for r in range(RUNS)
    }
    # Whatever checkpoint the racing compactions left, the merged view has every final update.
    state = manager.read()
    assert {k: e.status for k, e in state.runs.items()} == expected
    assert all(e.attempt == 3 and e.revision == 3 for e in state.runs.values())
    assert sum(state.counts.values()) == WORKERS * RUNS
    assert manager.compact().runs == state.runs
