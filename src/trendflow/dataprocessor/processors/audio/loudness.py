"""audio/loudness: RMS level per analysis window, silence ratio, dynamic range.

Levels are dBFS of the window's RMS: 20 log10(RMS) with samples on [-1, 1] (a full-scale square
wave is 0 dBFS, a full-scale sine -3.01 dBFS), floored at `floor_dbfs` (-100) so digital silence
stays finite. Windows are `metadata.audio.segments`; `timestamps_sec` is each window's start.

- `silence_ratio`: share of windows below `silence_threshold_dbfs` (-50 dBFS);
- `dynamic_range_db`: 95th minus 5th percentile of the window levels;
- `loudness_mean_dbfs`: level of the mean window power (energy average, not a mean of dB values).

A video without audio gives the valid-empty NPZ (`no_audio_track`); a silent track is `ok` with
silence_ratio 1.
"""

from __future__ import annotations

import numpy as np

from trendflow.dataprocessor.component import (
    Component,
    ComponentOutput,
    NoParams,
    RunContext,
    masked,
    register,
)
from trendflow.dataprocessor.outputs import TIMESTAMPS, scalars, series
from trendflow.dataprocessor.processors.audio._track import load_audio


class LoudnessParams(NoParams):
    silence_threshold_dbfs: float = -50.0
    floor_dbfs: float = -100.0


def to_dbfs(power: np.ndarray | float, floor_dbfs: float = -100.0) -> np.ndarray:
    """10 log10(mean square) in dBFS, floored; NaN stays NaN."""
    power = np.asarray(power, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.maximum(10.0 * np.log10(power), floor_dbfs)


def window_power(samples: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Mean square of each [lo, hi) sample range; NaN for an empty range."""
    power = np.full(len(lo), np.nan)
    for i, (a, b) in enumerate(zip(lo, hi, strict=True)):
        if b > a:
            segment = np.asarray(samples[a:b], dtype=np.float32)
            power[i] = float(np.dot(segment, segment)) / (b - a)
    return power


def loudness_summary(power: np.ndarray, silence_threshold_dbfs: float, floor_dbfs: float) -> dict[str, float]:
    valid = np.isfinite(power)
    if not valid.any():
        return {"silence_ratio": np.nan, "dynamic_range_db": np.nan, "loudness_mean_dbfs": np.nan}
    levels = to_dbfs(power[valid], floor_dbfs)
    p5, p95 = np.percentile(levels, [5, 95])
    return {
        "silence_ratio": float(np.mean(levels < silence_threshold_dbfs)),
        "dynamic_range_db": float(p95 - p5),
        "loudness_mean_dbfs": float(to_dbfs(power[valid].mean(), floor_dbfs)),
    }


@register
class Loudness(Component):
    name = "loudness"
    processor = "audio"
    schema_version = "1.0.0"
    version = "1.0.0"
    outputs = (
        TIMESTAMPS,
        *series("rms_dbfs"),
        *scalars("silence_ratio", "dynamic_range_db", "loudness_mean_dbfs"),
    )
    Params = LoudnessParams

    def run(self, ctx: RunContext) -> ComponentOutput:
        track = load_audio(ctx)
        if isinstance(track, str):
            return self.empty_output(track)
        params = self.params
        lo, hi = track.sample_ranges()
        power = window_power(track.samples, lo, hi)
        floor = params.floor_dbfs
        arrays = masked("timestamps_sec", track.starts_sec, dtype=np.float64)
        arrays.update(masked("rms_dbfs", np.where(np.isfinite(power), to_dbfs(power, floor), np.nan)))
        summary = loudness_summary(power, params.silence_threshold_dbfs, floor)
        for name, value in summary.items():
            arrays.update(masked(name, value))
        return ComponentOutput(arrays=arrays, units_processed=len(lo), batch_sizes=[len(lo)])
