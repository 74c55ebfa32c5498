"""Onset strength, tempo, beats and onsets in numpy, following librosa's algorithms.

librosa's beat tracker and peak picker are numba kernels: importing `librosa.beat` costs ~2 s per
process (one kernel is not cacheable) and ~30 s on the first call after installation. These are
the same algorithms written as vectorised numpy:

- `onset_strength`: librosa.onset.onset_strength on a log-mel spectrogram (lag 1, mean over bands,
  centred padding);
- `estimate_tempo`: librosa.feature.tempo (windowed autocorrelation tempogram, 384-frame Hann
  windows, log-normal prior at 120 BPM, one octave wide), with the windows taken every
  `window_hop` frames instead of every frame (the mean over windows barely moves, the cost drops
  by that factor);
- `track_beats`: Ellis' dynamic programme as in librosa.beat.beat_track (tightness 100, trimmed);
  the recursion only looks back at least half a beat, so blocks of half a beat are vectorised;
- `pick_peaks`: librosa.util.peak_pick with librosa.onset.onset_detect's default windows.
"""

from __future__ import annotations

import numpy as np

TIGHTNESS = 100.0


def onset_strength(mel_db: np.ndarray, n_fft: int, hop_length: int, aggregate: str = "mean") -> np.ndarray:
    """Spectral flux of a (n_mels, T) dB spectrogram, aligned with its frames (float32 (T,)).

    `aggregate` over bands: "mean" (onset detection, tempo) or "median" (beat tracking), as librosa.
    """
    num_frames = mel_db.shape[1]
    if num_frames < 2:
        return np.zeros(num_frames, dtype=np.float32)
    positive = np.maximum(0.0, mel_db[:, 1:] - mel_db[:, :-1])
    flux = np.median(positive, axis=0) if aggregate == "median" else positive.mean(axis=0)
    pad = 1 + n_fft // (2 * hop_length)  # lag + centring offset, as librosa
    return np.concatenate([np.zeros(pad, np.float32), flux])[:num_frames].astype(np.float32)


def estimate_tempo(
    onset_env: np.ndarray,
    frame_rate: float,
    start_bpm: float = 120.0,
    std_bpm: float = 1.0,
    max_tempo: float = 320.0,
    ac_size_sec: float = 8.0,
    window_hop: int = 8,
) -> float:
    """Global tempo (BPM) or NaN when there is no onset energy."""
    if not np.any(onset_env > 0) or len(onset_env) < 4:
        return float("nan")
    win_length = max(4, int(ac_size_sec * frame_rate))
    padded = np.pad(onset_env.astype(np.float64), win_length // 2, mode="linear_ramp")
    frames = np.lib.stride_tricks.sliding_window_view(padded, win_length)[::window_hop]
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(win_length) / win_length)
    n_fft = 2 * win_length
    spectrum = np.fft.rfft(frames * window, n=n_fft, axis=1)
    autocorr = np.fft.irfft(np.abs(spectrum) ** 2, n=n_fft, axis=1)[:, :win_length]
    lag0 = autocorr[:, :1]
    autocorr = np.where(lag0 > 0, autocorr / np.where(lag0 > 0, lag0, 1.0), 0.0)
    tempogram = autocorr.mean(axis=0)
    lags = np.arange(1, win_length)
    bpms = 60.0 * frame_rate / lags
    log_prior = -0.5 * ((np.log2(bpms) - np.log2(start_bpm)) / std_bpm) ** 2
    log_prior[bpms >= max_tempo] = -np.inf
    score = np.log1p(1e6 * np.maximum(tempogram[1:], 0.0)) + log_prior
    return float(bpms[int(np.argmax(score))])


def _local_score(onset_env: np.ndarray, frames_per_beat: int) -> np.ndarray:
    norm = onset_env / (onset_env.std(ddof=1) + np.finfo(np.float64).tiny)
    offsets = np.arange(-frames_per_beat, frames_per_beat + 1)
    window = np.exp(-0.5 * (offsets * 32.0 / frames_per_beat) ** 2)
    return np.convolve(norm, window, mode="same")


def _beat_dp(local_score: np.ndarray, frames_per_beat: int) -> tuple[np.ndarray, np.ndarray]:
    """Backlinks and cumulative scores; predecessors lie round(P/2)..2P frames back."""
    n = len(local_score)
    min_lag = max(1, int(np.round(frames_per_beat / 2)))
    lags = np.arange(min_lag, 2 * frames_per_beat + 1)
    penalty = -TIGHTNESS * (np.log(lags) - np.log(frames_per_beat)) ** 2
    cumscore = np.empty(n, dtype=np.float64)
    backlink = np.full(n, -1, dtype=np.int64)
    # Every frame of a block of `min_lag` frames only depends on frames before the block.
    for start in range(0, n, min_lag):
        idx = np.arange(start, min(n, start + min_lag))
        preds = idx[:, None] - lags[None, :]
        valid = preds >= 0
        candidates = np.where(valid, cumscore[np.maximum(preds, 0)] + penalty, -np.inf)
        best = np.argmax(candidates, axis=1)  # first maximum = shortest lag, as librosa
        best_score = candidates[np.arange(len(idx)), best]
        has_pred = np.isfinite(best_score)
        cumscore[idx] = local_score[idx] + np.where(has_pred, best_score, 0.0)
        backlink[idx] = np.where(has_pred, preds[np.arange(len(idx)), best], -1)
    # Frames before the first onset above 1% of the maximum start no beat chain.
    above = np.flatnonzero(local_score >= 0.01 * local_score.max())
    first = above[0] if len(above) else n
    backlink[:first] = -1
    return backlink, cumscore


def _local_max(x: np.ndarray) -> np.ndarray:
    peaks = np.zeros(len(x), dtype=bool)
    if len(x) > 2:
        peaks[1:-1] = (x[1:-1] > x[:-2]) & (x[1:-1] >= x[2:])
    if len(x) > 1:
        peaks[-1] = x[-1] > x[-2]
    return peaks


def track_beats(onset_env: np.ndarray, bpm: float, frame_rate: float, trim: bool = True) -> np.ndarray:
    """Beat frame indices (int64), librosa.beat.beat_track's dynamic programme."""
    if not np.isfinite(bpm) or bpm <= 0 or not np.any(onset_env) or len(onset_env) < 3:
        return np.zeros(0, dtype=np.int64)
    frames_per_beat = max(1, int(np.round(frame_rate * 60.0 / bpm)))
    local_score = _local_score(onset_env.astype(np.float64), frames_per_beat)
    backlink, cumscore = _beat_dp(local_score, frames_per_beat)
    maxima = _local_max(cumscore)
    threshold = 0.5 * np.median(cumscore[maxima]) if maxima.any() else -np.inf
    tail_candidates = np.flatnonzero(maxima & (cumscore >= threshold))
    tail = tail_candidates[-1] if len(tail_candidates) else len(cumscore) - 1
    beats = np.zeros(len(cumscore), dtype=bool)
    node = int(tail)
    while node >= 0:
        beats[node] = True
        node = int(backlink[node])
    if trim:
        beats = _trim_beats(local_score, beats)
    return np.flatnonzero(beats)


def _trim_beats(local_score: np.ndarray, beats: np.ndarray) -> np.ndarray:
    """Drop beats in the quiet lead-in and tail (below half the RMS of the smoothed beat scores)."""
    # librosa keeps the two trailing values of the full convolution: [2:] rather than "same".
    smooth = np.convolve(local_score[beats], np.hanning(5))[2:]
    threshold = 0.5 * np.sqrt(np.mean(smooth**2)) if smooth.size else 0.0
    trimmed = beats.copy()
    loud = np.flatnonzero(local_score > threshold)
    if not len(loud):
        return np.zeros_like(beats)
    trimmed[: loud[0]] = False
    trimmed[loud[-1] + 1 :] = False
    return trimmed


def pick_peaks(
    x: np.ndarray, pre_max: int, post_max: int, pre_avg: int, post_avg: int, delta: float, wait: int
) -> np.ndarray:
    """Indices n with x[n] = max(x[n-pre_max:n+post_max]), x[n] >= mean(x[n-pre_avg:n+post_avg])
    + delta, and more than `wait` frames after the previous pick (greedy, left to right)."""
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    x = x.astype(np.float64)
    padded = np.concatenate([np.full(pre_max, -np.inf), x, np.full(max(0, post_max - 1), -np.inf)])
    window_max = np.lib.stride_tricks.sliding_window_view(padded, pre_max + post_max).max(axis=1)[:n]
    sums = np.concatenate([[0.0], np.cumsum(x)])
    positions = np.arange(n)
    lo = np.maximum(0, positions - pre_avg)
    hi = np.minimum(n, positions + post_avg)
    window_mean = (sums[hi] - sums[lo]) / (hi - lo)
    candidates = np.flatnonzero((x == window_max) & (x >= window_mean + delta))
    picked: list[int] = []
    for index in candidates:
        if not picked or index > picked[-1] + wait:
            picked.append(int(index))
    return np.asarray(picked, dtype=np.int64)


def detect_onsets(onset_env: np.ndarray, sample_rate: int, hop_length: int) -> np.ndarray:
    """librosa.onset.onset_detect defaults on a precomputed envelope: onset frame indices."""
    if not len(onset_env) or not np.all(np.isfinite(onset_env)):
        return np.zeros(0, dtype=np.int64)
    env = onset_env.astype(np.float64) - float(onset_env.min())
    env /= env.max() + np.finfo(np.float64).tiny
    if not env.any():
        return np.zeros(0, dtype=np.int64)
    frames_per_sec = sample_rate / hop_length
    return pick_peaks(
        env,
        pre_max=int(0.03 * frames_per_sec),
        post_max=int(0.00 * frames_per_sec) + 1,
        pre_avg=int(0.10 * frames_per_sec),
        post_avg=int(0.10 * frames_per_sec) + 1,
        delta=0.07,
        wait=int(0.03 * frames_per_sec),
    )
