#!/usr/bin/env bash
# Runs the test suite on a fresh machine: installs what is missing (scripts/setup.sh), builds the
# served models once (cached), then pytest. The tests start their own real services on loopback
# (redis-server, moto's S3 server, the bundled tritonserver) and stop them afterwards.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow" tests/storage`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# pyproject.toml and the lock (requirements/) must agree: `bash scripts/lock.sh` refreshes it.
.venv/bin/python scripts/check_lock.py
export KEDRO_DISABLE_TELEMETRY=1 MLFLOW_ALLOW_FILE_STORE=true PYTHONUNBUFFERED=1
if [ -f scripts/build_models.sh ]; then bash scripts/build_models.sh; fi
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
# kedro-mlflow and MLflow keep process-wide state (exported MLFLOW_* variables, stores cached by
# URI), so the training pipeline's end-to-end MLflow tests run in a process of their own.
isolated=tests/pipelines/training
if [ "$#" -eq 0 ] || [[ "$*" != *tests/* ]]; then
  .venv/bin/python -m pytest --ignore="$isolated" "$@"
  exec .venv/bin/python -m pytest "$isolated" "$@"
fi
exec .venv/bin/python -m pytest "$@"
