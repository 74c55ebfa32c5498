"""Client-side input preparation shared by the neural components, the build checks and the benchmark.

The served image models take fixed-size RGB uint8 frames so that Triton's dynamic batcher can
merge requests from different videos; resizing on the client also keeps requests small.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

IMAGE_SIZE = 224


def square_frames(frames: np.ndarray | list[np.ndarray], size: int = IMAGE_SIZE) -> np.ndarray:
    """RGB uint8 frames (any size) -> (n, size, size, 3) uint8; area averaging when shrinking."""
    out = np.empty((len(frames), size, size, 3), dtype=np.uint8)
    for i, frame in enumerate(frames):
        shrink = min(frame.shape[:2]) >= size
        out[i] = cv2.resize(
            np.ascontiguousarray(frame),
            (size, size),
            interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR,
        )
    return out


def load_rgb_images(folder: Path) -> list[np.ndarray]:
    """Every .jpg/.png in `folder` (sorted by name) as RGB uint8."""
    images = []
    for path in sorted(folder.glob("*")):
        if path.suffix.lower() not in {".jpg", ".jpeg", ".png"}:
            continue
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"cannot decode image {path}")
        images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return images
