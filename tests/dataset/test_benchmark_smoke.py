"""benchmarks/dataset_build.py runs end to end at a tiny size (the real sizes are 1k and 10k)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_dataset_benchmark_smoke(tmp_path):
    out = tmp_path / "result.json"
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "dataset_build.py"),
        "--sizes",
        "20",
        "40",
        "--snapshots-per-video",
        "10",
        "--n-jobs",
        "1",
        "--workdir",
        str(tmp_path / "w"),
        "--output",
        str(out),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, timeout=600, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout)["sizes"]["40"]["rows"] == 40  # stdout is one JSON object
    saved = json.loads(out.read_text())
    assert saved["synthetic"] is True and saved["sizes"]["40"]["rows"] == 40
    assert saved["sizes"]["20"]["peak_memory_mb"] > 0 and saved["sizes"]["20"]["cpu_sec"] > 0
    assert "time_ratio" in saved["scaling"]
