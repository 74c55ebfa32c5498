"""Triton Python backend: faster-whisper (CTranslate2 int8 Whisper tiny.en) -> text per chunk."""

import json
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

MODEL_DIR = "whisper"


def load_model(model_path, cpu_threads):
    from faster_whisper import WhisperModel

    return WhisperModel(str(model_path), device="cpu", compute_type="int8", cpu_threads=int(cpu_threads))


def transcribe(model, audio, language):
    """(text, mean avg_logprob, max no_speech_prob) of one 16 kHz chunk; greedy, deterministic."""
    if len(audio) == 0:
        return "", float("nan"), float("nan")
    segments, _ = model.transcribe(
        np.asarray(audio, np.float32),
        language=language,
        beam_size=1,
        temperature=0.0,
        vad_filter=False,
        condition_on_previous_text=False,
        without_timestamps=True,
    )
    segments = list(segments)
    if not segments:
        return "", float("nan"), float("nan")
    text = " ".join(s.text.strip() for s in segments).strip()
    return (
        text,
        float(np.mean([s.avg_logprob for s in segments])),
        float(max(s.no_speech_prob for s in segments)),
    )


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        weights_dir = Path(args["model_repository"]) / args["model_version"] / "weights"
        if not (weights_dir / "build.json").exists():
            raise pb_utils.TritonModelException(f"{weights_dir} is not built; run `trendflow models build`")
        params = config.get("parameters", {})
        self.language = params.get("language", {}).get("string_value", "en")
        self.model = load_model(
            weights_dir / MODEL_DIR, params.get("cpu_threads", {}).get("string_value", "1")
        )

    def execute(self, requests):
        responses = []
        for request in requests:
            audio = pb_utils.get_input_tensor_by_name(request, "audio").as_numpy().reshape(-1)
            text, logprob, no_speech = transcribe(self.model, audio, self.language)
            responses.append(
                pb_utils.InferenceResponse(
                    output_tensors=[
                        pb_utils.Tensor("text", np.array([text.encode("utf-8")], dtype=np.object_)),
                        pb_utils.Tensor("avg_logprob", np.array([logprob], np.float32)),
                        pb_utils.Tensor("no_speech_prob", np.array([no_speech], np.float32)),
                    ]
                )
            )
        return responses
