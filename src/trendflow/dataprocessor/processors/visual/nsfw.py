"""visual/nsfw: open_nsfw on Triton -> per-frame probability that the frame is not safe for work."""

from __future__ import annotations

import numpy as np

from trendflow.dataprocessor.component import (
    Component,
    ComponentOutput,
    RunContext,
    masked,
    register,
)
from trendflow.dataprocessor.outputs import TIMESTAMPS, scalars, series
from trendflow.dataprocessor.processors.visual._frames import frame_batches
from trendflow.serving.component_support import pipelined, served_model
from trendflow.serving.preprocess import square_frames

# The model's reference geometry: 256x256, centre 224 crop (done by the served model).
INPUT_SIZE = 256


@register
class Nsfw(Component):
    name = "nsfw"
    processor = "visual"
    schema_version = "1.0.0"
    version = "1.0.0"
    outputs = (TIMESTAMPS, *series("nsfw_score"), *scalars("nsfw_max", "nsfw_mean"))

    def run(self, ctx: RunContext) -> ComponentOutput:
        model = served_model(ctx, self.spec)
        indices = ctx.frame_indices(self.name)
        if not indices:
            return self.empty_output("no_frames")
        scores: list[np.ndarray] = []
        batch_sizes: list[int] = []
        batch_size = int(self.spec.batching.get("batch_size", 32))
        batches = (
            (chunk, square_frames(frames, INPUT_SIZE))
            for chunk, frames in frame_batches(ctx, indices, batch_size)
        )
        for (chunk, _), out in pipelined(batches, lambda b: model.infer_batched({"image": b[1]})):
            scores.append(out["nsfw_score"][:, 0])
            batch_sizes.append(len(chunk))
        score = np.concatenate(scores).astype(np.float32)
        arrays = masked("timestamps_sec", ctx.timestamps(indices), dtype=np.float64)
        arrays.update(masked("nsfw_score", score))
        arrays.update(masked("nsfw_max", np.float32(score.max())))
        arrays.update(masked("nsfw_mean", np.float32(score.mean())))
        return ComponentOutput(
            arrays=arrays,
            units_processed=len(indices),
            batch_sizes=batch_sizes,
            models_used=[model.used()],
            device_used=model.device,
        )
