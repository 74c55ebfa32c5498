"""`trendflow batch` against a real Redis and a real worker: submit, follow, resume, summarise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from trendflow.batch.dispatcher import Dispatcher
from trendflow.batch.runner import BatchOptions, run_batch
from trendflow.batch.state import BatchState
from trendflow.worker.config import WorkerSettings


def write_list(folder: Path, videos: dict[str, Path], names: list[str], extra: str = "") -> Path:
    path = folder / "videos.csv"
    path.write_text(
        "source,platform_id,video_id,metadata\n" + "".join(f"{videos[n]},,,\n" for n in names) + extra
    )
    return path


def test_submit_without_waiting_then_resume_and_keep_finished_runs(
    queue_settings: WorkerSettings, worker_factory, tiny_videos: dict[str, Path], tmp_path: Path
) -> None:
    video_list = write_list(tmp_path, tiny_videos, ["valid_a", "valid_b", "broken"], "missing.mp4,,,\n")
    state_path = tmp_path / "state.jsonl"
    options = BatchOptions(profile="signals", wait=False, poll_s=0.1, timeout_s=180)

    # 1. Submit while no worker runs (an interrupted batch): everything is pending.
    first = run_batch(video_list, queue_settings, options, state_path)
    assert (first.submitted, first.kept, first.followed) == (3, 0, 0)
    rows = {r["source"]: r for r in first.rows()}
    assert rows[str(tmp_path / "missing.mp4")]["error_code"] == "source_not_found"
    assert sum(r["status"] == "pending" for r in rows.values()) == 3
    submitted = BatchState(state_path).summary()
    assert submitted["pending"] == 3

    # 2. Re-run with a worker and --wait: the same jobs are followed, nothing is resubmitted.
    worker_factory(queue_settings)
    second = run_batch(
        video_list,
        queue_settings,
        BatchOptions(profile="signals", wait=True, poll_s=0.1, timeout_s=180),
        state_path,
    )
    assert (second.submitted, second.followed) == (0, 3)
    results = {r["source"]: r for r in second.rows()}
    assert results[str(tiny_videos["valid_a"])]["status"] == "success"
    assert results[str(tiny_videos["broken"])]["error_code"] == "invalid_media"
    run_ids = {r["run_id"] for r in first.rows() if r["run_id"]}
    assert {r["run_id"] for r in second.rows() if r["run_id"]} == run_ids  # same runs, not new ones

    # 3. Re-run again: finished runs and permanent errors are kept, nothing is submitted.
    third = run_batch(
        video_list, queue_settings, BatchOptions(profile="signals", poll_s=0.1, timeout_s=180), state_path
    )
    assert (third.submitted, third.kept) == (0, 3)

    # 4. --retry-errors resubmits the failed video only; it fails the same way.
    fourth = run_batch(
        video_list,
        queue_settings,
        BatchOptions(profile="signals", retry_errors=True, poll_s=0.1, timeout_s=180),
        state_path,
    )
    assert (fourth.submitted, fourth.kept) == (1, 2)
    retried = {r["source"]: r for r in fourth.rows()}[str(tiny_videos["broken"])]
    assert retried["error_code"] == "invalid_media" and retried["run_id"] not in run_ids


def test_a_job_the_broker_forgot_is_resubmitted_on_resume(
    queue_settings: WorkerSettings, worker_factory, tiny_videos: dict[str, Path], tmp_path: Path
) -> None:
    video_list = write_list(tmp_path, tiny_videos, ["valid_c"])
    state_path = tmp_path / "state.jsonl"
    run_batch(video_list, queue_settings, BatchOptions(profile="signals", wait=False), state_path)
    # The broker loses the queued job (a flush, a restart without persistence).
    dispatcher = Dispatcher(queue_settings)
    dispatcher.redis.delete(queue_settings.queue, *dispatcher.redis.keys("trendflow:job:*"))
    worker_factory(queue_settings)
    report = run_batch(
        video_list, queue_settings, BatchOptions(profile="signals", poll_s=0.1, timeout_s=180), state_path
    )
    [row] = report.rows()
    assert row["status"] == "success" and report.followed == 1


def test_cli_batch_prints_a_summary_and_writes_the_index(
    queue_settings: WorkerSettings, worker_factory, tiny_videos: dict[str, Path], tmp_path: Path
) -> None:
    worker_factory(queue_settings)
    video_list = write_list(tmp_path, tiny_videos, ["valid_a", "too_short"])
    env = {**os.environ, **queue_settings.to_env()}
    index = tmp_path / "runs_index.parquet"
    proc = subprocess.run(
        [sys.executable, "-m", "trendflow", "batch", str(video_list), "--wait", "--profile", "signals",
         "--index", str(index), "--timeout", "180"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr  # one video failed
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary == {**summary, "videos": 2, "success": 1, "error": 1, "submitted": 2}
    assert "batch summary" in proc.stderr and "video_too_short" in proc.stderr
    frame = pd.read_parquet(index)
    assert len(frame) == 2 and set(frame["status"]) == {"success", "error"}
    assert Path(summary["state"]).is_file()
