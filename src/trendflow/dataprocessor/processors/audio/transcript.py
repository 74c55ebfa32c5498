"""audio/transcript: Whisper tiny.en on Triton over the speech segments -> speech-rate features.

The speech segments of `speech_activity` are merged into chunks of at most 30 s (Whisper's
window; gaps under `params.max_gap_sec` are bridged) and each chunk is transcribed on the
server. Per chunk: start, duration, word count, mean log-probability, no-speech probability;
overall: words, words per minute of speech and of video. No speech -> valid empty "no_speech".

The text never enters the NPZ unless the privacy policy allows raw text; for
`transcript_embedding` it is handed over in the run's scratch folder (`transcript_text.json`,
next to the frames and the audio, deleted with them).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pydantic import Field

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.dataprocessor.component import (
    Component,
    ComponentOutput,
    NoParams,
    RunContext,
    masked,
    register,
)
from trendflow.dataprocessor.outputs import TIMESTAMPS, raw_text, scalars, series
from trendflow.dataprocessor.processors.audio._track import load_audio
from trendflow.dataprocessor.processors.audio.speech_activity import VAD_RATE, to_16k
from trendflow.serving.component_support import served_model

MAX_CHUNK_SEC = 30.0
HANDOFF_FILE = "transcript_text.json"
PER_CHUNK = ("chunk_duration_sec", "word_count", "avg_logprob", "no_speech_prob")
SCALARS = ("total_words", "words_per_speech_minute", "words_per_minute")


def merge_segments(
    segments: np.ndarray, max_gap_sec: float, max_chunk_sec: float = MAX_CHUNK_SEC
) -> list[tuple[float, float]]:
    """Speech segments joined into chunks no longer than `max_chunk_sec` (long ones are split)."""
    chunks: list[list[float]] = []
    for start, end in segments:
        while end - start > max_chunk_sec:
            chunks.append([start, start + max_chunk_sec])
            start += max_chunk_sec
        if chunks and start - chunks[-1][1] <= max_gap_sec and end - chunks[-1][0] <= max_chunk_sec:
            chunks[-1][1] = end
        else:
            chunks.append([start, end])
    return [(float(s), float(e)) for s, e in chunks]


def handoff_path(ctx: RunContext) -> Path:
    if ctx.frames is None:
        raise TrendFlowError(
            ErrorCode.DEPENDENCY_MISSING, "the run context has no scratch folder (frame store)"
        )
    return Path(ctx.frames.frames_dir) / HANDOFF_FILE


class TranscriptParams(NoParams):
    max_gap_sec: float = Field(1.0, ge=0.0)


@register
class Transcript(Component):
    name = "transcript"
    processor = "audio"
    schema_version = "1.0.0"
    version = "1.0.0"
    outputs = (TIMESTAMPS, *series(*PER_CHUNK), *scalars(*SCALARS), raw_text("text"))
    Params = TranscriptParams

    def run(self, ctx: RunContext) -> ComponentOutput:
        model = served_model(ctx, self.spec)
        handoff = handoff_path(ctx)
        handoff.unlink(missing_ok=True)
        track = load_audio(ctx)
        if isinstance(track, str):
            return self.empty_output(track)
        vad, _ = ctx.dependency("speech_activity")
        segments = vad["speech_segments_sec"][vad["speech_segments_sec__mask"]]
        chunks = merge_segments(segments, self.params.max_gap_sec)
        if not chunks:
            return self.empty_output("no_speech")
        audio = to_16k(track.samples, track.sample_rate)
        rows: list[dict[str, float]] = []
        texts: list[str] = []
        for start, end in chunks:
            out = model.infer({"audio": audio[int(start * VAD_RATE) : int(end * VAD_RATE)]})
            text = out["text"].reshape(-1)[0]
            text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
            texts.append(text)
            rows.append(
                {
                    "chunk_duration_sec": end - start,
                    "word_count": float(len(text.split())),
                    "avg_logprob": float(out["avg_logprob"].reshape(-1)[0]),
                    "no_speech_prob": float(out["no_speech_prob"].reshape(-1)[0]),
                }
            )
        handoff.write_text(json.dumps({"run_id": ctx.identity.run_id, "chunks": texts}, ensure_ascii=False))
        total_words = sum(r["word_count"] for r in rows)
        speech_min = sum(r["chunk_duration_sec"] for r in rows) / 60.0
        arrays = masked("timestamps_sec", [s for s, _ in chunks], dtype=np.float64)
        for key in PER_CHUNK:
            arrays.update(masked(key, [r[key] for r in rows]))
        arrays.update(masked("total_words", np.float32(total_words)))
        arrays.update(
            masked("words_per_speech_minute", np.float32(total_words / speech_min if speech_min else np.nan))
        )
        arrays.update(masked("words_per_minute", np.float32(total_words / (track.duration_sec / 60.0))))
        keep_text = ctx.policy.keep_raw_text
        if keep_text:
            arrays.update(masked("text", np.array(texts, dtype=np.str_), dtype=np.str_))
        return ComponentOutput(
            arrays=arrays,
            units_processed=len(chunks),
            batch_sizes=[1] * len(chunks),
            models_used=[model.used()],
            device_used=model.device,
            raw_text_kept=keep_text,
        )
