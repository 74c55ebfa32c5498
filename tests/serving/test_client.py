"""The gRPC client against the real server: batching, results, and every error of the taxonomy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.triton import copy_model
from trendflow.contracts.errors import ErrorCode, TrendFlowError, is_transient
from trendflow.serving import DEFAULT_REPOSITORY
from trendflow.serving.client import TritonClient
from trendflow.serving.recipes.common import ort_session, sample_frames
from trendflow.serving.triton_server import TritonServer, free_port


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return sample_frames()


def test_served_embeddings_match_the_onnx_file(triton_client: TritonClient, frames: np.ndarray) -> None:
    served = triton_client.infer("image_encoder", "1", {"image": frames})
    session = ort_session(DEFAULT_REPOSITORY / "image_encoder" / "1" / "weights" / "model.onnx")
    embedding, probs = session.run(["embedding", "probs"], {"image": frames.astype(np.float32)})
    np.testing.assert_allclose(served["embedding"], embedding, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(served["top_class_ids"][:, 0], probs.argmax(1))
    assert served["top_class_probs"].shape == (len(frames), 5)
    assert np.all(np.diff(served["top_class_probs"], axis=1) <= 0), "top classes must be sorted"


def test_batches_larger_than_the_model_limit_are_split_and_kept_in_order(
    triton_client: TritonClient, frames: np.ndarray
) -> None:
    info = triton_client.require_model("image_encoder", "2")
    assert info.max_batch_size == 32 and info.device == "cpu"
    many = np.concatenate([frames] * 4)[:37]  # 37 > 32: two requests, in flight together
    batched = triton_client.infer_batched("image_encoder", "2", {"image": many}, batch_size=8)
    single = triton_client.infer("image_encoder", "2", {"image": many[:8]})
    assert batched["embedding"].shape == (37, 1280)
    np.testing.assert_allclose(batched["embedding"][:8], single["embedding"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        batched["embedding"][len(frames)], batched["embedding"][0], rtol=1e-4, atol=1e-4
    )


def test_server_down_is_transient_triton_unavailable(frames: np.ndarray) -> None:
    client = TritonClient(f"127.0.0.1:{free_port()}", timeout_s=5)
    with pytest.raises(TrendFlowError) as info:
        client.infer("image_encoder", "1", {"image": frames[:1]})
    assert info.value.code is ErrorCode.TRITON_UNAVAILABLE
    assert is_transient(info.value.code)
    assert client.health([("image_encoder", "1")])["ok"] is False


def test_unknown_model_and_version_are_model_not_found(
    triton_client: TritonClient, frames: np.ndarray
) -> None:
    for name, version in (("no_such_model", "1"), ("image_encoder", "9")):
        with pytest.raises(TrendFlowError) as info:
            triton_client.infer(name, version, {"image": frames[:1]})
        assert info.value.code is ErrorCode.MODEL_NOT_FOUND, info.value
        assert not info.value.transient


def test_wrong_input_shape_is_invalid_request(triton_client: TritonClient) -> None:
    with pytest.raises(TrendFlowError) as info:
        triton_client.infer("image_encoder", "1", {"image": np.zeros((1, 100, 100, 3), np.uint8)})
    assert info.value.code is ErrorCode.INVALID_REQUEST


def test_broken_model_file_is_model_load_failed(scratch_repository: Path, frames: np.ndarray) -> None:
    model_dir = copy_model("image_encoder", scratch_repository)
    (model_dir / "1" / "weights" / "model.onnx").write_bytes(b"\x00 truncated weights")
    with TritonServer(repository=scratch_repository, require_all_ready=False) as server:
        client = TritonClient(server.grpc_url, timeout_s=30)
        assert client.server_live() and not client.server_ready()
        with pytest.raises(TrendFlowError) as info:
            client.infer("image_encoder", "1", {"image": frames[:1]})
    assert info.value.code is ErrorCode.MODEL_LOAD_FAILED
    assert "image_encoder" in info.value.message


def test_a_request_past_its_deadline_is_a_transient_timeout(
    triton_server: TritonServer, frames: np.ndarray
) -> None:
    client = TritonClient(triton_server.grpc_url, timeout_s=0.001)
    with pytest.raises(TrendFlowError) as info:
        client.infer_batched("image_encoder", "1", {"image": np.concatenate([frames] * 3)})
    assert info.value.code is ErrorCode.TIMEOUT and info.value.transient
