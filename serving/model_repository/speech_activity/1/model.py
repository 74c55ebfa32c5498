"""Triton Python backend: Silero VAD sequence ONNX -> speech probability per 32 ms frame.

One request = one block of 16 kHz audio (a multiple of 512 samples except at the end of the
stream), the 64 samples before it, and the LSTM state; the response carries the state on.
"""

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

FRAME = 512
CONTEXT = 64


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        weights_dir = Path(args["model_repository"]) / args["model_version"] / "weights"
        build_file = weights_dir / "build.json"
        if not build_file.exists():
            raise pb_utils.TritonModelException(f"{weights_dir} is not built; run `trendflow models build`")
        build = json.loads(build_file.read_text())
        options = ort.SessionOptions()
        threads = config.get("parameters", {}).get("intra_op_threads", {}).get("string_value", "1")
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(weights_dir / build["onnx_file"]), options, providers=["CPUExecutionProvider"]
        )

    def execute(self, requests):
        responses = []
        for request in requests:
            audio = pb_utils.get_input_tensor_by_name(request, "audio").as_numpy().astype(np.float32)
            context = pb_utils.get_input_tensor_by_name(request, "context").as_numpy().astype(np.float32)
            h = pb_utils.get_input_tensor_by_name(request, "h").as_numpy().astype(np.float32)
            c = pb_utils.get_input_tensor_by_name(request, "c").as_numpy().astype(np.float32)
            n_frames = -(-len(audio) // FRAME)
            if n_frames == 0:
                probs = np.zeros(0, np.float32)
            else:
                frames = np.zeros((n_frames, FRAME), np.float32)
                frames.reshape(-1)[: len(audio)] = audio
                contexts = np.empty((n_frames, CONTEXT), np.float32)
                contexts[0] = context
                contexts[1:] = frames[:-1, -CONTEXT:]
                block = np.concatenate((contexts, frames), axis=1)
                probs, h, c = self.session.run(["speech_probs", "hn", "cn"], {"input": block, "h": h, "c": c})
            responses.append(
                pb_utils.InferenceResponse(
                    output_tensors=[
                        pb_utils.Tensor("speech_prob", np.asarray(probs, np.float32).reshape(-1)),
                        pb_utils.Tensor("hn", np.asarray(h, np.float32)),
                        pb_utils.Tensor("cn", np.asarray(c, np.float32)),
                    ]
                )
            )
        return responses
