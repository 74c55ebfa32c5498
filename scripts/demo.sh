#!/usr/bin/env bash
# The main job, end to end, on embedded defaults:
#   services up (Redis on loopback) -> processing through the queue (Celery workers on the bundled
#   sample videos) -> dataset (SYNTHETIC corpus joined with the processed samples) -> training
#   (CatBoost + LightGBM, MLflow) -> a prediction for one sample video.
# Everything lands under data/ (Kedro layers) and mlflow.db; services are stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export KEDRO_DISABLE_TELEMETRY=1 MLFLOW_ALLOW_FILE_STORE=true PYTHONUNBUFFERED=1
BIN=.venv/bin

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# -- services ----------------------------------------------------------------------------------
REDIS_PORT=${TRENDFLOW_DEMO_REDIS_PORT:-$($BIN/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
REDIS_DIR=$(mktemp -d /tmp/trendflow-demo-redis.XXXXXX)
cleanup() {
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$REDIS_DIR"
}
trap cleanup EXIT
say "starting Redis on 127.0.0.1:$REDIS_PORT"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes --dir "$REDIS_DIR" \
  --save '' --appendonly no --maxmemory-policy noeviction --logfile "$REDIS_DIR/redis.log"
for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
export TRENDFLOW_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"

# -- the chain ---------------------------------------------------------------------------------
say "processing: sample videos through the queue (local Celery workers, profile signals)"
$BIN/kedro run --pipeline=processing

say "dataset: SYNTHETIC corpus + processed samples -> training table"
$BIN/kedro run --pipeline=dataset

say "training: CatBoost + LightGBM per target x horizon, evaluation, MLflow"
$BIN/kedro run --pipeline=training

say "inference: forecasts for held-out videos of the table (kedro) and for the sample video (CLI)"
$BIN/kedro run --pipeline=inference
# The sample video's run already exists (processing above): this is a cache hit, then a forecast
# from its snapshot1 facts (the first row of data/01_raw/samples/sample_snapshots.csv).
$BIN/trendflow predict data/01_raw/samples/trailer_bbb.mp4 \
  --metadata data/01_raw/samples/trailer_bbb.metadata.json --platform-id local --video-id bbb_trailer \
  --profile signals --views 1850 --likes 96 --comments 14 \
  --published-at 2026-02-01T18:00:00Z --snapshot-at 2026-02-02T12:00:00Z \
  --output data/07_model_output/predictions/local/bbb_trailer/predictions.json | tail -n 1 > /dev/null

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
