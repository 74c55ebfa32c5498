"""Scratch is per run and never left behind: a run killed with SIGKILL leaves its frames, the
resume (any run start) removes them; folders past the job time limit go too; `trendflow clean`
reports and removes leftovers on demand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from trendflow.dataprocessor.scratch import MARKER, clean_leftovers, find_leftovers, new_scratch
from trendflow.worker.execution import clean_stale_scratch

VIDEO = Path(__file__).resolve().parents[1] / "data" / "videos" / "bikes.mp4"


def _cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trendflow", *args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def test_killed_run_leaves_frames_that_the_resume_removes(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    env = {"TRENDFLOW_SCRATCH": str(scratch)}
    killed = _cli(
        *("process", str(VIDEO), "--profile", "signals", "--store", "st"),
        cwd=tmp_path,
        env={**env, "TRENDFLOW_FAULT_INJECT": "after_component:frame_stats"},
    )
    assert killed.returncode == -9, killed.stderr
    (left,) = [p for p in scratch.iterdir() if p.name.startswith("run-")]
    # A streaming run writes no frames file (the policy keeps none): the segmenter's output that a
    # killed run leaves is frames_dir (metadata.json, audio.npy when the video has audio).
    assert any(p.parent.name == "frames_dir" for p in _files(left)), _files(left)
    assert [leftover.reason for leftover in find_leftovers(scratch)] == ["owner_gone"]

    (run_dir,) = [p for p in (tmp_path / "st").glob("*/*/*") if (p / "manifest.json").is_file()]
    resumed = _cli("process", "--resume", str(run_dir), cwd=tmp_path, env=env)
    summary = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert summary["status"] == "success" and summary["resumed"], resumed.stderr
    assert list(scratch.iterdir()) == [], "no scratch left after a successful resume"


def test_stale_by_owner_or_age(tmp_path: Path) -> None:
    fresh = new_scratch(tmp_path)  # this process: alive and young
    old = new_scratch(tmp_path)
    marker = json.loads((old / MARKER).read_text())
    (old / MARKER).write_text(json.dumps({**marker, "created": time.time() - 7200}))
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    orphan = tmp_path / f"job-{child.pid}-20260101T000000Z-deadbeef-abc123"  # a worker's, no marker
    (orphan / "frames_dir").mkdir(parents=True)
    (orphan / "frames_dir" / "f.npy").write_bytes(b"x" * 1000)
    (tmp_path / "unrelated").mkdir()

    found = {leftover.path.name: leftover.reason for leftover in find_leftovers(tmp_path, 3600)}
    assert found == {old.name: "too_old", orphan.name: "owner_gone"}
    assert sorted(clean_stale_scratch(tmp_path, 3600)) == sorted(found)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([fresh.name, "unrelated"])
    assert clean_leftovers(tmp_path, 3600) == []


def test_clean_command_reports_then_removes(tmp_path: Path) -> None:
    old = new_scratch(tmp_path / "scratch")
    (old / "frame.npy").write_bytes(b"y" * 2048)
    (old / MARKER).write_text(json.dumps({"pid": os.getpid(), "host": "h", "created": time.time() - 99999}))
    dry = _cli("clean", "--dry-run", "--scratch", str(tmp_path / "scratch"), cwd=tmp_path, env={})
    report = json.loads(dry.stdout.strip().splitlines()[-1])
    assert report["folders"] == 1 and report["bytes"] >= 2048 and old.exists()
    assert str(old) in " ".join(dry.stderr.split()).replace(" ", "") or old.name in dry.stderr.replace(
        "\n", ""
    )
    done = _cli("clean", "--scratch", str(tmp_path / "scratch"), cwd=tmp_path, env={})
    assert json.loads(done.stdout.strip().splitlines()[-1])["folders"] == 1 and not old.exists()
