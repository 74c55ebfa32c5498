"""visual/frame_stats: classical per-frame picture statistics.

Every statistic is computed after resizing the frame to a fixed short side (`params.short_side`,
default 240 px; integer block averaging, then bilinear), so values do not depend on the source or
analysis resolution: the variance of the Laplacian in particular grows with resolution, and a
fixed working size keeps it comparable across videos. Luma is BT.601 (OpenCV's RGB2GRAY), on 0-255.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from pydantic import Field

from trendflow.dataprocessor.component import (
    Component,
    ComponentOutput,
    NoParams,
    RunContext,
    masked,
    register,
)
from trendflow.dataprocessor.outputs import TIMESTAMPS, series
from trendflow.dataprocessor.processors.visual._frames import frame_batches, resize_batch, stacked_cvt

STAT_NAMES = ("brightness", "contrast", "saturation", "colorfulness", "sharpness")


def colorfulness(rgb: np.ndarray) -> np.ndarray:
    """Hasler & Suesstrunk (2003) colourfulness M3 per frame of an (n, h, w, 3) RGB batch:
    sigma_rgyb + 0.3 mu_rgyb with rg = R - G and yb = (R + G) / 2 - B."""
    n, h, w = rgb.shape[:3]
    red, green, blue = cv2.split(np.ascontiguousarray(rgb).reshape(n * h, w, 3))
    rg = cv2.subtract(red, green, dtype=cv2.CV_32F)
    yb = cv2.subtract(cv2.addWeighted(red, 0.5, green, 0.5, 0.0, dtype=cv2.CV_32F), blue, dtype=cv2.CV_32F)
    out = np.empty(n, dtype=np.float32)
    for i in range(n):
        rows = slice(i * h, (i + 1) * h)
        mean_rg, std_rg = cv2.meanStdDev(rg[rows])
        mean_yb, std_yb = cv2.meanStdDev(yb[rows])
        out[i] = np.hypot(std_rg[0, 0], std_yb[0, 0]) + 0.3 * np.hypot(mean_rg[0, 0], mean_yb[0, 0])
    return out


def frame_statistics(frames: Sequence[np.ndarray], short_side: int = 240) -> dict[str, np.ndarray]:
    """The five statistics of each RGB uint8 frame of a batch, as float32 (n,) arrays."""
    small = resize_batch(frames, short_side)
    n = small.shape[0]
    grey = stacked_cvt(small, cv2.COLOR_RGB2GRAY)
    hsv = stacked_cvt(small, cv2.COLOR_RGB2HSV)
    stats = np.empty((n, 4), dtype=np.float32)
    # cv2.meanStdDev/mean per frame: ~100x faster than numpy's two-pass std over float copies.
    for i in range(n):
        mean, std = cv2.meanStdDev(grey[i])
        _, lap_std = cv2.meanStdDev(cv2.Laplacian(grey[i], cv2.CV_32F))
        stats[i] = (mean[0, 0], std[0, 0], cv2.mean(hsv[i])[1] / 255.0, lap_std[0, 0] ** 2)
    return {
        "brightness": stats[:, 0],
        "contrast": stats[:, 1],
        "saturation": stats[:, 2],
        "colorfulness": colorfulness(small),
        "sharpness": stats[:, 3],
    }


class FrameStatsParams(NoParams):
    short_side: int = Field(240, ge=8)


@register
class FrameStats(Component):
    name = "frame_stats"
    processor = "visual"
    schema_version = "1.0.0"
    version = "1.0.0"
    outputs = (TIMESTAMPS, *series(*STAT_NAMES))
    Params = FrameStatsParams

    def run(self, ctx: RunContext) -> ComponentOutput:
        indices = ctx.frame_indices(self.name)
        if not indices:
            return self.empty_output("no_frames")
        short_side = self.params.short_side
        batch_size = int(self.spec.batching.get("batch_size", 64))
        parts: dict[str, list[np.ndarray]] = {s: [] for s in STAT_NAMES}
        batch_sizes: list[int] = []
        for chunk, frames in frame_batches(ctx, indices, batch_size):
            for stat, values in frame_statistics(frames, short_side).items():
                parts[stat].append(values)
            batch_sizes.append(len(chunk))
        arrays = masked("timestamps_sec", ctx.timestamps(indices), dtype=np.float64)
        for stat in STAT_NAMES:
            arrays.update(masked(stat, np.concatenate(parts[stat])))
        return ComponentOutput(arrays=arrays, units_processed=len(indices), batch_sizes=batch_sizes)
