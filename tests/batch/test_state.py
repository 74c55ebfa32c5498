"""The batch ledger: append-only, latest record wins, a torn last line is survivable."""

from pathlib import Path

import pytest

from trendflow.batch.state import BatchState
from trendflow.worker.payload import JobPayload, JobResult

PAYLOAD = JobPayload(
    run_id="r1",
    platform_id="local",
    video_id="v1",
    video_source="/v.mp4",
    profile="signals",
    config_hash="b" * 64,
    sampling_policy_version="s",
    dataprocessor_version="d",
)


def test_submitted_then_finished(tmp_path: Path) -> None:
    path = tmp_path / "state.jsonl"
    state = BatchState(path)
    state.record_submitted("k1", PAYLOAD)
    assert BatchState(path).pending_payload("k1") == PAYLOAD
    result = JobResult(requested_run_id="r1", run_id="r1", status="success", retry_count=1)
    state.record_finished("k1", result)
    again = BatchState(path)
    assert again.pending_payload("k1") is None
    assert again.result("k1") == result
    assert again.summary() == {"jobs": 1, "success": 1, "error": 0, "pending": 0}


def test_torn_last_line_is_ignored_and_sealed(tmp_path: Path) -> None:
    path = tmp_path / "state.jsonl"
    BatchState(path).record_submitted("k1", PAYLOAD)
    with open(path, "ab") as handle:
        handle.write(b'{"event": "finished", "key": "k1", "at": "2026-01-')  # a crash mid-write
    state = BatchState(path)
    assert state.pending_payload("k1") == PAYLOAD
    state.record_submitted("k2", PAYLOAD.model_copy(update={"run_id": "r2"}))
    reread = BatchState(path)
    assert reread.pending_payload("k2").run_id == "r2"


def test_corruption_in_the_middle_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "state.jsonl"
    path.write_text("garbage\n" + '{"event": "submitted"}\n' * 3)
    with pytest.raises(ValueError, match="not a batch state record"):
        BatchState(path)
