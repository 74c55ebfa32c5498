"""Frame helpers shared by the classical visual components: bounded batches and resizing."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import cv2
import numpy as np

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.dataprocessor.component import RunContext


def frame_batches(
    ctx: RunContext, indices: Sequence[int], batch_size: int
) -> Iterator[tuple[Sequence[int], Sequence[np.ndarray]]]:
    """(indices, RGB uint8 (H, W, 3) frames) chunks, so at most `batch_size` frames sit in memory.

    The frames are read-only and, in a streaming run, the decoded frames themselves (shared by
    every component; no copy): read them, index them, stack what you derive from them."""
    if ctx.frames is None:
        raise TrendFlowError(ErrorCode.DEPENDENCY_MISSING, "the run context has no frame store")
    step = max(1, int(batch_size))
    for start in range(0, len(indices), step):
        chunk = indices[start : start + step]
        yield chunk, ctx.frames.get_frames(list(chunk))


def scaled_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(width, height) with the short side set to `short_side`, aspect ratio kept (cv2 order)."""
    scale = short_side / min(height, width)
    return max(1, round(width * scale)), max(1, round(height * scale))


def area_downscale(frame: np.ndarray, factor: int) -> np.ndarray:
    """Average `factor` x `factor` blocks (anti-aliased shrink by an integer factor).

    OpenCV's INTER_AREA has a fast path only for exact integer ratios (about 10x faster than its
    general path): crop the at most `factor - 1` edge pixels that would break exactness first.
    """
    if factor <= 1:
        return frame
    height, width = frame.shape[:2]
    h, w = height // factor, width // factor
    return cv2.resize(frame[: h * factor, : w * factor], (w, h), interpolation=cv2.INTER_AREA)


def resize_short_side(frame: np.ndarray, short_side: int) -> np.ndarray:
    """Shrink by the largest integer factor that keeps the short side >= `short_side` (block
    averaging, no aliasing), then bilinear for the remaining factor (< 2); bilinear to grow."""
    short = min(frame.shape[:2])
    if short == short_side:
        return frame
    if short > short_side:
        frame = area_downscale(frame, short // short_side)
        if min(frame.shape[:2]) == short_side:
            return frame
    height, width = frame.shape[:2]
    return cv2.resize(frame, scaled_size(height, width, short_side), interpolation=cv2.INTER_LINEAR)
