#!/usr/bin/env bash
# The main job, end to end, on the real stack:
#   services up (Redis on loopback; Triton with the built models) -> processing through the queue
#   (Celery workers, `baseline` profile: signal components + Triton-served models, on the bundled
#   sample videos) -> dataset (SYNTHETIC corpus joined with the processed samples) -> training
#   (CatBoost + LightGBM, MLflow) -> predictions.
#
#   bash scripts/demo.sh             # baseline profile: builds the models once (content-cached), serves them
#   bash scripts/demo.sh --signals   # the quick variant: signal components only, no model server
#
# The dataset step joins the runs of the profile processed here (processing.profile, which
# dataset.profile follows) and builds the SYNTHETIC corpus for that profile's components.
# Training trains two of conf/base's algorithms (catboost, lightgbm) to keep the demo short;
# TRENDFLOW_DEMO_ALL_ALGORITHMS=1 trains all of them (about 15 minutes more).
#
# Everything lands under data/ (Kedro layers) and mlflow.db; services are stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=baseline
for arg in "$@"; do
  case "$arg" in
    --signals) PROFILE=signals ;;
    *) echo "usage: bash scripts/demo.sh [--signals]" >&2; exit 2 ;;
  esac
done
[ "${TRENDFLOW_DEMO_SKIP_SETUP:-0}" = 1 ] || bash scripts/setup.sh
export KEDRO_DISABLE_TELEMETRY=1 MLFLOW_ALLOW_FILE_STORE=true PYTHONUNBUFFERED=1
BIN=.venv/bin

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# -- services ----------------------------------------------------------------------------------
REDIS_PORT=${TRENDFLOW_DEMO_REDIS_PORT:-$($BIN/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
REDIS_DIR=$(mktemp -d /tmp/trendflow-demo-redis.XXXXXX)
TRITON_PID=""
cleanup() {
  if [ -n "$TRITON_PID" ]; then kill "$TRITON_PID" 2>/dev/null || true; wait "$TRITON_PID" 2>/dev/null || true; fi
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$REDIS_DIR"
}
trap cleanup EXIT
say "starting Redis on 127.0.0.1:$REDIS_PORT"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes --dir "$REDIS_DIR" \
  --save '' --appendonly no --maxmemory-policy noeviction --logfile "$REDIS_DIR/redis.log"
for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
export TRENDFLOW_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"

free_port() { $BIN/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
if [ "$PROFILE" = baseline ]; then
  say "models: build the Triton model repository (once; later runs reuse it)"
  $BIN/trendflow models build --report serving/build/models_build_report.json | tail -n 1
  GRPC_PORT=$(free_port); HTTP_PORT=$(free_port); METRICS_PORT=$(free_port)
  say "starting Triton (gRPC 127.0.0.1:$GRPC_PORT) on serving/model_repository"
  $BIN/trendflow serve-models --grpc-port "$GRPC_PORT" --http-port "$HTTP_PORT" \
    --metrics-port "$METRICS_PORT" > "$REDIS_DIR/triton.out" 2>&1 &
  TRITON_PID=$!
  for _ in $(seq 1 600); do
    grep -q '"status": "ready"' "$REDIS_DIR/triton.out" 2>/dev/null && break
    kill -0 "$TRITON_PID" 2>/dev/null || { cat "$REDIS_DIR/triton.out"; exit 1; }
    sleep 0.5
  done
  grep -q '"status": "ready"' "$REDIS_DIR/triton.out" || { echo "Triton did not become ready" >&2; exit 1; }
  export TRENDFLOW_TRITON_URL="127.0.0.1:$GRPC_PORT"
fi

# -- the chain ---------------------------------------------------------------------------------
say "processing: sample videos through the queue (local Celery workers, profile $PROFILE)"
$BIN/kedro run --pipelines=processing --params "processing.profile=$PROFILE"

say "dataset: SYNTHETIC corpus ($PROFILE components) + processed samples -> training table"
$BIN/kedro run --pipelines=dataset --params "processing.profile=$PROFILE"

say "training: CatBoost + LightGBM per target x horizon, evaluation, MLflow"
# A demo-only override: `--params` splits on commas, so the list is given as a YAML block list.
TRAINING_PARAMS=("--params" "training.algorithms=$(printf -- '- catboost\n- lightgbm')")
[ "${TRENDFLOW_DEMO_ALL_ALGORITHMS:-0}" = 1 ] && TRAINING_PARAMS=()
$BIN/kedro run --pipelines=training "${TRAINING_PARAMS[@]}"

say "inference: forecasts for held-out videos of the table (kedro) and for the sample video (CLI)"
$BIN/kedro run --pipelines=inference
# The sample video's run already exists (processing above): this is a cache hit, then a forecast
# from its snapshot1 facts (the first row of data/01_raw/samples/sample_snapshots.csv).
$BIN/trendflow predict data/01_raw/samples/trailer_bbb.mp4 \
  --metadata data/01_raw/samples/trailer_bbb.metadata.json --platform-id local --video-id bbb_trailer \
  --profile "$PROFILE" --views 1850 --likes 96 --comments 14 \
  --published-at 2026-02-01T18:00:00Z --snapshot-at 2026-02-02T12:00:00Z \
  --output data/07_model_output/predictions/local/bbb_trailer/predictions.json | tail -n 1 > /dev/null

say "summary"
$BIN/python - "$PROFILE" <<'PY'
import json, sys
from pathlib import Path
import pandas as pd

profile = sys.argv[1]
index = pd.read_parquet("data/03_primary/runs_index.parquet")
table = pd.read_parquet("data/05_model_input/training_table.parquet")
synthetic = table["synthetic"].astype(bool)
real = table[~synthetic]
print(f"  processing ({profile}): " + ", ".join(f"{k}={v}" for k, v in index["status"].value_counts().items()))
print(f"  training table: {len(table)} rows, {int(synthetic.sum())} SYNTHETIC (generated snapshots and runs, "
      f"trendflow.dataset.synthetic), {len(real)} from processed sample videos")
for row in real.itertuples():
    run = "its run joined" if row.run__present else f"no run joined ({row.run__missing_reason})"
    print(f"    {row.platform_id}/{row.video_id}: real video, SYNTHETIC snapshot counts "
          f"(data/01_raw/samples/sample_snapshots.csv), {run}")
doc = json.loads(Path("data/07_model_output/predictions/local/bbb_trailer/predictions.json").read_text())
for warning in doc.get("warnings", []):
    if warning.startswith("trained_on_synthetic_data"):
        print(f"  predictions.json warns: {warning.split(':', 1)[0]}")
PY

say "done"
cat <<MSG
  runs index        data/03_primary/runs_index.parquet
  training table    data/05_model_input/training_table.parquet (+ dataset_metadata.json)
  report            data/08_reporting/ (training_report.html, metrics tables)
  predictions       data/07_model_output/predictions/<platform>/<video>/predictions.json
                    (the sample video: data/07_model_output/predictions/local/bbb_trailer/predictions.json)
  MLflow UI         $BIN/mlflow ui --backend-store-uri sqlite:///mlflow.db   -> http://127.0.0.1:5000
  Kedro-Viz         $BIN/kedro viz run                                      -> http://127.0.0.1:4141
  notebook          notebooks/explore.ipynb
MSG
