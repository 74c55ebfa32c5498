"""visual/ocr: RapidOCR on Triton -> on-screen text statistics for a handful of frames.

Per frame: the fraction of the frame covered by text boxes, the number of lines, characters
and words, the mean recognition score and the mean line height (fraction of frame height).
The recognised text itself is kept only when the privacy policy allows raw text (SPEC 13).
"""

from __future__ import annotations

import cv2
import numpy as np

from trendflow.dataprocessor.component import (
    Component,
    ComponentOutput,
    RunContext,
    masked,
    register,
)
from trendflow.dataprocessor.outputs import TIMESTAMPS, raw_text, scalar, series
from trendflow.dataprocessor.processors.visual._frames import frame_batches
from trendflow.serving.component_support import ServedModel, pipelined, served_model

PER_FRAME = (
    "text_area_ratio",
    "text_line_count",
    "text_char_count",
    "text_word_count",
    "text_score_mean",
    "text_line_height",
)


def frame_text_features(boxes: np.ndarray, texts: list[str], height: int, width: int) -> dict[str, float]:
    """Statistics of one frame's text lines; a frame without text has zero counts and area."""
    if len(texts) == 0:
        return {**{k: 0.0 for k in PER_FRAME}, "text_score_mean": np.nan, "text_line_height": np.nan}
    corners = boxes[:, :8].reshape(-1, 4, 2)
    mask = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, [np.round(c).astype(np.int32) for c in corners], 1)
    heights = np.linalg.norm(corners[:, 3] - corners[:, 0], axis=1)
    return {
        "text_area_ratio": float(mask.mean()),
        "text_line_count": float(len(texts)),
        "text_char_count": float(sum(len(t.strip()) for t in texts)),
        "text_word_count": float(sum(len(t.split()) for t in texts)),
        "text_score_mean": float(boxes[:, 8].mean()),
        "text_line_height": float(heights.mean() / height),
    }


def read_frame(model: ServedModel, frame: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """One frame's lines: a request of one frame, which the server's dynamic batcher may join
    with others (this video's next frame, other videos' frames); the result is the same."""
    out = model.infer({"image": np.ascontiguousarray(frame)[np.newaxis]})
    texts = [
        t.decode("utf-8", "replace") if isinstance(t, bytes) else str(t) for t in out["text"].reshape(-1)
    ]
    return out["boxes"].reshape(-1, 9), texts


@register
class Ocr(Component):
    name = "ocr"
    processor = "visual"
    schema_version = "1.0.0"
    version = "1.1.0"  # 1.1: lines padded to their own width (batch-invariant recognition)
    outputs = (TIMESTAMPS, *series(*PER_FRAME), scalar("text_frame_ratio"), raw_text("text"))

    def run(self, ctx: RunContext) -> ComponentOutput:
        model = served_model(ctx, self.spec)
        indices = ctx.frame_indices(self.name)
        if not indices:
            return self.empty_output("no_frames")
        rows: list[dict[str, float]] = []
        lines: list[str] = []
        batch_size = int(self.spec.batching.get("batch_size", 4))
        frames_in = (frame for _, frames in frame_batches(ctx, indices, batch_size) for frame in frames)
        # One request per frame, the next frames read while the server works: a frame is read as
        # soon as it is decoded. The server detects text frame by frame and recognises the lines
        # found, batched across the frames it was sent together (serving/model_repository/ocr).
        for frame, (boxes, texts) in pipelined(frames_in, lambda f: read_frame(model, f)):
            rows.append(frame_text_features(boxes, texts, *frame.shape[:2]))
            lines.append(" | ".join(texts))
        arrays = masked("timestamps_sec", ctx.timestamps(indices), dtype=np.float64)
        for key in PER_FRAME:
            arrays.update(masked(key, [r[key] for r in rows]))
        has_text = arrays["text_line_count"] > 0
        arrays.update(masked("text_frame_ratio", np.float32(has_text.mean())))
        keep_text = ctx.policy.keep_raw_text
        if keep_text:
            arrays.update(masked("text", np.array(lines, dtype=np.str_), has_text, dtype=np.str_))
        return ComponentOutput(
            arrays=arrays,
            units_processed=len(indices),
            batch_sizes=[1] * len(indices),
            models_used=[model.used()],
            device_used=model.device,
            raw_text_kept=keep_text,
        )
