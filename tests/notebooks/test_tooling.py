"""The dev extras carry the notebook tooling: JupyterLab to open notebooks/, nbconvert to run them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("tool", ["jupyter-lab", "jupyter-nbconvert"])
def test_notebook_tools_are_installed(tool: str) -> None:
    binary = Path(sys.executable).parent / tool
    assert binary.exists(), f"{tool} missing: install the dev extras (scripts/setup.sh)"
    done = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip()[0].isdigit(), done.stderr
