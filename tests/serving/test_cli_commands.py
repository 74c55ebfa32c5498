"""`trendflow serve-models` and `trendflow models build` as a user runs them (subprocesses)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from tests.fixtures.triton import copy_model
from trendflow.serving.client import TritonClient

TRENDFLOW = [sys.executable, "-m", "trendflow"]


def test_models_build_reports_cached_models_as_json(built_repository: dict, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [*TRENDFLOW, "models", "build", "--model", "image_encoder", "--report", str(report)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["passed"] is True
    assert {(m["model_version"], m["status"]) for m in summary["models"]} == {
        ("1", "cached"),
        ("2", "cached"),
    }
    assert json.loads(report.read_text())["models"][0]["checks"]["passed"] is True


def test_serve_models_serves_until_interrupted(built_repository: dict, scratch_repository: Path) -> None:
    copy_model("image_encoder", scratch_repository)
    cmd = [*TRENDFLOW, "serve-models", "--repository", str(scratch_repository)]
    proc = subprocess.Popen(
        [*cmd, "--http-port", "0", "--grpc-port", "0", "--metrics-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        status = json.loads(proc.stdout.readline())
        assert status["status"] == "ready" and status["models"] == ["image_encoder/1"]
        client = TritonClient(status["grpc_url"])
        assert client.model_ready("image_encoder", "1")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        assert not client.server_live()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def test_serve_models_with_a_broken_model_exits_with_model_load_failed(
    built_repository: dict, scratch_repository: Path
) -> None:
    model_dir = copy_model("image_encoder", scratch_repository)
    (model_dir / "1" / "weights" / "model.onnx").write_bytes(b"broken")
    proc = subprocess.run(
        [
            *TRENDFLOW,
            "serve-models",
            "--repository",
            str(scratch_repository),
            "--grpc-port",
            "0",
            "--http-port",
            "0",
            "--metrics-port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 1
    assert json.loads(proc.stdout.strip().splitlines()[-1])["error_code"] == "model_load_failed"
