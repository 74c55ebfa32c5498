from __future__ import annotations

from datetime import datetime

import pytest
from pydantic import ValidationError

from trendflow.contracts.errors import ERROR_CLASSES, ErrorCode, TrendFlowError, is_transient
from trendflow.contracts.identity import (
    RunIdentity,
    compute_config_hash,
    local_video_id,
    validate_video_id,
)
from trendflow.contracts.npz_meta import ModelUsed, NpzMeta, Producer, model_signature
from trendflow.contracts.schema_export import SCHEMA_DIR, expected_files

IDENTITY = {
    "platform_id": "youtube",
    "video_id": "dQw4w9WgXcQ",
    "run_id": "20260101T000000Z-deadbeef",
    "config_hash": "a" * 64,
    "sampling_policy_version": "sampling-1.0.0",
    "dataprocessor_version": "unknown",
    "created_at": "2026-01-01T00:00:00Z",
}


def test_every_code_has_a_class_and_spec_classes_hold() -> None:
    assert set(ERROR_CLASSES) == set(ErrorCode)
    for code in ("triton_unavailable", "storage_unavailable", "timeout", "out_of_memory", "download_failed"):
        assert is_transient(code)
    for code in ("video_too_short", "invalid_media", "invalid_request", "model_not_found"):
        assert not is_transient(code)


def test_error_carries_hint() -> None:
    err = TrendFlowError(ErrorCode.VIDEO_TOO_SHORT, "3.9 s")
    assert err.to_dict()["error_class"] == "permanent"
    assert "5 s" in err.hint


@pytest.mark.parametrize("bad", ["../../etc", "", "a/b", "x" * 65, "id with space", "é"])
def test_video_id_rejects_unsafe_values(bad: str) -> None:
    with pytest.raises(TrendFlowError) as err:
        validate_video_id(bad)
    assert err.value.code is ErrorCode.INVALID_REQUEST
    with pytest.raises(ValidationError):
        RunIdentity.model_validate({**IDENTITY, "video_id": bad})


def test_identity_is_strict() -> None:
    identity = RunIdentity.model_validate(IDENTITY)
    assert identity.idempotency_key == ("youtube", "dQw4w9WgXcQ", "a" * 64)
    with pytest.raises(ValidationError):
        RunIdentity.model_validate({**IDENTITY, "vidoe_id": "typo"})
    with pytest.raises(ValidationError):
        RunIdentity.model_validate({**IDENTITY, "created_at": datetime(2026, 1, 1)})


def test_config_hash_changes_with_precision() -> None:
    base = compute_config_hash({"a": 1}, "s1", {"emb": [{"precision": "fp32"}]})
    assert base == compute_config_hash({"a": 1}, "s1", {"emb": [{"precision": "fp32"}]})
    assert base != compute_config_hash({"a": 1}, "s1", {"emb": [{"precision": "int8"}]})
    assert base != compute_config_hash({"a": 1}, "s2", {"emb": [{"precision": "fp32"}]})


def test_local_video_id_is_content_derived(tmp_path) -> None:
    a, b, c = tmp_path / "a.mp4", tmp_path / "b.mp4", tmp_path / "c.mp4"
    a.write_bytes(b"same")
    b.write_bytes(b"same")
    c.write_bytes(b"other")
    assert local_video_id(a) == local_video_id(b) != local_video_id(c)
    validate_video_id(local_video_id(a))


def test_npz_meta_rules() -> None:
    run = RunIdentity.model_validate(IDENTITY)
    common = {
        "run": run,
        "component": "c",
        "processor": "visual",
        "producer": Producer(name="p", version="1"),
        "component_schema_version": "1",
    }
    with pytest.raises(ValidationError, match="empty_reason"):
        NpzMeta(**common, status="empty")
    model = ModelUsed(
        model_name="m",
        model_version="1",
        weights_digest="d",
        engine="onnxruntime",
        precision="fp32",
        device="cpu",
    )
    with pytest.raises(ValidationError, match="model_signature"):
        NpzMeta(**common, status="ok", models_used=[model], model_signature="wrong")
    meta = NpzMeta(**common, status="ok", models_used=[model], model_signature=model_signature([model]))
    int8 = model.model_copy(update={"precision": "int8"})
    assert model_signature([int8]) != meta.model_signature


def test_committed_json_schemas_are_current() -> None:
    for name, text in expected_files().items():
        path = SCHEMA_DIR / name
        assert path.exists(), f"{path} missing: run python -m trendflow.contracts.schema_export"
        assert path.read_text() == text, f"{path} is stale: run python -m trendflow.contracts.schema_export"
