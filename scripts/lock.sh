#!/usr/bin/env bash
# Refreshes the dependency lock from pyproject.toml: THE one command to run after changing any
# dependency (then commit requirements/). `bash scripts/lock.sh --upgrade` moves every pin to the
# newest allowed version; without it, pins already in the lock are kept where still allowed.
#
# Writes, with sha256 hashes for `pip install --require-hashes`:
#   requirements/lock.txt     runtime + dev + models + ops + tuning extras (Python 3.11, Linux x86_64, glibc >= 2.35)
#   requirements/runtime.txt  runtime + ops extra only (the container image), same pins as lock.txt
#   requirements/no-deps.txt  requirements/no-deps.in, installed with --no-deps
# Inputs: pyproject.toml, requirements/constraints.txt (torch CPU), requirements/no-deps.in.
# scripts/check_lock.py (run by CI) fails when these inputs changed after the last refresh.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9
TORCH_FIND_LINKS=${TORCH_FIND_LINKS:-/opt/wheels}
[ -d "$TORCH_FIND_LINKS" ] || TORCH_FIND_LINKS=https://download.pytorch.org/whl/cpu/torch/

# uv (pinned) in a venv of its own, made on first use; UV=/path/to/uv uses another.
tools=.cache/lock-tools
if [ -z "${UV:-}" ] && [ ! -x "$tools/bin/uv" ]; then
  python3 -m venv "$tools"
  "$tools/bin/python" -m pip install -q "uv==$UV_VERSION"
fi
UV=${UV:-$tools/bin/uv}
PYTHON=${PYTHON:-$([ -x "$tools/bin/python" ] && echo "$tools/bin/python" || echo python3)}

common=(
  --python-version 3.11 --python-platform x86_64-manylinux_2_35
  --generate-hashes --no-annotate --quiet
  --index-url https://pypi.org/simple --find-links "$TORCH_FIND_LINKS"
  --custom-compile-command "bash scripts/lock.sh"
)
"$UV" pip compile pyproject.toml --extra dev --extra models --extra ops --extra tuning \
  -c requirements/constraints.txt "${common[@]}" "$@" -o requirements/lock.txt
"$UV" pip compile pyproject.toml --extra ops \
  -c requirements/constraints.txt -c requirements/lock.txt "${common[@]}" -o requirements/runtime.txt
"$UV" pip compile requirements/no-deps.in --no-deps "${common[@]}" "$@" -o requirements/no-deps.txt
"$PYTHON" scripts/check_lock.py --stamp
for f in requirements/{lock,runtime,no-deps}.txt; do echo "[lock] $f: $(grep -c '==' "$f") pins"; done
