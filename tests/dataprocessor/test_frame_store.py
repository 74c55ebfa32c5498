"""FrameStore: memory-mapped RGB frames described by metadata.json; scratch cleanup."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.media import make_identity
from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.metadata import AudioTrack, ComponentSampling, FramesMetadata, SourceFacts
from trendflow.dataprocessor.frame_store import FrameStore


def _metadata(profile, n: int, height: int = 6, width: int = 8, audio: bool = False) -> FramesMetadata:
    identity = make_identity(profile)
    return FramesMetadata(
        run=identity,
        source=SourceFacts(
            container="mp4",
            video_codec="h264",
            duration_sec=10,
            fps=25,
            width=width,
            height=height,
            has_audio=audio,
            bytes=1,
            sha256="0" * 64,
        ),
        analysis_fps=1.0,
        analysis_width=width,
        analysis_height=height,
        frames_file="frames.npy",
        union_timestamps_sec=[float(i) for i in range(n)],
        components={"a": ComponentSampling(frame_indices=list(range(n)))},
        audio=AudioTrack(path="audio.npy", sample_rate=8000, num_samples=8, duration_sec=0.001)
        if audio
        else None,
        sampling_policy_version=identity.sampling_policy_version,
    )


def _write_frames(frames_dir: Path, n: int, height: int = 6, width: int = 8) -> np.ndarray:
    frames_dir.mkdir(parents=True, exist_ok=True)
    frames = (np.arange(n * height * width * 3) % 251).astype(np.uint8).reshape(n, height, width, 3)
    np.save(frames_dir / "frames.npy", frames)
    return frames


def test_get_and_get_batch_return_rgb_uint8_copies(signals_profile, tmp_path) -> None:
    frames = _write_frames(tmp_path, 5)
    store = FrameStore(tmp_path, _metadata(signals_profile, 5))
    assert len(store) == 5 and store.shape == (6, 8, 3)
    one = store.get(3)
    assert one.dtype == np.uint8 and one.shape == (6, 8, 3) and np.array_equal(one, frames[3])
    one[:] = 0  # a private copy: the store is untouched
    assert np.array_equal(store.get(3), frames[3])
    batch = store.get_batch([4, 0, 4])
    assert batch.shape == (3, 6, 8, 3) and np.array_equal(batch, frames[[4, 0, 4]])
    assert store.get_batch([]).shape == (0, 6, 8, 3)
    assert store.timestamps([1, 2]).tolist() == [1.0, 2.0]


def test_frames_are_memory_mapped(signals_profile, tmp_path) -> None:
    _write_frames(tmp_path, 4)
    store = FrameStore(tmp_path, _metadata(signals_profile, 4))
    assert isinstance(store.frames, np.memmap)  # not loaded whole


def test_out_of_range_indices_raise(signals_profile, tmp_path) -> None:
    _write_frames(tmp_path, 3)
    store = FrameStore(tmp_path, _metadata(signals_profile, 3))
    with pytest.raises(IndexError):
        store.get(3)
    with pytest.raises(IndexError):
        store.get_batch([0, -1])


def test_missing_or_mismatched_frames_are_typed_errors(signals_profile, tmp_path) -> None:
    with pytest.raises(TrendFlowError) as err:
        FrameStore(tmp_path, _metadata(signals_profile, 3)).get(0)
    assert err.value.code is ErrorCode.DEPENDENCY_MISSING
    _write_frames(tmp_path, 3, height=7)
    with pytest.raises(TrendFlowError) as err:
        FrameStore(tmp_path, _metadata(signals_profile, 3)).get(0)
    assert err.value.code is ErrorCode.DEPENDENCY_MISSING and "metadata.json says" in err.value.message


def test_delete_removes_frames_and_audio_keeps_metadata(signals_profile, tmp_path) -> None:
    frames_dir = tmp_path / "frames_dir"
    _write_frames(frames_dir, 2)
    np.save(frames_dir / "audio.npy", np.zeros(8, np.float32))
    (frames_dir / "metadata.json").write_text("{}")
    store = FrameStore(frames_dir, _metadata(signals_profile, 2, audio=True))
    store.get(0)
    store.delete()
    assert sorted(p.name for p in frames_dir.iterdir()) == ["metadata.json"]
    (frames_dir / "metadata.json").unlink()
    _write_frames(frames_dir, 2)
    FrameStore(frames_dir, _metadata(signals_profile, 2)).delete()
    assert not frames_dir.exists()  # nothing left: the scratch folder goes too
