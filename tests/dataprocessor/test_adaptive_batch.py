"""DynamicBatching under memory pressure: an out-of-memory component retries with half its batch.

The component allocates a working buffer per batch sized from this machine's RAM, so batches of
16 and 8 fail with a real MemoryError (the allocator refuses more address space than RAM) and 4
fits. The run succeeds; the halvings are journaled and shown by `trendflow stats`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import tests.dataprocessor.resume_components  # noqa: F401  (registers the test components)
from tests.dataprocessor.resume_components import write_test_graph
from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.dataprocessor.adaptive_batch import run_halving
from trendflow.dataprocessor.graph import ComponentGraph
from trendflow.dataprocessor.run import ProcessRequest, process_video
from trendflow.dataprocessor.state import read_journal
from trendflow.dataprocessor.stats import collect_stats, render_table
from trendflow.storage.layout import RunLayout
from trendflow.storage.store import ResultStore
from trendflow.testing.media import make_video


def test_out_of_memory_halves_the_batch_and_is_journaled(tmp_path: Path) -> None:
    graph = write_test_graph(tmp_path / "graph.yaml")
    video = make_video(tmp_path / "clip.mp4", duration=6.0, width=160, height=120, fps=12)
    store = ResultStore(str(tmp_path / "store"))
    outcome = process_video(
        ProcessRequest(source=str(video), store=store, profile="oom_halving_test", graph_path=graph)
    )
    assert outcome.status == "success", outcome.summary()
    record = next(c for c in outcome.manifest.components if c.name == "test_batch_buffer")
    assert record.status == "ok" and record.batch_sizes == [4, 4, 4]

    layout = RunLayout.of(outcome.identity)
    halvings = [e.payload for e in read_journal(store, layout.run_dir).events if e.event == "batch_halved"]
    assert [(h["batch_size"], h["next_batch_size"]) for h in halvings] == [(16, 8), (8, 4)]
    assert all("MemoryError" in h["error"] for h in halvings)

    stats = {c.component: c for c in collect_stats(store).components}["test_batch_buffer"]
    assert (stats.batch_halvings, stats.oom_events, stats.batch_size_max) == (2, 1, 4)
    from rich.console import Console

    console = Console(width=240, record=True)
    console.print(render_table(collect_stats(store)))
    assert "2 halved" in console.export_text()


def _spec(batch: int | None):
    graph = ComponentGraph.load(None)
    spec = graph.profile("baseline").components["frame_stats"]
    batching = {"batch_size": batch} if batch else {}
    return spec.model_copy(update={"batching": batching})


@pytest.mark.parametrize(
    "error", [MemoryError("host"), TrendFlowError(ErrorCode.INSUFFICIENT_GPU_MEMORY, "CUDA out of memory")]
)
def test_halving_goes_down_to_one_then_fails(error: BaseException) -> None:
    seen: list[int] = []

    def run_once(spec):
        seen.append(spec.batching["batch_size"])
        raise error

    halved: list[tuple[int, int]] = []
    with pytest.raises(type(error)):
        run_halving(_spec(6), run_once, lambda old, new, why: halved.append((old, new)))
    assert seen == [6, 3, 1] and halved == [(6, 3), (3, 1)]


def test_other_errors_and_unbatched_components_are_not_retried() -> None:
    calls: list[int] = []

    def failing(spec):
        calls.append(1)
        raise TrendFlowError(ErrorCode.COMPONENT_FAILED, "bug")

    with pytest.raises(TrendFlowError):
        run_halving(_spec(8), failing, lambda *a: None)
    with pytest.raises(MemoryError):
        run_halving(_spec(None), lambda spec: (_ for _ in ()).throw(MemoryError()), lambda *a: None)
    assert calls == [1]
