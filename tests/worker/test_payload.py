"""The job payload contract (SPEC 11): strict on both sides, defects are `invalid_request`."""

import pytest

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.worker.payload import MAX_SIDECAR_BYTES, JobPayload, JobResult


def payload(**changes: object) -> dict:
    base = {
        "run_id": "20260101T000000Z-abcdef12",
        "platform_id": "local",
        "video_id": "clip_01",
        "video_source": "/videos/clip.mp4",
        "profile": "signals",
        "config_hash": "a" * 64,
        "sampling_policy_version": "sampling-1.0.0",
        "dataprocessor_version": "0.1.0",
    }
    base.update(changes)
    return base


def test_a_valid_payload_round_trips_through_its_message_form() -> None:
    job = JobPayload.parse(payload(force=True, metadata={"title": "x"}))
    assert JobPayload.parse(job.to_message()) == job
    assert job.idempotency_key == ("local", "clip_01", "a" * 64)


@pytest.mark.parametrize(
    "change",
    [
        {"video_id": "../../etc/passwd"},
        {"platform_id": "YouTube"},
        {"config_hash": "not-a-hash"},
        {"run_id": ""},
        {"unexpected": 1},
        {"profile": "a b"},
        {"video_source": ""},
    ],
)
def test_defects_are_invalid_request(change: dict) -> None:
    with pytest.raises(TrendFlowError) as info:
        JobPayload.parse(payload(**change))
    assert info.value.code is ErrorCode.INVALID_REQUEST


def test_missing_fields_and_non_dicts_are_invalid_request() -> None:
    for raw in ({"run_id": "x"}, "a string", None, [1, 2]):
        with pytest.raises(TrendFlowError) as info:
            JobPayload.parse(raw)
        assert info.value.code is ErrorCode.INVALID_REQUEST


def test_oversized_sidecar_is_rejected() -> None:
    with pytest.raises(TrendFlowError) as info:
        JobPayload.parse(payload(metadata={"description": "x" * (MAX_SIDECAR_BYTES + 1)}))
    assert "sidecar" in info.value.message


def test_last_error_code_prefers_the_final_error_then_the_last_retry() -> None:
    ok = JobResult(
        requested_run_id="r", status="success", retry_error_codes=["storage_unavailable", "timeout"]
    )
    assert ok.last_error_code is ErrorCode.TIMEOUT
    failed = ok.model_copy(update={"status": "error", "error_code": ErrorCode.INVALID_MEDIA})
    assert failed.last_error_code is ErrorCode.INVALID_MEDIA
