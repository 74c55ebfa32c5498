"""Triton Python backend: RapidOCR (PP-OCR ONNX models from `weights/`) -> text lines per frame.

Detection runs frame by frame; recognition runs only on the lines the detector found, batched
across every frame of the requests Triton's dynamic batcher delivered together. RapidOCR pads
each recognition batch to its widest line, so a line's result would depend on its batch mates;
here a line is padded to its own width, rounded up to a `PAD_STEP` bucket, and only lines of
one bucket share a batch: a frame reads the same, alone or batched with others.
"""

import json
import math
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

PAD_STEP = 2.0  # padded width / height of a recognition input rounds up to a multiple of this
REC_BATCH = 16  # lines per recognizer call


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


def padded_ratio(ratio, base_ratio):
    """Width / height the recogniser pads a line of `ratio` to: its own, bucketed, never under
    the model's."""
    return max(base_ratio, math.ceil(ratio / PAD_STEP) * PAD_STEP)


def recognize_lines(recognizer, crops):
    """(text, score) per line crop, independent of which other crops are passed with it."""
    _, height, width = recognizer.rec_image_shape[:3]
    own = [c.shape[1] / float(c.shape[0]) for c in crops]
    padded = [padded_ratio(r, width / height) for r in own]
    results = [("", 0.0)] * len(crops)
    for ratio in sorted(set(padded)):
        members = [i for i, r in enumerate(padded) if r == ratio]
        for start in range(0, len(members), REC_BATCH):
            chunk = members[start : start + REC_BATCH]
            batch = np.stack([recognizer.resize_norm_img(crops[i], ratio) for i in chunk]).astype(np.float32)
            lines, _ = recognizer.postprocess_op(
                recognizer.session(batch),
                False,
                wh_ratio_list=[own[i] for i in chunk],
                max_wh_ratio=ratio,
            )
            for i, line in zip(chunk, lines, strict=True):
                results[i] = (line[0], float(line[1]))
    return results


def run_ocr_frames(engine, frames):
    """For each RGB frame: (n, 9) float32 [corners..., score] and the n line texts."""
    from rapidocr.ch_ppocr_cls import TextClsOutput
    from rapidocr.ch_ppocr_rec import TextRecOutput
    from rapidocr.main import RapidOCRError

    detected, crops = [], []
    for rgb in frames:
        image = engine.load_img(np.ascontiguousarray(rgb[..., ::-1]))  # RapidOCR reads BGR
        img, op_record = engine.preprocess_img(image)
        try:
            frame_crops, det_res = engine.detect_and_crop(img, op_record)
        except RapidOCRError:  # no text found: nothing to recognise in this frame
            detected.append(None)
            continue
        detected.append((image, op_record, det_res, len(crops), len(frame_crops)))
        crops.extend(frame_crops)
    lines = recognize_lines(engine._load_rec_model(), crops) if crops else []
    out = []
    for item in detected:
        if item is None:
            out.append((np.zeros((0, 9), np.float32), []))
            continue
        image, op_record, det_res, start, count = item
        txts, scores = zip(*lines[start : start + count], strict=True)
        rec_res = TextRecOutput(
            imgs=crops[start : start + count], txts=txts, scores=list(scores), word_results=(None,) * count
        )
        result = engine.build_final_output(
            image, det_res, TextClsOutput(), rec_res, crops[start : start + count], op_record
        )
        if result.boxes is None or not result.txts:
            out.append((np.zeros((0, 9), np.float32), []))
            continue
        corners = np.asarray(result.boxes, np.float32).reshape(len(result.txts), 8)
        score = np.asarray(result.scores, np.float32).reshape(-1, 1)
        out.append((np.concatenate([corners, score], axis=1), list(result.txts)))
    return out


def run_ocr(engine, rgb):
    """(n, 9) float32 [corners..., score] and the n line texts of one RGB frame."""
    return run_ocr_frames(engine, [rgb])[0]


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
        # Each request is one frame ([1, H, W, 3]; frames of different sizes batch raggedly).
        images = [pb_utils.get_input_tensor_by_name(r, "image").as_numpy()[0] for r in requests]
        responses = []
        for boxes, texts in run_ocr_frames(self.engine, images):
            responses.append(
                pb_utils.InferenceResponse(
                    output_tensors=[
                        pb_utils.Tensor("boxes", boxes[np.newaxis]),
                        pb_utils.Tensor(
                            "text", np.array([[t.encode("utf-8") for t in texts]], dtype=np.object_)
                        ),
                    ]
                )
            )
        return responses
