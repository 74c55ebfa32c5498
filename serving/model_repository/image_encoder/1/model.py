"""Triton Python backend: EfficientNet-Lite0 ONNX on onnxruntime -> embedding + top-5 classes.

The same file serves every version of the model; the version folder's `weights/build.json`
(written by `trendflow models build`) names the ONNX file and its precision. The ONNX graph
takes NHWC float pixels 0..255 and does the model's own normalisation, so this file only
batches requests, runs the session and picks the top classes.
"""

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

TOP_K = 5


def _parameter(config, key, default):
    return config.get("parameters", {}).get(key, {}).get("string_value", default)


def make_session(weights_dir, config):
    """An onnxruntime session for the ONNX file named by the version's build.json."""
    build = json.loads((weights_dir / "build.json").read_text())
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(_parameter(config, "intra_op_threads", "1"))
    options.inter_op_num_threads = 1
    providers = _parameter(config, "execution_providers", "CPUExecutionProvider").split(",")
    return ort.InferenceSession(str(weights_dir / build["onnx_file"]), options, providers=providers)


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        weights_dir = Path(args["model_repository"]) / args["model_version"] / "weights"
        if not (weights_dir / "build.json").exists():
            raise pb_utils.TritonModelException(f"{weights_dir} is not built; run `trendflow models build`")
        self.session = make_session(weights_dir, config)

    def execute(self, requests):
        # The dynamic batcher hands over several requests at once: run them as one batch.
        images = [pb_utils.get_input_tensor_by_name(r, "image").as_numpy() for r in requests]
        sizes = [len(batch) for batch in images]
        pixels = np.concatenate(images).astype(np.float32)
        embedding, probs = self.session.run(["embedding", "probs"], {"image": pixels})
        top_ids = np.argsort(-probs, axis=1)[:, :TOP_K]
        top_probs = np.take_along_axis(probs, top_ids, axis=1)
        responses = []
        start = 0
        for size in sizes:
            part = slice(start, start + size)
            start += size
            responses.append(
                pb_utils.InferenceResponse(
                    output_tensors=[
                        pb_utils.Tensor("embedding", embedding[part].astype(np.float32)),
                        pb_utils.Tensor("top_class_ids", top_ids[part].astype(np.int32)),
                        pb_utils.Tensor("top_class_probs", top_probs[part].astype(np.float32)),
                    ]
                )
            )
        return responses
