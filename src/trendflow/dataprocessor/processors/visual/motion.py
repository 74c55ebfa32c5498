"""visual/motion: dense optical-flow magnitude over frame pairs.

For each pair (a, b) the segmenter chose (one analysis frame apart), both frames are turned grey
and resized to a fixed short side (`params.short_side`, default 160 px), and OpenCV's Farneback
flow from a to b is computed. Magnitudes are divided by the frame diagonal (in pixels, at the
working size) and by the time between the two frames, so the unit is **frame diagonals per
second**: neither the resolution nor the analysis fps changes the values. Per pair:

- `flow_magnitude_mean`: mean magnitude over all pixels;
- `flow_magnitude_p90`: 90th percentile magnitude;
- `moving_fraction`: share of pixels faster than `params.moving_threshold` (diagonals/second).

`timestamps_sec` is the time of the first frame of each pair. A pair that straddles a shot cut
measures the cut, not motion: downstream joins with visual/shot_cuts can drop those.
"""

from __future__ import annotations

import cv2
import numpy as np
from pydantic import Field

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.dataprocessor.component import (
    Component,
    ComponentOutput,
    NoParams,
    RunContext,
    masked,
    register,
)
from trendflow.dataprocessor.outputs import TIMESTAMPS, series
from trendflow.dataprocessor.processors.visual._frames import frame_batches, resize_short_side

SERIES = ("flow_magnitude_mean", "flow_magnitude_p90", "moving_fraction")


class MotionParams(NoParams):
    short_side: int = Field(160, ge=16)
    moving_threshold: float = Field(0.02, ge=0)
    # cv2.calcOpticalFlowFarneback: pyr_scale, levels, winsize, iterations, poly_n, poly_sigma
    farneback: tuple[float, int, int, int, int, float] = (0.5, 3, 15, 3, 5, 1.2)


def pair_motion(
    first: np.ndarray,
    second: np.ndarray,
    dt_sec: float,
    short_side: int = 160,
    moving_threshold: float = 0.02,
    farneback: list[float] | tuple[float, ...] = (0.5, 3, 15, 3, 5, 1.2),
) -> tuple[float, float, float]:
    """(mean, p90, moving fraction) of the flow from `first` to `second` (RGB uint8 frames)."""
    grey_a = cv2.cvtColor(resize_short_side(first, short_side), cv2.COLOR_RGB2GRAY)
    grey_b = cv2.cvtColor(resize_short_side(second, short_side), cv2.COLOR_RGB2GRAY)
    pyr_scale, levels, winsize, iterations, poly_n, poly_sigma = farneback
    flow = cv2.calcOpticalFlowFarneback(
        grey_a,
        grey_b,
        None,
        float(pyr_scale),
        int(levels),
        int(winsize),
        int(iterations),
        int(poly_n),
        float(poly_sigma),
        0,
    )
    magnitude = cv2.magnitude(flow[..., 0], flow[..., 1])
    diagonal = float(np.hypot(*grey_a.shape))
    speed = magnitude / (diagonal * dt_sec)
    return float(speed.mean()), float(np.percentile(speed, 90)), float((speed > moving_threshold).mean())


@register
class Motion(Component):
    name = "motion"
    processor = "visual"
    schema_version = "1.0.0"
    version = "1.0.0"
    outputs = (TIMESTAMPS, *series(*SERIES))
    Params = MotionParams

    def run(self, ctx: RunContext) -> ComponentOutput:
        flat = ctx.frame_indices(self.name)
        if len(flat) % 2:
            raise TrendFlowError(
                ErrorCode.COMPONENT_FAILED,
                f"motion expects frame pairs [a0, b0, a1, b1, ...]; got {len(flat)} indices",
            )
        if not flat:
            return self.empty_output("no_frames")
        params = self.params
        values = np.full((len(flat) // 2, len(SERIES)), np.nan, dtype=np.float32)
        batch_sizes: list[int] = []
        # Batches hold whole pairs: an even number of indices. Times are read per batch, after
        # its frames: in a streaming run a frame's time is known once it is decoded.
        batch = 2 * max(1, int(self.spec.batching.get("batch_size", 32)))
        offset = 0
        chunk_times: list[np.ndarray] = []
        for chunk, frames in frame_batches(ctx, flat, batch):
            times = ctx.timestamps(list(chunk))
            chunk_times.append(times)
            for j in range(0, len(chunk), 2):
                pair = (offset + j) // 2
                dt = times[j + 1] - times[j]
                if dt > 0:  # a degenerate pair (same instant) has no speed: left NaN, masked out
                    values[pair] = pair_motion(
                        frames[j],
                        frames[j + 1],
                        dt,
                        params.short_side,
                        params.moving_threshold,
                        params.farneback,
                    )
            offset += len(chunk)
            batch_sizes.append(len(chunk) // 2)
        times = np.concatenate(chunk_times)
        arrays = masked("timestamps_sec", times[0::2], dtype=np.float64)
        for column, name in enumerate(SERIES):
            arrays.update(masked(name, values[:, column]))
        return ComponentOutput(arrays=arrays, units_processed=len(flat) // 2, batch_sizes=batch_sizes)
