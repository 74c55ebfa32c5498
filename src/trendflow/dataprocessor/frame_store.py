"""Read access to the segmenter's union of frames: RGB uint8, memory-mapped, scratch data.

The union of a 20-minute video can be gigabytes, so the `.npy` file is opened with
`mmap_mode="r"`: a component reading a batch pulls only those frames into memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.metadata import FramesMetadata


class FrameStore:
    def __init__(self, frames_dir: Path, metadata: FramesMetadata) -> None:
        self.frames_dir = Path(frames_dir)
        self.metadata = metadata
        self.path = self.frames_dir / metadata.frames_file
        self._frames: np.ndarray | None = None

    @property
    def frames(self) -> np.ndarray:
        if self._frames is None:
            self._frames = self._open()
        return self._frames

    def _open(self) -> np.ndarray:
        try:
            frames = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise TrendFlowError(
                ErrorCode.DEPENDENCY_MISSING,
                f"the segmenter's frames are missing or unreadable ({self.path}): {exc}",
            ) from exc
        expected = (
            len(self.metadata.union_timestamps_sec),
            self.metadata.analysis_height,
            self.metadata.analysis_width,
            3,
        )
        if frames.shape != expected or frames.dtype != np.uint8:
            raise TrendFlowError(
                ErrorCode.DEPENDENCY_MISSING,
                f"{self.path} holds {frames.dtype}{frames.shape}, metadata.json says uint8{expected}",
            )
        return frames

    def __len__(self) -> int:
        return len(self.metadata.union_timestamps_sec)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(height, width, 3) of every frame."""
        return (self.metadata.analysis_height, self.metadata.analysis_width, 3)

    def _check(self, indices: Sequence[int]) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(self)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            bad = idx[(idx < 0) | (idx >= n)][:5].tolist()
            raise IndexError(f"frame indices {bad} outside the union of {n} frames")
        return idx

    def get(self, i: int) -> np.ndarray:
        """One frame, RGB uint8 (H, W, 3); a private copy the caller may modify."""
        (index,) = self._check([i])
        return np.array(self.frames[index])

    def get_batch(self, indices: Sequence[int]) -> np.ndarray:
        """Frames (n, H, W, 3) RGB uint8, in the order asked (repeats allowed)."""
        idx = self._check(indices)
        if idx.size == 0:
            return np.empty((0, *self.shape), dtype=np.uint8)
        return np.asarray(self.frames[idx])  # fancy indexing copies only these frames

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        """As `StreamFrames.get_frames`: a sequence of frames (here one array) in the order asked."""
        return self.get_batch(indices)

    def timestamps(self, indices: Sequence[int]) -> np.ndarray:
        union = np.asarray(self.metadata.union_timestamps_sec, dtype=np.float64)
        return union[self._check(indices)]

    def close(self) -> None:
        """Drop the memory map; the next read opens it again."""
        self._frames = None

    def delete(self, include_audio: bool = True) -> None:
        """Scratch cleanup (SPEC 13): remove the frames, by default the extracted audio too, and
        frames_dir itself when nothing else (e.g. metadata.json) is left in it."""
        self.close()
        self.path.unlink(missing_ok=True)
        if include_audio and self.metadata.audio is not None:
            (self.frames_dir / self.metadata.audio.path).unlink(missing_ok=True)
        if self.frames_dir.is_dir() and not any(self.frames_dir.iterdir()):
            self.frames_dir.rmdir()
