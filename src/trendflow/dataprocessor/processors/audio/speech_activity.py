"""audio/speech_activity: Silero VAD on Triton -> speech probability per window, speech segments.

The track is resampled to 16 kHz on the worker and streamed to the server in blocks of 512
frames (16.4 s); the client carries the model's LSTM state and 64-sample context between blocks,
so the per-frame probabilities equal the streaming model's. Segments follow silero's defaults:
speech starts above 0.5, ends below 0.35 after 100 ms, lasts at least 250 ms, padded by 30 ms.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import resample_poly

from trendflow.dataprocessor.component import (
    Component,
    ComponentOutput,
    RunContext,
    masked,
    register,
)
from trendflow.dataprocessor.outputs import TIMESTAMPS, position, scalars, series
from trendflow.dataprocessor.processors.audio._track import load_audio
from trendflow.serving.component_support import ServedModel, served_model

VAD_RATE = 16000
FRAME = 512
FRAME_SEC = FRAME / VAD_RATE
BLOCK_FRAMES = 512
ON, OFF = 0.5, 0.35
MIN_SILENCE_SEC, MIN_SPEECH_SEC, PAD_SEC = 0.1, 0.25, 0.03


def to_16k(samples: np.ndarray, rate: int) -> np.ndarray:
    if rate == VAD_RATE:
        return np.asarray(samples, np.float32)
    divisor = np.gcd(VAD_RATE, rate)
    return resample_poly(samples, VAD_RATE // divisor, rate // divisor).astype(np.float32)


def frame_probabilities(model: ServedModel, audio: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Speech probability of every 32 ms frame of 16 kHz audio, streamed block by block."""
    h = np.zeros((1, 1, 128), np.float32)
    c = np.zeros((1, 1, 128), np.float32)
    context = np.zeros(64, np.float32)
    parts, sizes = [], []
    step = FRAME * BLOCK_FRAMES
    for start in range(0, len(audio), step):
        block = audio[start : start + step]
        out = model.infer({"audio": block, "context": context, "h": h, "c": c})
        parts.append(out["speech_prob"])
        sizes.append(len(out["speech_prob"]))
        h, c = out["hn"], out["cn"]
        context = block[-64:] if len(block) >= 64 else np.pad(block, (64 - len(block), 0))
    return (np.concatenate(parts) if parts else np.zeros(0, np.float32)), sizes


def speech_segments(probs: np.ndarray, duration_sec: float) -> np.ndarray:
    """(K, 2) [start, end] seconds of speech from per-frame probabilities (hysteresis)."""
    segments: list[list[float]] = []
    start: int | None = None
    silence_from: int | None = None
    min_silence = round(MIN_SILENCE_SEC / FRAME_SEC)
    for i, p in enumerate(probs):
        if start is None:
            if p >= ON:
                start, silence_from = i, None
            continue
        if p >= ON:
            silence_from = None
        elif p < OFF:
            silence_from = i if silence_from is None else silence_from
            if i - silence_from >= min_silence:
                segments.append([start * FRAME_SEC, silence_from * FRAME_SEC])
                start, silence_from = None, None
    if start is not None:
        segments.append([start * FRAME_SEC, len(probs) * FRAME_SEC])
    kept = [
        [max(0.0, s - PAD_SEC), min(duration_sec, e + PAD_SEC)]
        for s, e in segments
        if e - s >= MIN_SPEECH_SEC
    ]
    return np.asarray(kept, dtype=np.float64).reshape(-1, 2)


def window_means(probs: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Mean frame probability inside each analysis window (NaN for a window with no frame)."""
    centres = (np.arange(len(probs)) + 0.5) * FRAME_SEC
    lo = np.searchsorted(centres, starts)
    hi = np.searchsorted(centres, ends)
    sums = np.concatenate([[0.0], np.cumsum(probs, dtype=np.float64)])
    counts = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, (sums[hi] - sums[lo]) / counts, np.nan).astype(np.float32)


@register
class SpeechActivity(Component):
    name = "speech_activity"
    processor = "audio"
    schema_version = "1.0.0"
    version = "1.0.0"
    outputs = (
        TIMESTAMPS,
        *series("speech_prob"),
        position("speech_segments_sec", 2),
        *scalars("speech_ratio", "speech_sec", "speech_segment_count"),
    )

    def run(self, ctx: RunContext) -> ComponentOutput:
        model = served_model(ctx, self.spec)
        track = load_audio(ctx)
        if isinstance(track, str):
            return self.empty_output(track)
        audio = to_16k(track.samples, track.sample_rate)
        probs, sizes = frame_probabilities(model, audio)
        segments = speech_segments(probs, len(audio) / VAD_RATE)
        speech_sec = float((segments[:, 1] - segments[:, 0]).sum()) if len(segments) else 0.0
        arrays = masked("timestamps_sec", track.starts_sec, dtype=np.float64)
        arrays.update(masked("speech_prob", window_means(probs, track.starts_sec, track.ends_sec)))
        arrays.update(masked("speech_segments_sec", segments, np.ones(len(segments), bool), dtype=np.float64))
        arrays.update(masked("speech_ratio", np.float32((probs >= ON).mean() if len(probs) else np.nan)))
        arrays.update(masked("speech_sec", np.float32(speech_sec)))
        arrays.update(masked("speech_segment_count", np.float32(len(segments))))
        return ComponentOutput(
            arrays=arrays,
            units_processed=len(track.starts_sec),
            batch_sizes=sizes,
            models_used=[model.used()],
            device_used=model.device,
        )
