"""audio/spectral: MFCC, spectral centroid, roll-off and zero-crossing rate per analysis window.

Frame-level features come from the shared spectrum (`_spectrum.py`: n_fft 2048, hop 512, librosa
conventions) and are averaged over the frames whose centre falls in each window of
`metadata.audio.segments`; `timestamps_sec` is each window's start.

- `mfcc` (N, 13): mean of the frame MFCCs (DCT-II ortho of the 128-band log-mel spectrogram);
- `spectral_centroid_hz`, `spectral_rolloff_hz` (85 %): mean over the window's non-silent frames,
  NaN (masked) for a window of digital silence;
- `zcr`: share of consecutive samples in the window whose sign differs (librosa's zero_pos rule).
"""

from __future__ import annotations

import numpy as np
import scipy.fft
from pydantic import Field

from trendflow.dataprocessor.component import (
    Component,
    ComponentOutput,
    NoParams,
    RunContext,
    masked,
    register,
)
from trendflow.dataprocessor.outputs import TIMESTAMPS, series, vector
from trendflow.dataprocessor.processors.audio._spectrum import spectral_frames, window_nanmean, window_ranges
from trendflow.dataprocessor.processors.audio._track import load_audio

N_MFCC = 13  # fixed: the array layout (N, 13) is part of the schema


class SpectralParams(NoParams):
    n_fft: int = Field(2048, ge=64)
    hop_length: int = Field(512, ge=16)
    n_mels: int = Field(128, ge=8)


def mfcc_from_mel_db(mel_db: np.ndarray, n_mfcc: int = 13) -> np.ndarray:
    """(n_mfcc, T) MFCCs, as librosa.feature.mfcc(S=mel_db)."""
    return scipy.fft.dct(mel_db, type=2, norm="ortho", axis=0)[:n_mfcc].astype(np.float32)


def window_zcr(samples: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Zero-crossing rate of each [lo, hi) sample range; NaN for fewer than two samples."""
    zcr = np.full(len(lo), np.nan, dtype=np.float32)
    for i, (a, b) in enumerate(zip(lo, hi, strict=True)):
        if b - a >= 2:
            signs = np.signbit(np.asarray(samples[a:b]))
            zcr[i] = np.count_nonzero(signs[1:] != signs[:-1]) / (b - a)
    return zcr


@register
class Spectral(Component):
    name = "spectral"
    processor = "audio"
    schema_version = "1.0.0"
    version = "1.0.0"
    outputs = (
        TIMESTAMPS,
        vector("mfcc", N_MFCC),
        *series("spectral_centroid_hz", "spectral_rolloff_hz", "zcr"),
    )
    Params = SpectralParams

    def run(self, ctx: RunContext) -> ComponentOutput:
        track = load_audio(ctx)
        if isinstance(track, str):
            return self.empty_output(track)
        params = self.params
        frames = spectral_frames(
            track.samples,
            track.sample_rate,
            n_fft=params.n_fft,
            hop_length=params.hop_length,
            n_mels=params.n_mels,
        )
        first, last = window_ranges(frames.times_sec, track.starts_sec, track.ends_sec)
        mfcc = window_nanmean(mfcc_from_mel_db(frames.mel_db, N_MFCC).T, first, last)
        lo, hi = track.sample_ranges()
        arrays = masked("timestamps_sec", track.starts_sec, dtype=np.float64)
        arrays.update(masked("mfcc", mfcc))
        arrays.update(masked("spectral_centroid_hz", window_nanmean(frames.centroid_hz, first, last)))
        arrays.update(masked("spectral_rolloff_hz", window_nanmean(frames.rolloff_hz, first, last)))
        arrays.update(masked("zcr", window_zcr(track.samples, lo, hi)))
        return ComponentOutput(arrays=arrays, units_processed=len(lo), batch_sizes=[len(lo)])
