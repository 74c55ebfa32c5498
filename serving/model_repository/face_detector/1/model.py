"""Triton Python backend: MTCNN faces per frame (P/R/O-Net ONNX on onnxruntime + the cascade)."""

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mtcnn_cascade import detect

MAX_FACES = 16


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        weights_dir = Path(args["model_repository"]) / args["model_version"] / "weights"
        if not (weights_dir / "build.json").exists():
            raise pb_utils.TritonModelException(f"{weights_dir} is not built; run `trendflow models build`")
        options = ort.SessionOptions()
        threads = config.get("parameters", {}).get("intra_op_threads", {}).get("string_value", "1")
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        self.nets = [
            ort.InferenceSession(
                str(weights_dir / f"{name}.onnx"), options, providers=["CPUExecutionProvider"]
            )
            for name in ("pnet", "rnet", "onet")
        ]

    def execute(self, requests):
        responses = []
        # Requests in one execute() may differ in frame size; detect() wants one size per call.
        for request in requests:
            images = pb_utils.get_input_tensor_by_name(request, "image").as_numpy()
            faces = detect(images, *self.nets)
            boxes = np.full((len(images), MAX_FACES, 5), np.nan, np.float32)
            counts = np.zeros((len(images), 1), np.int32)
            for i, found in enumerate(faces):
                areas = (found[:, 2] - found[:, 0]) * (found[:, 3] - found[:, 1])
                ordered = found[np.argsort(-areas, kind="stable")][:MAX_FACES]
                boxes[i, : len(ordered)] = ordered
                counts[i, 0] = len(found)
            responses.append(
                pb_utils.InferenceResponse(
                    output_tensors=[pb_utils.Tensor("boxes", boxes), pb_utils.Tensor("face_count", counts)]
                )
            )
        return responses
