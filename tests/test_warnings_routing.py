"""Third-party deprecation noise goes to the `trendflow.deprecations` debug log, not the console."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import trendflow
from trendflow.warnings_routing import is_third_party_noise, route_third_party_warnings

ROOT = Path(__file__).resolve().parents[1]
THIRD_PARTY = "/venv/lib/python3.11/site-packages/somelib/api.py"
OWN = str(Path(trendflow.__file__).parent / "cli.py")


def test_what_counts_as_third_party_noise() -> None:
    assert is_third_party_noise("old", DeprecationWarning, THIRD_PARTY)
    assert is_third_party_noise("x", FutureWarning, THIRD_PARTY)
    assert is_third_party_noise("register_new_resolver() is deprecated", UserWarning, THIRD_PARTY)
    assert not is_third_party_noise("division by zero", RuntimeWarning, THIRD_PARTY)
    assert not is_third_party_noise("old", DeprecationWarning, OWN)  # ours: always shown


def test_routed_warnings_reach_the_debug_log_and_others_pass_through(
    caplog: pytest.LogCaptureFixture,
) -> None:
    passed: list[str] = []
    with warnings.catch_warnings():
        warnings.showwarning = lambda message, *_args, **_kw: passed.append(str(message))
        route_third_party_warnings()
        route_third_party_warnings()  # idempotent: one wrapper
        with caplog.at_level(logging.DEBUG, logger="trendflow.deprecations"):
            warnings.showwarning(DeprecationWarning("old api"), DeprecationWarning, THIRD_PARTY, 3)
            warnings.showwarning(UserWarning("disk almost full"), UserWarning, THIRD_PARTY, 4)
            warnings.showwarning(DeprecationWarning("our own"), DeprecationWarning, OWN, 5)
    assert passed == ["disk almost full", "our own"]
    [record] = caplog.records
    assert record.levelno == logging.DEBUG and "old api" in record.getMessage()


def test_kedro_commands_are_quiet_and_debug_logging_shows_the_noise(tmp_path: Path) -> None:
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}
    env.pop("KEDRO_LOGGING_CONFIG", None)
    kedro = [sys.executable, "-m", "kedro", "registry", "list"]
    quiet = subprocess.run(kedro, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert quiet.returncode == 0, quiet.stderr
    output = quiet.stdout + quiet.stderr
    assert "- training" in output
    assert "Warning" not in output and "WARNING" not in output, output
    debug_config = tmp_path / "logging.yml"
    text = (ROOT / "conf" / "logging.yml").read_text()
    debug_config.write_text(text.replace("level: INFO   # DEBUG", "level: DEBUG   # DEBUG"))
    loud = subprocess.run(
        kedro,
        cwd=ROOT,
        env={**env, "KEDRO_LOGGING_CONFIG": str(debug_config), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert loud.returncode == 0, loud.stderr
    assert "DEBUG" in loud.stdout + loud.stderr and "deprecated" in (loud.stdout + loud.stderr)
