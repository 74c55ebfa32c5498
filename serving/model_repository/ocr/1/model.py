"""Triton Python backend: RapidOCR (PP-OCR ONNX models from `weights/`) -> text lines per frame."""

import json
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils


def engine_params(weights_dir, threads, limit_side_len):
    """RapidOCR settings: the copied model files, quiet logs, bounded detector input, no angle classifier."""
    return {
        "Global.log_level": "error",
        # On-screen text in video is upright; the 180-degree classifier only costs time.
        "Global.use_cls": False,
        "Det.model_path": str(weights_dir / "det.onnx"),
        "Rec.model_path": str(weights_dir / "rec.onnx"),
        "Cls.model_path": str(weights_dir / "cls.onnx"),
        "Det.limit_type": "max",
        "Det.limit_side_len": int(limit_side_len),
        "EngineConfig.onnxruntime.intra_op_num_threads": int(threads),
        "EngineConfig.onnxruntime.inter_op_num_threads": 1,
    }


def run_ocr(engine, rgb):
    """(n, 9) float32 [corners..., score] and the n line texts of one RGB frame."""
    result = engine(np.ascontiguousarray(rgb[..., ::-1]))  # RapidOCR reads OpenCV's BGR order
    if result.boxes is None or not result.txts:
        return np.zeros((0, 9), np.float32), []
    corners = np.asarray(result.boxes, np.float32).reshape(len(result.txts), 8)
    scores = np.asarray(result.scores, np.float32).reshape(-1, 1)
    return np.concatenate([corners, scores], axis=1), list(result.txts)


class TritonPythonModel:
    def initialize(self, args):
        from rapidocr import RapidOCR

        config = json.loads(args["model_config"])
        weights_dir = Path(args["model_repository"]) / args["model_version"] / "weights"
        if not (weights_dir / "build.json").exists():
            raise pb_utils.TritonModelException(f"{weights_dir} is not built; run `trendflow models build`")
        params = config.get("parameters", {})
        threads = params.get("intra_op_threads", {}).get("string_value", "1")
        limit = params.get("limit_side_len", {}).get("string_value", "736")
        self.engine = RapidOCR(params=engine_params(weights_dir, threads, limit))

    def execute(self, requests):
        responses = []
        for request in requests:
            image = pb_utils.get_input_tensor_by_name(request, "image").as_numpy()
            boxes, texts = run_ocr(self.engine, image)
            responses.append(
                pb_utils.InferenceResponse(
                    output_tensors=[
                        pb_utils.Tensor("boxes", boxes),
                        pb_utils.Tensor(
                            "text", np.array([t.encode("utf-8") for t in texts], dtype=np.object_)
                        ),
                    ]
                )
            )
        return responses
