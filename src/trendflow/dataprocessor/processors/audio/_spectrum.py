"""One short-time spectrum per audio track, shared by audio/spectral and audio/tempo.

The STFT is computed once, chunk by chunk, in numpy/scipy (float32), and reduced on the fly to
what the components need, so the full magnitude spectrogram never sits in memory:

- the mel power spectrogram (n_mels, T) -> MFCC (spectral) and onset strength (tempo);
- per-frame spectral centroid and roll-off (Hz, from the magnitude spectrum).

The conventions are librosa's defaults (centred frames with zero padding, periodic Hann window,
n_fft 2048, hop 512, Slaney mel filterbank, power_to_db(ref=1, amin=1e-10, top_db=80), DCT-II
ortho MFCC), so values match `librosa.feature.*` without its per-feature STFTs. Only the mel
filterbank comes from librosa (numpy code, no numba compilation).

Spectral and tempo run in parallel threads of one run and read the same `ctx.audio()` array: the
result is cached per array (by identity, held through a weak reference) behind a lock, so the
second caller waits for the first instead of recomputing.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.fft

MIN_FRAME_MAGNITUDE = 1e-8  # a frame whose magnitudes sum below this is silence: no centroid
ROLL_PERCENT = 0.85  # spectral_rolloff_hz is the 85 % roll-off (part of the schema, not a knob)


@dataclass(frozen=True)
class SpectralFrames:
    sample_rate: int
    n_fft: int
    hop_length: int
    times_sec: np.ndarray  # (T,) float64, frame centres
    mel_db: np.ndarray  # (n_mels, T) float32, power_to_db of the mel power spectrogram
    centroid_hz: np.ndarray  # (T,) float32, NaN for silent frames
    rolloff_hz: np.ndarray  # (T,) float32, NaN for silent frames


def _mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    import librosa.filters  # imported here: ~1 s of scipy.signal imports, only for audio runs

    return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels).astype(np.float32)


def power_to_db(power: np.ndarray, amin: float = 1e-10, top_db: float | None = 80.0) -> np.ndarray:
    """librosa.power_to_db with ref=1.0: 10 log10(max(power, amin)), floored at max - top_db."""
    db = 10.0 * np.log10(np.maximum(power, amin))
    if top_db is not None and db.size:
        db = np.maximum(db, db.max() - top_db)
    return db.astype(np.float32)


def compute_spectral_frames(
    audio: np.ndarray,
    sample_rate: int,
    n_fft: int = 2048,
    hop_length: int = 512,
    n_mels: int = 128,
    roll_percent: float = ROLL_PERCENT,
    chunk_frames: int = 1024,
) -> SpectralFrames:
    """The STFT of a mono signal reduced to mel power, centroid and roll-off per frame."""
    signal = np.asarray(audio, dtype=np.float32)
    padded = np.pad(signal, n_fft // 2)  # centred frames, zero padding (librosa >= 0.10)
    num_frames = 1 + (len(padded) - n_fft) // hop_length if len(padded) >= n_fft else 0
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop_length][:num_frames]
    window = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate).astype(np.float32)
    mel_basis = _mel_filterbank(sample_rate, n_fft, n_mels)
    mel_power = np.empty((n_mels, num_frames), dtype=np.float32)
    centroid = np.full(num_frames, np.nan, dtype=np.float32)
    rolloff = np.full(num_frames, np.nan, dtype=np.float32)
    for start in range(0, num_frames, chunk_frames):
        stop = min(num_frames, start + chunk_frames)
        spectrum = scipy.fft.rfft(frames[start:stop] * window, axis=1)
        power = spectrum.real**2 + spectrum.imag**2  # (n, bins) float32
        magnitude = np.sqrt(power)
        mel_power[:, start:stop] = mel_basis @ power.T
        total = magnitude.sum(axis=1)
        voiced = total > MIN_FRAME_MAGNITUDE
        safe_total = np.where(voiced, total, 1.0)
        centroid[start:stop] = np.where(voiced, magnitude @ freqs / safe_total, np.nan)
        cumulative = np.cumsum(magnitude, axis=1)
        first_bin = np.argmax(cumulative >= roll_percent * cumulative[:, -1:], axis=1)
        rolloff[start:stop] = np.where(voiced, freqs[first_bin], np.nan)
    return SpectralFrames(
        sample_rate=sample_rate,
        n_fft=n_fft,
        hop_length=hop_length,
        times_sec=np.arange(num_frames, dtype=np.float64) * hop_length / sample_rate,
        mel_db=power_to_db(mel_power),
        centroid_hz=centroid,
        rolloff_hz=rolloff,
    )


_lock = threading.Lock()
_cache: dict[tuple[Any, ...], tuple[weakref.ref, SpectralFrames]] = {}


def spectral_frames(audio: np.ndarray, sample_rate: int, **options: Any) -> SpectralFrames:
    """`compute_spectral_frames`, computed once per audio array and options (see module doc)."""
    key = (id(audio), audio.shape, sample_rate, tuple(sorted(options.items())))
    with _lock:
        hit = _cache.get(key)
        if hit is not None and hit[0]() is audio:
            return hit[1]
        result = compute_spectral_frames(audio, sample_rate, **options)
        # Keep only the latest track: one run's audio at a time per worker thread pool.
        _cache.clear()
        _cache[key] = (weakref.ref(audio), result)
        return result


def window_ranges(
    frame_times: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """[lo, hi) indices of the frames whose time falls in each [start, end) window."""
    return np.searchsorted(frame_times, starts, "left"), np.searchsorted(frame_times, ends, "left")


def window_nanmean(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Mean of the finite values of `values` (T,) or (T, d) over each [lo, hi); NaN if none."""
    finite = np.isfinite(values)
    filled = np.where(finite, values, 0.0).astype(np.float64)
    zero = np.zeros((1, *values.shape[1:]))
    sums = np.concatenate([zero, np.cumsum(filled, axis=0)])
    counts = np.concatenate([zero, np.cumsum(finite, axis=0)])
    total, count = sums[hi] - sums[lo], counts[hi] - counts[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan).astype(np.float32)
