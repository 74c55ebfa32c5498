"""Kedro 1.x spells the option `kedro run --pipelines`: docs, scripts, messages and configs agree."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OLD = re.compile(r"--pipeline(?=[= ])")


def test_no_tracked_file_uses_the_old_spelling() -> None:
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    offenders = []
    for name in files:
        path = ROOT / name
        if path.suffix in {".py", ".md", ".sh", ".yml", ".yaml", ".ipynb", ".toml"} and path.is_file():
            offenders += [
                f"{name}:{n}" for n, line in enumerate(path.read_text().splitlines(), 1) if OLD.search(line)
            ]
    assert offenders == []
