"""text/transcript_embedding: multilingual-e5-small on Triton over the transcript.

One (1, 384) embedding of the whole transcript (the encoder reads its first 512 tokens) and one
per transcript chunk, aligned with the transcript's `timestamps_sec`. A transcript that is
empty (no speech, no audio track) gives a valid empty result with the transcript's reason.
The text comes from the transcript's scratch hand-over, never from an NPZ.
"""

from __future__ import annotations

import json

import numpy as np

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.dataprocessor.component import (
    Component,
    ComponentOutput,
    RunContext,
    masked,
    register,
)
from trendflow.dataprocessor.outputs import TIMESTAMPS, run_vector, vector
from trendflow.dataprocessor.processors.audio.transcript import handoff_path
from trendflow.dataprocessor.processors.text.text_embedding import EMBEDDING_DIM, encode_texts
from trendflow.serving.component_support import served_model


@register
class TranscriptEmbedding(Component):
    name = "transcript_embedding"
    processor = "text"
    schema_version = "1.0.0"
    version = "1.0.0"
    outputs = (run_vector("embedding", EMBEDDING_DIM), TIMESTAMPS, vector("chunk_embedding", EMBEDDING_DIM))

    def run(self, ctx: RunContext) -> ComponentOutput:
        model = served_model(ctx, self.spec)
        transcript, meta = ctx.dependency("transcript")
        if meta.status == "empty":
            return self.empty_output(meta.empty_reason or "empty_transcript")
        path = handoff_path(ctx)
        if not path.exists():
            raise TrendFlowError(
                ErrorCode.DEPENDENCY_MISSING,
                "the transcript text is not in this run's scratch folder (it is never stored in NPZ); "
                "recompute the transcript in the same run (process with --force)",
            )
        handoff = json.loads(path.read_text())
        chunks: list[str] = handoff["chunks"]
        if handoff.get("run_id") != ctx.identity.run_id or len(chunks) != len(transcript["timestamps_sec"]):
            raise TrendFlowError(
                ErrorCode.DEPENDENCY_MISSING, "the transcript hand-over belongs to another run"
            )
        present = [i for i, text in enumerate(chunks) if text.strip()]
        if not present:
            return self.empty_output("empty_transcript")
        texts = [" ".join(chunks[i].strip() for i in present), *(chunks[i] for i in present)]
        vectors = encode_texts(model, texts)
        per_chunk = np.full((len(chunks), EMBEDDING_DIM), np.nan, np.float32)
        per_chunk[present] = vectors[1:]
        arrays = masked("embedding", vectors[:1])
        arrays.update(masked("timestamps_sec", transcript["timestamps_sec"], dtype=np.float64))
        arrays.update(masked("chunk_embedding", per_chunk))
        return ComponentOutput(
            arrays=arrays,
            units_processed=len(texts),
            batch_sizes=[len(texts)],
            models_used=[model.used()],
            device_used=model.device,
        )
