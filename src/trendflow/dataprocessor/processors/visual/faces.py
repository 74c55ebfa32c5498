"""visual/faces: MTCNN on Triton -> per-frame face count, largest face area and position.

Frames go to the server at their analysis size with the long side capped (`params.max_side`,
default 512 px) so the detector's image pyramid stays small; areas and positions are fractions
of the frame, so they do not depend on that size. A frame with no face has face_count 0 and
largest_face_area 0 (measured, mask True) and a NaN position (mask False).
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
from trendflow.dataprocessor.outputs import TIMESTAMPS, scalar, series, vector
from trendflow.dataprocessor.processors.visual._frames import frame_batches
from trendflow.serving.component_support import pipelined, served_model


def capped(frames: Sequence[np.ndarray], max_side: int) -> np.ndarray:
    h, w = frames[0].shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return np.stack(frames)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])


def face_features(boxes: np.ndarray, counts: np.ndarray, height: int, width: int) -> dict[str, np.ndarray]:
    """(n, 16, 5) boxes (largest first, NaN padded) -> per-frame features as fractions of the frame."""
    w = np.clip(boxes[..., 2], 0, width) - np.clip(boxes[..., 0], 0, width)
    h = np.clip(boxes[..., 3], 0, height) - np.clip(boxes[..., 1], 0, height)
    areas = np.where(np.isnan(w), 0.0, np.clip(w, 0, None) * np.clip(h, 0, None)) / float(height * width)
    largest = boxes[:, 0, :4]
    centre = np.stack(
        [(largest[:, 0] + largest[:, 2]) / (2 * width), (largest[:, 1] + largest[:, 3]) / (2 * height)],
        axis=1,
    )
    return {
        "face_count": counts.reshape(-1).astype(np.float32),
        "largest_face_area": areas[:, 0].astype(np.float32),
        "faces_total_area": areas.sum(axis=1).astype(np.float32),
        "largest_face_center": np.clip(centre, 0, 1).astype(np.float32),
        "largest_face_score": boxes[:, 0, 4].astype(np.float32),
    }


PER_FRAME = ("face_count", "largest_face_area", "faces_total_area", "largest_face_score")


class FacesParams(NoParams):
    max_side: int = Field(512, ge=32)


@register
class Faces(Component):
    name = "faces"
    processor = "visual"
    schema_version = "1.0.0"
    version = "1.0.0"
    outputs = (
        TIMESTAMPS,
        *series("face_count", "largest_face_area", "faces_total_area"),
        vector("largest_face_center", 2),
        *series("largest_face_score"),
        scalar("face_frame_ratio"),
    )
    Params = FacesParams

    def run(self, ctx: RunContext) -> ComponentOutput:
        model = served_model(ctx, self.spec)
        indices = ctx.frame_indices(self.name)
        if not indices:
            return self.empty_output("no_frames")
        max_side = self.params.max_side
        parts: list[dict[str, np.ndarray]] = []
        batch_sizes: list[int] = []
        batch_size = int(self.spec.batching.get("batch_size", 8))
        batches = (
            (chunk, capped(frames, max_side)) for chunk, frames in frame_batches(ctx, indices, batch_size)
        )
        for (chunk, small), out in pipelined(batches, lambda b: model.infer_batched({"image": b[1]})):
            parts.append(face_features(out["boxes"], out["face_count"], *small.shape[1:3]))
            batch_sizes.append(len(chunk))
        features = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        has_face = features["face_count"] > 0
        arrays = masked("timestamps_sec", ctx.timestamps(indices), dtype=np.float64)
        arrays.update(masked("face_count", features["face_count"]))
        arrays.update(masked("largest_face_area", features["largest_face_area"]))
        arrays.update(masked("faces_total_area", features["faces_total_area"]))
        arrays.update(masked("largest_face_center", features["largest_face_center"], has_face))
        arrays.update(masked("largest_face_score", features["largest_face_score"], has_face))
        arrays.update(masked("face_frame_ratio", np.float32(has_face.mean())))
        return ComponentOutput(
            arrays=arrays,
            units_processed=len(indices),
            batch_sizes=batch_sizes,
            models_used=[model.used()],
            device_used=model.device,
        )
