"""text/text_embedding: multilingual-e5-small on Triton for the title, the description and the tags.

One text item per field (tags joined with ", "), each a (1, 384) embedding with its own mask:
a missing or blank field is NaN + mask False, and a video with no text at all is valid empty.
Raw text is sent to the model server only; it never enters the NPZ.
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
from trendflow.dataprocessor.outputs import run_vector
from trendflow.serving.component_support import served_model

EMBEDDING_DIM = 384
FIELDS = ("title", "description", "tags")


def field_texts(ctx: RunContext) -> dict[str, str]:
    info = ctx.source_info
    texts = {
        "title": info.title or "",
        "description": info.description or "",
        "tags": ", ".join(t.strip() for t in info.tags if t and t.strip()),
    }
    return {field: text.strip() for field, text in texts.items() if text and text.strip()}


def encode_texts(model, texts: list[str]) -> np.ndarray:  # model: ServedModel
    batch = np.array([t.encode("utf-8") for t in texts], dtype=np.object_).reshape(-1, 1)
    return model.infer_batched({"text": batch})["embedding"]


@register
class TextEmbedding(Component):
    name = "text_embedding"
    processor = "text"
    schema_version = "1.0.0"
    version = "1.0.0"
    outputs = tuple(run_vector(f"{field}_embedding", EMBEDDING_DIM) for field in FIELDS)

    def run(self, ctx: RunContext) -> ComponentOutput:
        model = served_model(ctx, self.spec)
        texts = field_texts(ctx)
        if not texts:
            return self.empty_output("no_text")
        embeddings = dict(zip(texts, encode_texts(model, list(texts.values())), strict=True))
        arrays: dict[str, np.ndarray] = {}
        for field in FIELDS:
            if field in embeddings:
                arrays.update(masked(f"{field}_embedding", embeddings[field][None, :]))
            else:
                arrays.update(run_vector(f"{field}_embedding", EMBEDDING_DIM).empty())
        return ComponentOutput(
            arrays=arrays,
            units_processed=len(texts),
            batch_sizes=[len(texts)],
            models_used=[model.used()],
            device_used=model.device,
        )
