"""The bundled tritonserver: starts on loopback, reports per-model readiness, stops cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.triton import copy_model
from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.serving.client import TritonClient
from trendflow.serving.triton_server import BundledTriton, TritonServer


def test_bundled_backend_layout(tmp_path: Path) -> None:
    backend = BundledTriton.locate().make_backend_dir(tmp_path / "backends")
    names = sorted(p.name for p in (backend / "python").iterdir())
    assert names == ["libtriton_python.so", "triton_python_backend_stub", "triton_python_backend_utils.py"]


def test_session_server_is_ready_with_every_model(
    triton_server: TritonServer, triton_client: TritonClient
) -> None:
    states = triton_server.model_states()
    assert states, "the repository index is empty"
    assert all(s["state"] == "READY" for s in states), states
    assert triton_client.server_live() and triton_client.server_ready()
    assert triton_client.model_ready("image_encoder", "1")
    assert triton_client.model_ready("image_encoder", "2")
    health = triton_client.health([("image_encoder", "1"), ("no_such_model", "1")])
    assert health["live"] and health["ready"]
    assert health["models"] == {"image_encoder/1": True, "no_such_model/1": False}
    assert health["ok"] is False


def test_stop_leaves_no_process_and_no_shared_memory(scratch_repository: Path) -> None:
    copy_model("image_encoder", scratch_repository)
    server = TritonServer(repository=scratch_repository).start()
    prefix = server._shm_prefix
    proc = server._proc
    assert TritonClient(server.grpc_url).model_ready("image_encoder", "1")
    server.stop()
    assert proc is not None and proc.poll() is not None
    assert not list(Path("/dev/shm").glob(f"{prefix}*"))
    assert not TritonClient(server.grpc_url).server_live()


def test_broken_model_fails_startup_when_all_models_are_required(scratch_repository: Path) -> None:
    model_dir = copy_model("image_encoder", scratch_repository)
    (model_dir / "1" / "weights" / "model.onnx").write_bytes(b"not an onnx file")
    with pytest.raises(TrendFlowError) as info:
        TritonServer(repository=scratch_repository).start()
    assert info.value.code is ErrorCode.MODEL_LOAD_FAILED
    assert "image_encoder" in info.value.message


def test_missing_repository_is_model_not_found(tmp_path: Path) -> None:
    with pytest.raises(TrendFlowError) as info:
        TritonServer(repository=tmp_path / "absent").start()
    assert info.value.code is ErrorCode.MODEL_NOT_FOUND
