#!/usr/bin/env bash
# Installs everything TrendFlow needs on a fresh Debian/Ubuntu machine (idempotent):
# system packages (ffmpeg, redis-server), a virtual environment in .venv, the locked dependencies
# (requirements/lock.txt: runtime, dev, models and ops extras) and the project itself.
# Re-running it is cheap: it skips what is already there.
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

# Python packages come from the lock (requirements/, refreshed by `bash scripts/lock.sh`): exact
# versions, every file checked against its sha256. torch is the CPU build (+cpu) from the local
# wheel folder or the PyTorch CPU index, never PyPI's CUDA build.
PIP_VERSION=26.3
stamp=.venv/.trendflow-installed
want=$(cat pyproject.toml requirements/lock.txt requirements/no-deps.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[setup] installing Python packages from requirements/lock.txt (about a minute on a fresh machine)"
  .venv/bin/python scripts/check_lock.py
  .venv/bin/python -m pip install -q "pip==$PIP_VERSION"
  .venv/bin/python -m pip install -q --require-hashes --no-deps -r requirements/lock.txt
  # Their declared dependencies would pull a CUDA torch or stale pins; what they need is locked.
  .venv/bin/python -m pip install -q --require-hashes --no-deps -r requirements/no-deps.txt
  .venv/bin/python -m pip install -q --no-deps -e .
  # pip check, except the --no-deps packages' own declarations (which is why they are --no-deps).
  nodeps=$(grep -oE '^[A-Za-z0-9_.-]+==' requirements/no-deps.in | tr -d '=' | paste -sd'|')
  broken=$(.venv/bin/python -m pip check 2>&1 | grep -vE "^($nodeps) " | grep -v '^No broken requirements' || true)
  if [ -n "$broken" ]; then echo "[setup] pip check failed:"; echo "$broken"; exit 1; fi
  echo "$want" > "$stamp"
fi
export KEDRO_DISABLE_TELEMETRY=1
echo "[setup] ready: $(.venv/bin/python -c 'import trendflow, numpy; print("trendflow", trendflow.__name__, "numpy", numpy.__version__)')"
