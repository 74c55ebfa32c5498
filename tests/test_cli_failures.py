"""Every failure of the `trendflow` CLI ends with a JSON summary and a typed code (non-zero exit),
never a traceback or usage text; messages are shown as written (no rich markup eaten).

The command runs as a user runs it (`python -m trendflow`, the same `main()` as the console script).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from trendflow.contracts.manifest import Manifest

VIDEOS = Path(__file__).resolve().parent / "data" / "videos"
VIDEO = VIDEOS / "bikes.mp4"  # 10 s: inside the product's duration limits


def trendflow(*args: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[int, dict, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "trendflow", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = proc.stdout.strip().splitlines()
    assert lines, f"no JSON summary on stdout; stderr: {proc.stderr}"
    summary = json.loads(lines[-1])
    assert "Traceback" not in proc.stderr and "Usage:" not in proc.stderr, proc.stderr
    return proc.returncode, summary, proc.stderr


def expect(code: str, *args: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[dict, str]:
    rc, summary, stderr = trendflow(*args, cwd=cwd, env=env)
    assert rc != 0
    assert summary["status"] == "error"
    assert summary["error_code"] == code, summary
    return summary, stderr


def test_store_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    expect("storage_unavailable", "process", str(VIDEO), "--store", "afile", cwd=tmp_path)
    expect("storage_unavailable", "process", str(VIDEO), "--store", "afile/under", cwd=tmp_path)
    expect("storage_unavailable", "stats", "--store", "afile/under", cwd=tmp_path)


def test_s3_store_without_credentials(tmp_path: Path, s3_endpoint: str) -> None:
    env = {"TRENDFLOW_S3_ENDPOINT_URL": s3_endpoint, "AWS_CONFIG_FILE": "/nonexistent"}
    env.update({"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true"})
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TRENDFLOW_S3_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "trendflow", "process", str(VIDEO), "--store", "s3://bucket/prefix"],
        cwd=tmp_path,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 1 and summary["error_code"] == "storage_unavailable"
    assert "credentials" in summary["error"].lower()


@pytest.mark.parametrize(
    "location",
    ["/", "/tmp", "a/b", "s3://bucket/x", "s3://bucket//x/y", "outside/of/store"],
)
def test_resume_of_what_is_not_a_run(tmp_path: Path, location: str) -> None:
    (tmp_path / "outside" / "of" / "store").mkdir(parents=True)
    summary, _ = expect("invalid_request", "process", "--resume", location, "--store", "st", cwd=tmp_path)
    assert "--resume" in summary["error"] or "no run state" in summary["error"], summary


@pytest.mark.parametrize("days", ["-3", "0", "abc", "1.5"])
def test_retention_days_must_be_a_positive_integer(tmp_path: Path, days: str) -> None:
    expect(
        "invalid_request",
        *("process", str(VIDEO), "--keep-raw-text", "--retention-days", days, "--store", "st"),
        cwd=tmp_path,
    )
    expect("invalid_request", "process", str(VIDEO), "--retention-days", days, "--store", "st", cwd=tmp_path)


def test_usage_errors_are_invalid_request(tmp_path: Path) -> None:
    expect("invalid_request", "process", "--no-such-option", cwd=tmp_path)
    expect("invalid_request", "no-such-command", cwd=tmp_path)
    expect("invalid_request", "predict", "x/y/z", "--published-at", "yesterday-ish", cwd=tmp_path)


def test_help_still_works(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "trendflow", "process", "--help"], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 0 and "--resume" in proc.stdout


def test_hints_keep_brackets(tmp_path: Path) -> None:
    """A video id outside the allowed pattern: the message quotes it with its brackets intact."""
    summary, stderr = expect(
        "invalid_request", "process", str(VIDEO), "--video-id", "Bad Id!", "--store", "st", cwd=tmp_path
    )
    brackets = [part for part in summary["error"].split() if "[" in part]
    assert brackets, summary["error"]
    flat = " ".join(stderr.split())
    for part in brackets:
        assert part in flat, (part, stderr)


@contextlib.contextmanager
def tiny_filesystem(path: Path, size: str, read_only: bool = False) -> Iterator[Path]:
    """A real small filesystem (tmpfs): needs root; skipped elsewhere."""
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


@pytest.mark.parametrize("size", ["8k", "12k", "24k", "48k"])
def test_full_disk_never_leaves_a_running_manifest(tmp_path: Path, size: str) -> None:
    with tiny_filesystem(tmp_path / "full", size) as root:
        expect(
            "storage_unavailable",
            *("process", str(VIDEO), "--profile", "signals", "--store", str(root / "st")),
            cwd=tmp_path,
        )
        for manifest in (root / "st").rglob("manifest.json"):
            assert Manifest.model_validate_json(manifest.read_text()).status == "error"


def test_unwritable_store(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        with tiny_filesystem(tmp_path / "ro", "1m", read_only=True) as root:
            expect("storage_unavailable", "process", str(VIDEO), "--store", str(root), cwd=tmp_path)
            expect("storage_unavailable", "process", str(VIDEO), "--store", str(root / "sub"), cwd=tmp_path)
        return
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o555)
    expect("storage_unavailable", "process", str(VIDEO), "--store", str(folder), cwd=tmp_path)
