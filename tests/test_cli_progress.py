"""The `trendflow process` console: a bar over the profile's real components, then one summary line."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from trendflow.cli_progress import component_count, component_progress
from trendflow.dataprocessor.graph import ComponentGraph


def test_the_bar_counts_the_profiles_components() -> None:
    order = ComponentGraph.load().profile("signals").order
    assert component_count("signals") == len(order) > 1
    assert component_count("no-such-profile") is None
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    with component_progress(console, len(order)) as progress:
        for name in order:
            progress(name, "running")
            progress(name, "ok")
    text = out.getvalue()
    assert f"0/{len(order)}" in text and f"{len(order)}/{len(order)}" in text
    assert order[-1] in text


def test_process_ends_with_one_summary_line(tiny_videos: dict[str, Path], tmp_path: Path) -> None:
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "COLUMNS": "60"}
    cmd = [sys.executable, "-m", "trendflow", "process", str(tiny_videos["valid_a"]), "--profile=signals"]
    done = subprocess.run(
        [*cmd, f"--store={tmp_path / 'store'}"], capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    n = component_count("signals")
    # One line, not wrapped to the 60 columns: status, run, components, duration.
    assert lines[-1].startswith("success local/") and summary["run_id"] in lines[-1]
    assert f"{n}/{n} components (" in lines[-1] and lines[-1].rstrip().endswith(" s")
    assert "Warning" not in done.stderr
