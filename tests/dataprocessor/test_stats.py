"""Scheduler feedback: per-component resources across runs, OOM as `out_of_memory` with its figure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

import tests.dataprocessor.resume_components  # noqa: F401  (registers the test components)
from tests.dataprocessor.resume_components import write_test_graph
from tests.dataprocessor.state.builders import COMPONENTS, finished_record, make_identity
from trendflow.cli import app
from trendflow.contracts.errors import ErrorCode
from trendflow.dataprocessor.run import ProcessRequest, process_video
from trendflow.dataprocessor.state import RunRecorder, read_journal
from trendflow.dataprocessor.stats import collect_stats, render_table
from trendflow.storage.layout import RunLayout
from trendflow.storage.store import ResultStore
from trendflow.testing.media import make_video

DURATIONS = [1.0, 2.0, 3.0, 4.0, 10.0]


def _synthetic_store(root: Path) -> ResultStore:
    """Five runs with known figures; the last one's loudness ran out of memory."""
    store = ResultStore(str(root))
    for i, duration in enumerate(DURATIONS):
        identity = make_identity(run_id=f"20260101T00000{i}Z-0000000{i}", video_id=f"v{i}")
        recorder = RunRecorder.start(store, identity, "p", COMPONENTS, {})
        recorder.started("frame_stats")
        recorder.finished(
            finished_record(store, identity, "frame_stats", "visual", duration=duration),
            batch_sizes=[64, 64, 8 * (i + 1)],
        )
        recorder.started("loudness")
        if i == len(DURATIONS) - 1:
            record = finished_record(
                store,
                identity,
                "loudness",
                "audio",
                status="error",
                error_code=ErrorCode.OUT_OF_MEMORY,
                error="out of memory",
            )
            recorder.finished(record, oom_rss_mb=4321.0)
            recorder.finish("error", ErrorCode.OUT_OF_MEMORY, "loudness: out of memory")
        else:
            recorder.finished(finished_record(store, identity, "loudness", "audio", duration=0.5))
            recorder.finish("success", None, None)
        recorder.close()
    return store


def test_percentiles_memory_batches_and_errors(tmp_path: Path) -> None:
    report = collect_stats(_synthetic_store(tmp_path))
    assert report.runs == 5 and report.runs_by_status == {"error": 1, "success": 4}
    stats = {c.component: c for c in report.components}
    frame = stats["frame_stats"]
    assert frame.count == frame.measured == 5
    assert frame.wall_sec_p50 == pytest.approx(np.percentile(DURATIONS, 50))
    assert frame.wall_sec_p95 == pytest.approx(np.percentile(DURATIONS, 95))
    assert frame.cpu_sec_p50 == pytest.approx(np.percentile(DURATIONS, 50) / 2)
    assert frame.peak_rss_mb_max == pytest.approx(100.0 + max(DURATIONS))
    assert frame.batch_size_max == 64 and frame.batch_size_p50 == 64
    assert frame.wall_ms_per_unit_p50 == pytest.approx(1000 * np.percentile(DURATIONS, 50) / 10)
    loud = stats["loudness"]
    assert loud.statuses == {"error": 1, "ok": 4}
    assert loud.error_codes == {"out_of_memory": 1}
    assert loud.oom_events == 1 and loud.oom_rss_mb_max == 4321.0
    assert "motion" not in stats  # never finished anywhere: nothing to report
    assert collect_stats(ResultStore(str(tmp_path)), profile="other").components == []


def test_cli_prints_a_table_and_json(tmp_path: Path) -> None:
    _synthetic_store(tmp_path)
    runner = CliRunner()
    as_json = runner.invoke(app, ["stats", "--store", str(tmp_path), "--json"])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert {c["component"] for c in data["components"]} == {"frame_stats", "loudness"}
    table = runner.invoke(app, ["stats", "--store", str(tmp_path)])
    assert table.exit_code == 0 and "frame_stats" in table.output and "out_of_memory 1" in table.output


def test_memory_error_becomes_out_of_memory_with_the_memory_figure(tmp_path: Path) -> None:
    video = make_video(tmp_path / "clip.mp4", duration=6.0, width=160, height=120, fps=12)
    store = ResultStore(str(tmp_path / "store"))
    outcome = process_video(
        ProcessRequest(
            source=str(video),
            store=store,
            profile="oom_test",
            graph_path=write_test_graph(tmp_path / "graph.yaml"),
        )
    )
    # An optional component's OOM is transient: the run fails so the queue retries it (once).
    assert outcome.status == "error" and outcome.error_code is ErrorCode.OUT_OF_MEMORY
    record = outcome.manifest.component("test_memory_hog")
    assert record.error_code is ErrorCode.OUT_OF_MEMORY and "RSS" in record.error
    events = read_journal(store, RunLayout.of(outcome.identity).run_dir).events
    oom = [e for e in events if e.event == "out_of_memory"]
    assert [e.subject for e in oom] == ["audio/test_memory_hog"]
    assert all(e.payload["rss_mb"] > 0 for e in oom)
    mean = next(
        e for e in events if e.event == "component_finished" and e.subject == "visual/test_frame_mean"
    )
    assert mean.payload["batch_sizes"] and all(b <= 8 for b in mean.payload["batch_sizes"])
    assert record.batch_sizes == [] and outcome.manifest.component("test_frame_mean").batch_sizes
    stats = {c.component: c for c in collect_stats(store).components}
    assert stats["test_memory_hog"].oom_events == 1 and stats["test_memory_hog"].oom_rss_mb_max > 0
    console = Console(record=True, width=200)
    console.print(render_table(collect_stats(store)))
    assert "test_memory_hog" in console.export_text()


def test_a_child_killed_by_sigkill_is_out_of_memory(tmp_path: Path) -> None:
    video = make_video(tmp_path / "clip.mp4", duration=6.0, width=160, height=120, fps=12)
    store = ResultStore(str(tmp_path / "store"))
    graph = write_test_graph(tmp_path / "graph.yaml")
    outcome = process_video(
        ProcessRequest(source=str(video), store=store, profile="child_oom_test", graph_path=graph)
    )
    killed = outcome.manifest.component("test_killed_child")
    assert outcome.error_code is ErrorCode.OUT_OF_MEMORY
    assert killed.error_code is ErrorCode.OUT_OF_MEMORY and "killed" in killed.error
    events = read_journal(store, RunLayout.of(outcome.identity).run_dir).events
    oom = [e for e in events if e.event == "out_of_memory"]
    assert [e.subject for e in oom] == ["text/test_killed_child"] and oom[0].payload["rss_mb"] > 0
