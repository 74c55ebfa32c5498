"""Level 2 / Level 3 managers: events first, checkpoints every N, recovery = checkpoint + replay."""

from __future__ import annotations

import pytest

from tests.dataprocessor.state.builders import COMPONENTS, finished_record
from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.identity import RunIdentity
from trendflow.dataprocessor.state import RunRecorder, RunStateManager, StateSettings, read_journal
from trendflow.storage.layout import RUN_STATE, RunLayout
from trendflow.storage.store import ResultStore


def _run_some(store: ResultStore, identity: RunIdentity, every: int) -> RunRecorder:
    recorder = RunRecorder.start(
        store,
        identity,
        "p",
        COMPONENTS,
        {"kind": "local", "uri": "/v.mp4"},
        settings=StateSettings(checkpoint_every=every),
    )
    for name, processor in [("segmenter", "segmenter"), ("frame_stats", "visual"), ("loudness", "audio")]:
        recorder.started(name)
        recorder.finished(finished_record(store, identity, name, processor), batch_sizes=[4, 4, 2])
    recorder.started("motion")  # still running when the "crash" happens
    return recorder


def _comparable(manager: RunStateManager) -> tuple:
    return (
        manager.state.model_dump(exclude={"last_seq", "updated_at"}),
        {n: p.state.components for n, p in manager.processors.items()},
    )


@pytest.mark.parametrize("every", [1, 3, 1000])
def test_recovery_rebuilds_the_live_state(store: ResultStore, identity: RunIdentity, every: int) -> None:
    live = _run_some(store, identity, every).manager
    recovered, report = RunStateManager.recover(store, RunLayout.of(identity))
    assert _comparable(recovered) == _comparable(live)
    assert report.last_seq == live.journal.next_seq - 1
    if every == 1:  # a checkpoint after every event: nothing left to replay
        assert report.replayed == 0 and report.checkpoint_seq == report.last_seq
    if every == 1000:  # no checkpoint yet: the journal alone is the state
        assert report.checkpoint_seq == -1 and report.replayed > 10
    motion = recovered.component_state("motion")
    assert motion.status == "running" and motion.attempts == 1
    assert recovered.state.processors["visual"].status == "running"
    assert recovered.state.processors["audio"].status == "ok"
    assert recovered.component_state("frame_stats").batch_sizes == [4, 4, 2]


def test_recovery_without_any_checkpoint_uses_the_journal_alone(
    store: ResultStore, identity: RunIdentity
) -> None:
    live = _run_some(store, identity, every=2).manager
    layout = RunLayout.of(identity)
    for name in ["run_state.json", *(f"state_{p}.json" for p in ("segmenter", "visual", "audio", "text"))]:
        store.delete(layout.path(name))
    recovered, report = RunStateManager.recover(store, layout)
    assert report.checkpoint_seq == -1
    assert _comparable(recovered) == _comparable(live)


def test_checkpoints_written_at_different_times_each_replay_from_their_own_seq(
    store: ResultStore, identity: RunIdentity
) -> None:
    """A crash between two files of one checkpoint leaves them at different last_seq."""
    recorder = _run_some(store, identity, every=1000)
    layout = RunLayout.of(identity)
    recorder.manager.checkpoint()
    old_run_state = store.read_bytes(layout.path(RUN_STATE))
    recorder.finished(finished_record(store, identity, "motion", "visual"))
    recorder.manager.checkpoint()  # every file current ...
    store.write_bytes(layout.path(RUN_STATE), old_run_state)  # ... except Level 2, as if the crash hit
    recovered, report = RunStateManager.recover(store, layout)
    assert report.checkpoint_seq < report.last_seq and report.replayed > 0
    assert _comparable(recovered) == _comparable(recorder.manager)


def test_dependency_status_goes_through_the_chain(store: ResultStore, identity: RunIdentity) -> None:
    manager = _run_some(store, identity, every=5).manager
    visual = manager.processor("visual")
    assert visual.dependency("loudness").status == "ok"  # L3 visual -> L2 -> L3 audio
    assert visual.dependency("loudness") == manager.processor("audio").component("loudness")
    with pytest.raises(TrendFlowError) as err:
        visual.dependency("ghost")
    assert err.value.code is ErrorCode.DEPENDENCY_MISSING


def test_finish_writes_every_level(store: ResultStore, identity: RunIdentity) -> None:
    recorder = _run_some(store, identity, every=1000)
    recorder.finished(finished_record(store, identity, "motion", "visual", status="empty"))
    recorder.finished(
        finished_record(
            store,
            identity,
            "text_stats",
            "text",
            status="error",
            error_code=ErrorCode.COMPONENT_FAILED,
            error="boom",
        )
    )
    recorder.finish("error", ErrorCode.COMPONENT_FAILED, "text_stats: boom", 3.0, 250.0)
    recorder.close()
    layout = RunLayout.of(identity)
    recovered, report = RunStateManager.recover(store, layout)
    assert report.replayed == 0  # the final checkpoint holds everything
    assert recovered.state.status == "error" and recovered.state.error_code == ErrorCode.COMPONENT_FAILED
    assert recovered.state.processors["text"].status == "error"
    assert recovered.state.processors["visual"].counts == {"empty": 1, "ok": 1}
    events = [e.event for e in read_journal(store, layout.run_dir).events]
    assert events[0] == "run_started" and events[-2:] == ["run_finished", "run_indexed"]


def test_read_only_recovery_cannot_write(store: ResultStore, identity: RunIdentity) -> None:
    _run_some(store, identity, every=5)
    recovered, _ = RunStateManager.recover(store, RunLayout.of(identity))
    with pytest.raises(TrendFlowError):
        recovered.warning("x")


def test_a_new_run_never_reuses_an_existing_run_directory(store: ResultStore, identity: RunIdentity) -> None:
    _run_some(store, identity, every=5)
    with pytest.raises(TrendFlowError) as err:
        RunRecorder.start(store, identity, "p", COMPONENTS, {})
    assert err.value.code is ErrorCode.INVALID_REQUEST and "resume" in err.value.message


def test_no_state_is_a_clear_error(store: ResultStore) -> None:
    with pytest.raises(TrendFlowError) as err:
        RunStateManager.recover(store, RunLayout("local", "nothing", "here"))
    assert err.value.code is ErrorCode.INVALID_REQUEST and "no run state" in err.value.message


def test_resume_journals_attempt_retry_and_verifies_artifacts(
    store: ResultStore, identity: RunIdentity
) -> None:
    _run_some(store, identity, every=3).close()
    layout = RunLayout.of(identity)
    store.write_bytes(layout.path("audio/loudness.npz"), b"tampered")
    recorder = RunRecorder.resume(store, layout, retry_count=1)
    assert recorder.state.attempt == 2 and recorder.state.retry_count == 1
    assert recorder.verify("frame_stats") is True
    assert recorder.verify("loudness") is False
    assert recorder.component("loudness").status == "pending"
    assert recorder.verify("motion") is False  # never finished: nothing to verify
    events = read_journal(store, layout.run_dir).events
    names = [e.event for e in events]
    assert names.index("retry") < names.index("run_resumed")
    invalid = [e for e in events if e.event == "artifact_invalid"]
    assert [(e.subject, e.payload["problems"][0]["reason"]) for e in invalid] == [
        ("audio/loudness", "sha256_mismatch")
    ]
    assert events[-1].event == "processor_status" and events[-1].payload["status"] == "pending"
    record = recorder.reused("frame_stats")
    assert record.status == "ok" and record.batch_sizes == [4, 4, 2]
    assert recorder.component("frame_stats").reused
