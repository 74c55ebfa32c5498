"""Triton Python backend: open_nsfw ONNX on onnxruntime -> NSFW probability per frame."""

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

MEAN_BGR = np.array([104.0, 117.0, 123.0], dtype=np.float32)


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
        self.input_name = self.session.get_inputs()[0].name

    def execute(self, requests):
        images = [pb_utils.get_input_tensor_by_name(r, "image").as_numpy() for r in requests]
        sizes = [len(batch) for batch in images]
        # Centre 224 crop of the 256 frame, RGB -> BGR, minus the Caffe training mean (reference).
        pixels = np.concatenate(images)[:, 16:240, 16:240, ::-1].astype(np.float32) - MEAN_BGR
        (probs,) = self.session.run(None, {self.input_name: np.ascontiguousarray(pixels)})
        scores = probs[:, 1:2].astype(np.float32)
        responses, start = [], 0
        for size in sizes:
            part = scores[start : start + size]
            start += size
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("nsfw_score", part)]))
        return responses
