# syntax=docker/dockerfile:1.7
# TrendFlow CPU image: the queue worker, the Kedro pipelines, the bundled Triton server (CPU, the
# nvidia-pytriton wheel), Flower and the MLflow tracking server all run from this one image, each
# with its own command (compose.yaml, deploy/k8s/). docs/deploy.md explains how to build and run it.
#
#   docker build -t trendflow:0.1.0 .                    # or: podman build -t trendflow:0.1.0 .
#
# Stages:
#   base     Debian 12 + Python 3.11 (the CI platform), ffmpeg, an unprivileged user
#   models   the full lock (torch CPU, export tools) -> `trendflow models build`: the ONNX model
#            repository is built here, verified, and only its files reach the final image
#   venv     the runtime lock only (requirements/runtime.txt: no torch, no dev tools)
#   runtime  base + venv + project + built model repository; runs as uid 10001
#
# Every Python package is installed from the hashed lock (`--require-hashes`). torch is the CPU
# build 2.13.0+cpu: pip finds it at TORCH_FIND_LINKS (the PyTorch CPU wheel index by default; a
# local folder such as /opt/wheels works with `--build-context`/a bind mount too).

ARG BASE_IMAGE=docker.io/library/debian:bookworm-slim

FROM ${BASE_IMAGE} AS base
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    KEDRO_DISABLE_TELEMETRY=1 \
    MLFLOW_ALLOW_FILE_STORE=true
# libpython3.11: Triton's Python-backend stub links against the shared libpython.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11 python3.11-venv libpython3.11 ca-certificates ffmpeg tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 trendflow \
    && useradd --system --uid 10001 --gid trendflow --home-dir /app --shell /usr/sbin/nologin trendflow
WORKDIR /app

FROM base AS models
ARG TORCH_FIND_LINKS=https://download.pytorch.org/whl/cpu/torch/
ARG PIP_VERSION=26.3
COPY requirements/ requirements/
RUN python3.11 -m venv /opt/build-venv \
    && /opt/build-venv/bin/pip install -q "pip==${PIP_VERSION}" \
    && /opt/build-venv/bin/pip install -q --require-hashes --no-deps --find-links "${TORCH_FIND_LINKS}" -r requirements/lock.txt \
    && /opt/build-venv/bin/pip install -q --require-hashes --no-deps -r requirements/no-deps.txt
COPY pyproject.toml README.md component_graph.yaml ./
COPY src/ src/
COPY serving/ serving/
RUN /opt/build-venv/bin/pip install -q --no-deps -e . \
    && /opt/build-venv/bin/trendflow models build --report serving/build/models_build_report.json

FROM base AS venv
ARG PIP_VERSION=26.3
COPY requirements/runtime.txt requirements/runtime.txt
RUN python3.11 -m venv /opt/venv \
    && /opt/venv/bin/pip install -q "pip==${PIP_VERSION}" \
    && /opt/venv/bin/pip install -q --require-hashes --no-deps -r requirements/runtime.txt
COPY pyproject.toml README.md ./
COPY src/ src/
RUN /opt/venv/bin/pip install -q --no-deps -e .

FROM base AS runtime
LABEL org.opencontainers.image.title="trendflow" \
      org.opencontainers.image.description="TrendFlow worker, pipelines and CPU model server" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:$PATH \
    TRENDFLOW_HEALTH_HOST=0.0.0.0 \
    TRENDFLOW_HEALTH_PORT=8765 \
    TRENDFLOW_SCRATCH=/scratch \
    KEDRO_LOGGING_CONFIG=/app/conf/logging.yml \
    NUMBA_CACHE_DIR=/tmp/numba-cache \
    MPLCONFIGDIR=/tmp/matplotlib \
    HOME=/app
COPY --from=venv /opt/venv /opt/venv
COPY --chown=trendflow:trendflow pyproject.toml README.md component_graph.yaml ./
COPY --chown=trendflow:trendflow src/ src/
COPY --chown=trendflow:trendflow conf/ conf/
# The sample videos and list the processing pipeline reads by default (the rest of data/ lives on MinIO).
COPY --chown=trendflow:trendflow data/01_raw/samples/ data/01_raw/samples/
COPY --from=models --chown=trendflow:trendflow /app/serving/ serving/
RUN mkdir -p /scratch data \
    && chown -R trendflow:trendflow /scratch data \
    && printf 'consent: false\n' > .telemetry
USER 10001:10001
EXPOSE 8765 8000 8001 8002
# The worker's liveness endpoint; other commands (pipelines, triton, mlflow) define their own.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('TRENDFLOW_HEALTH_PORT', '8765')}/health/live\", timeout=4)"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["trendflow", "worker", "--concurrency=1"]
