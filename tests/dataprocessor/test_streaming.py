"""A streaming run (components read frames while the segmenter decodes) against the reference:
the same components run on the stored union through a `FrameStore`, after the decode, give
byte-identical arrays; a truncated stream (targets lost at the end) still matches metadata.json;
a segmenter failure stops every streaming component cleanly; kept frames are the stored union.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.media import GeneratedMedia, make_identity
from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.metadata import FramesMetadata
from trendflow.dataprocessor.component import PrivacyPolicy, RunContext, component_class
from trendflow.dataprocessor.frame_store import FrameStore
from trendflow.dataprocessor.frame_stream import FrameBus, set_current_component
from trendflow.dataprocessor.graph import ComponentGraph, Profile
from trendflow.dataprocessor.run import ProcessRequest, RunOutcome, process_video
from trendflow.dataprocessor.run.streaming import stream_consumers
from trendflow.dataprocessor.segmenter import segment
from trendflow.dataprocessor.sources import resolve_source
from trendflow.dataprocessor.state import RunRecorder
from trendflow.storage.layout import RunLayout
from trendflow.storage.npz_io import read_npz
from trendflow.storage.store import ResultStore
from trendflow.testing import media

VISUAL = ("frame_stats", "shot_cuts", "motion")


def _process(path: Path, tmp_path: Path, **options: object) -> tuple[RunOutcome, ResultStore]:
    store = ResultStore(str(tmp_path / "store"))
    request = ProcessRequest(
        source=str(path),
        store=store,
        profile="signals",
        force=True,
        scratch_root=tmp_path / "scratch",
        **options,
    )
    return process_video(request), store


def _process_bounded(path: Path, tmp_path: Path, timeout_sec: float, hang: str) -> RunOutcome:
    """`_process` in a thread joined with a bound: a regression that hangs fails with `hang`."""
    result: list[RunOutcome] = []
    worker = threading.Thread(target=lambda: result.append(_process(path, tmp_path)[0]), daemon=True)
    worker.start()
    worker.join(timeout=timeout_sec)
    assert not worker.is_alive(), hang
    (outcome,) = result
    return outcome


def _npz(store: ResultStore, outcome: RunOutcome, name: str) -> dict[str, np.ndarray]:
    assert outcome.manifest is not None
    layout = RunLayout.of(outcome.identity)  # type: ignore[arg-type]
    record = outcome.manifest.component(name)
    assert record is not None and record.artifacts, name
    arrays, _ = read_npz(store, layout.path(record.artifacts[0].path))
    return arrays


def _reference(path: Path, profile: Profile, tmp_path: Path) -> dict[str, dict[str, np.ndarray]]:
    """The visual components on the classic segmenter output (frames.npy + metadata.json)."""
    identity = make_identity(profile)
    source = resolve_source(str(path), tmp_path / "ref_scratch")
    metadata = segment(source, identity, profile, tmp_path / "ref_frames")
    ctx = RunContext(
        identity=identity,
        store=None,  # type: ignore[arg-type]  # components never touch the store
        layout=RunLayout.of(identity),
        source_info=source.info,
        policy=PrivacyPolicy(),
        metadata=metadata,
        frames=FrameStore(tmp_path / "ref_frames", metadata),
    )
    return {name: component_class(name)(profile.components[name]).run(ctx).arrays for name in VISUAL}


def _assert_identical(got: dict[str, np.ndarray], want: dict[str, np.ndarray], name: str) -> None:
    assert set(got) == set(want), name
    for key, value in want.items():
        assert got[key].dtype == value.dtype and got[key].shape == value.shape, (name, key)
        assert got[key].tobytes() == value.tobytes(), (name, key)


def test_streaming_run_gives_the_arrays_of_the_stored_union(sample_video, signals_profile, tmp_path) -> None:
    path = sample_video("bikes.mp4")
    outcome, store = _process(path, tmp_path)
    assert outcome.status == "success", outcome.summary()
    reference = _reference(path, signals_profile, tmp_path)
    for name in VISUAL:
        _assert_identical(_npz(store, outcome, name), reference[name], name)
    # Nothing is left in scratch and no frames file was written (the policy keeps none).
    assert not any((tmp_path / "scratch").rglob("frames.npy"))


def test_a_truncated_stream_still_matches_metadata(
    generated_media: GeneratedMedia, signals_profile, tmp_path
) -> None:
    """Targets past the decodable end are dropped after the decode: the streaming components are
    replayed on their shortened targets, so arrays and metadata.json agree with the reference."""
    clip = generated_media.video("clip8s.mp4", duration=8, width=320, height=240, fps=25, audio=True)
    full = generated_media.get("clip8s_faststart.mp4", lambda p: media.faststart_copy(clip, p))
    cut = media.truncate_copy(full, tmp_path / "cut85.mp4", 0.85)
    outcome, store = _process(cut, tmp_path)
    assert outcome.status == "success", outcome.summary()
    layout = RunLayout.of(outcome.identity)  # type: ignore[arg-type]
    stored = FramesMetadata.model_validate_json(store.read_bytes(layout.metadata))
    assert stored.decode.targets_missing > 0  # the case under test: a shortened stream
    reference = _reference(cut, signals_profile, tmp_path)
    for name in VISUAL:
        _assert_identical(_npz(store, outcome, name), reference[name], name)


def test_a_segmenter_failure_skips_the_streaming_components(
    generated_media: GeneratedMedia, tmp_path
) -> None:
    """Too damaged to analyse is known only after the decode, while the components already read
    frames: the run ends with the segmenter's code and every other component skipped, no hang."""
    clip = generated_media.video("clip8s.mp4", duration=8, width=320, height=240, fps=25, audio=True)
    full = generated_media.get("clip8s_faststart.mp4", lambda p: media.faststart_copy(clip, p))
    cut = media.truncate_copy(full, tmp_path / "cut25.mp4", 0.25)
    outcome, _ = _process(cut, tmp_path)
    assert outcome.status == "error" and outcome.error_code is ErrorCode.INVALID_MEDIA
    assert outcome.manifest is not None
    records = {c.name: c for c in outcome.manifest.components}
    assert records["segmenter"].error_code is ErrorCode.INVALID_MEDIA
    profile = ComponentGraph.load().profile("signals")
    for name in profile.order:
        if name != "segmenter":
            assert records[name].status == "skipped", (name, records[name])


def test_kept_frames_are_the_stored_union(sample_video, signals_profile, tmp_path) -> None:
    outcome, store = _process(sample_video("bikes.mp4"), tmp_path, policy=PrivacyPolicy(keep_frames=True))
    assert outcome.status == "success", outcome.summary()
    layout = RunLayout.of(outcome.identity)  # type: ignore[arg-type]
    kept = store.local_path(layout.path("frames_dir", "frames.npy"))
    identity = make_identity(signals_profile)
    source = resolve_source(str(sample_video("bikes.mp4")), tmp_path / "ref_scratch")
    metadata = segment(source, identity, signals_profile, tmp_path / "ref_frames")
    want = FrameStore(tmp_path / "ref_frames", metadata).get_batch(range(len(metadata.union_timestamps_sec)))
    assert np.load(kept).tobytes() == want.tobytes()


@pytest.mark.parametrize("name", VISUAL)
def test_visual_components_stream(name: str, signals_profile) -> None:
    """Every frame component of the default profiles depends on the segmenter alone: it streams."""
    assert name in stream_consumers(signals_profile, set())


class _Hooks:
    """A streaming run's hooks, minimal: one reader that reads only after the audio is announced."""

    keep_frames_file = False

    def __init__(self) -> None:
        self.bus = FrameBus(time.monotonic() + 120, queue_frames=1)
        self.audio = threading.Event()
        self.read: list[int] = []
        self.thread = threading.Thread(target=self._read, daemon=True)

    def on_plan(self, provisional: FramesMetadata) -> FrameBus:
        targets = provisional.components["frame_stats"].frame_indices
        self.bus.subscribe("frame_stats", targets)
        self.thread.start()
        return self.bus

    def on_audio(self, provisional: FramesMetadata) -> None:
        assert provisional.audio is not None
        self.audio.set()

    def _read(self) -> None:
        set_current_component("frame_stats")
        targets = self.bus.begin("frame_stats")
        assert self.audio.wait(120)
        for j in targets:
            self.bus.take("frame_stats", [j])
            self.read.append(j)


def test_audio_is_announced_while_the_video_decodes(sample_video, signals_profile, tmp_path) -> None:
    """The reader takes no frame before the audio is ready and its queue holds one frame, so the
    decoder is blocked until `on_audio`: the segment completes only if the audio comes first."""
    hooks = _Hooks()
    source = resolve_source(str(sample_video("bigbuckbunny.mp4")), tmp_path / "scratch")
    metadata = segment(source, make_identity(signals_profile), signals_profile, tmp_path / "fd", hooks)
    hooks.thread.join(30)
    assert metadata.audio is not None and hooks.read == metadata.components["frame_stats"].frame_indices
    assert not (tmp_path / "fd" / "frames.npy").exists()  # the policy keeps no frames


def test_a_failure_before_the_plan_drops_the_stream_readers(sample_video, tmp_path, monkeypatch) -> None:
    """A component with no dependency (text_stats) fails transiently at once, before or while the
    segmenter plans: the run stops, the stream's readers are skipped without reading, and the
    decoder never waits on their queues (it did, until the run's deadline, before they were
    dropped). A thread join bounds the test so a regression fails instead of hanging."""

    def fail(self: object, ctx: RunContext) -> None:
        raise TrendFlowError(ErrorCode.TRITON_UNAVAILABLE, "model server down (test)")

    monkeypatch.setattr(component_class("text_stats"), "run", fail)
    outcome = _process_bounded(
        sample_video("bikes.mp4"), tmp_path, 300, "the run hung on a stream reader that was skipped"
    )
    assert outcome.status == "error" and outcome.error_code is ErrorCode.TRITON_UNAVAILABLE
    assert outcome.manifest is not None
    records = {c.name: c for c in outcome.manifest.components}
    for name in VISUAL:
        assert records[name].status in ("skipped", "ok"), (name, records[name])


def test_a_reader_whose_step_fails_before_it_reads_is_dropped(sample_video, tmp_path, monkeypatch) -> None:
    """The journal entry that starts shot_cuts cannot be written (a full store does this), so its
    step fails before the component reads a frame: the run ends with the storage error instead
    of the decoder waiting on shot_cuts' full queue until the run's deadline (found by CI on a
    12 KB tmpfs store). A thread join bounds the test so a regression fails instead of hanging."""
    original = RunRecorder.started

    def started(self: RunRecorder, name: str) -> None:
        if name == "shot_cuts":
            raise TrendFlowError(ErrorCode.STORAGE_UNAVAILABLE, "no space left on device (test)")
        original(self, name)

    monkeypatch.setattr(RunRecorder, "started", started)
    outcome = _process_bounded(
        sample_video("bikes.mp4"), tmp_path, 120, "the run hung on a stream reader whose step failed"
    )
    assert outcome.status == "error" and outcome.error_code is ErrorCode.STORAGE_UNAVAILABLE
