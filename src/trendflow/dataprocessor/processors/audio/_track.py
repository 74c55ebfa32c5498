"""The audio track and its analysis windows as the audio components read them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.dataprocessor.component import RunContext

NO_AUDIO_TRACK = "no_audio_track"
AUDIO_UNDECODABLE = "audio_undecodable"  # the container has an audio stream; it did not decode
EMPTY_AUDIO_TRACK = "empty_audio_track"


@dataclass(frozen=True)
class AudioWindows:
    samples: np.ndarray  # mono float32
    sample_rate: int
    starts_sec: np.ndarray  # (N,) float64, metadata.audio.segments[i].start_sec
    ends_sec: np.ndarray  # (N,) float64

    @property
    def duration_sec(self) -> float:
        return len(self.samples) / self.sample_rate

    def sample_ranges(self) -> tuple[np.ndarray, np.ndarray]:
        """[lo, hi) sample indices of each window, clipped to the track."""
        n = len(self.samples)
        lo = np.clip(np.round(self.starts_sec * self.sample_rate).astype(np.int64), 0, n)
        hi = np.clip(np.round(self.ends_sec * self.sample_rate).astype(np.int64), 0, n)
        return lo, np.maximum(lo, hi)


def load_audio(ctx: RunContext) -> AudioWindows | str:
    """The track and its windows, or the empty reason ("no_audio_track", "audio_undecodable",
    "empty_audio_track")."""
    samples = ctx.audio()
    track = ctx.metadata.audio if ctx.metadata is not None else None
    if samples is None and track is None:
        has_stream = ctx.metadata is not None and ctx.metadata.source.has_audio
        return AUDIO_UNDECODABLE if has_stream else NO_AUDIO_TRACK
    if samples is None or track is None:
        raise TrendFlowError(
            ErrorCode.DEPENDENCY_MISSING,
            "metadata.json and the extracted audio disagree on whether there is an audio track; "
            "re-run the segmenter",
        )
    samples = np.asarray(samples)
    if samples.ndim != 1:
        raise TrendFlowError(
            ErrorCode.COMPONENT_FAILED, f"audio must be mono (1-d), got shape {samples.shape}"
        )
    if len(samples) == 0:
        return EMPTY_AUDIO_TRACK
    if not track.segments:
        raise TrendFlowError(
            ErrorCode.DEPENDENCY_MISSING,
            "metadata.json has an audio track but no audio segments; re-run the segmenter",
        )
    starts = np.asarray([s.start_sec for s in track.segments], dtype=np.float64)
    ends = np.asarray([s.end_sec for s in track.segments], dtype=np.float64)
    return AudioWindows(samples=samples, sample_rate=int(track.sample_rate), starts_sec=starts, ends_sec=ends)
