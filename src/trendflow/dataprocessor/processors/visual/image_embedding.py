"""visual/image_embedding: EfficientNet-Lite0 on Triton -> per-frame 1280-d embedding + top-5 classes.

Frames are resized to the model's 224x224 input on the worker (fixed shapes let Triton's
dynamic batcher merge requests); the model itself runs only on the server.
"""

from __future__ import annotations

import numpy as np

from trendflow.dataprocessor.component import (
    Component,
    ComponentOutput,
    RunContext,
    masked,
    register,
)
from trendflow.dataprocessor.outputs import TIMESTAMPS, vector
from trendflow.dataprocessor.processors.visual._frames import frame_batches
from trendflow.serving.component_support import pipelined, served_model
from trendflow.serving.preprocess import square_frames

EMBEDDING_DIM = 1280
TOP_K = 5


@register
class ImageEmbedding(Component):
    name = "image_embedding"
    processor = "visual"
    schema_version = "1.0.0"
    version = "1.0.0"
    outputs = (
        TIMESTAMPS,
        vector("embedding", EMBEDDING_DIM),
        vector("top_class_ids", TOP_K),
        vector("top_class_probs", TOP_K),
    )

    def run(self, ctx: RunContext) -> ComponentOutput:
        model = served_model(ctx, self.spec)
        indices = ctx.frame_indices(self.name)
        if not indices:
            # The model was checked but not called: nothing enters models_used.
            return self.empty_output("no_frames")
        batch_size = int(self.spec.batching.get("batch_size", 32))
        parts: dict[str, list[np.ndarray]] = {"embedding": [], "top_class_ids": [], "top_class_probs": []}
        batch_sizes: list[int] = []
        batches = (
            (chunk, square_frames(frames)) for chunk, frames in frame_batches(ctx, indices, batch_size)
        )
        for (chunk, _), outputs in pipelined(batches, lambda b: model.infer_batched({"image": b[1]})):
            for key, values in parts.items():
                values.append(outputs[key])
            batch_sizes.append(len(chunk))
        n = len(indices)
        every = np.ones(n, dtype=bool)
        arrays = masked("timestamps_sec", ctx.timestamps(indices), dtype=np.float64)
        arrays.update(masked("embedding", np.concatenate(parts["embedding"])))
        # Class ids as float32 like every feature array (ids < 1000 are exact).
        arrays.update(
            masked("top_class_ids", np.concatenate(parts["top_class_ids"]).astype(np.float32), every)
        )
        arrays.update(masked("top_class_probs", np.concatenate(parts["top_class_probs"])))
        return ComponentOutput(
            arrays=arrays,
            units_processed=n,
            batch_sizes=batch_sizes,
            models_used=[model.used()],
            device_used=model.device,
        )
