"""compose.yaml: valid against the Compose specification's schema, and wired the way the services need."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.deploy.conftest import ROOT

LONG_RUNNING = {"redis", "minio", "postgres", "mlflow", "triton", "worker", "flower"}
ONE_SHOT = {"minio-init", "pipelines"}


def check_schema(path: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema with the Compose spec's schema it ships (offline): `docker compose config -q`'s
    schema check, without Docker."""
    cmd = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_compose_file_is_valid_against_the_compose_spec(tmp_path: Path) -> None:
    done = check_schema(ROOT / "compose.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    broken = tmp_path / "compose.yaml"
    text = (ROOT / "compose.yaml").read_text()
    broken.write_text(text.replace("    healthcheck:\n      test:", "    healthcheck:\n      tst:", 1))
    assert check_schema(broken).returncode != 0  # the check can fail


def test_services_health_checks_and_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == LONG_RUNNING | ONE_SHOT
    for name in LONG_RUNNING:
        assert services[name]["healthcheck"]["test"][0] == "CMD", name
        assert services[name]["restart"] == "unless-stopped", name
    for name in ONE_SHOT:
        assert services[name]["restart"] == "no" and "healthcheck" not in services[name]
    worker_check = " ".join(services["worker"]["healthcheck"]["test"])
    assert "/health'" in worker_check  # readiness: every dependency (the image checks /health/live)
    assert "/health/live" in (ROOT / "Dockerfile").read_text()
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, (name, dependency)
            wanted = "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            assert condition == {"condition": wanted}, (name, dependency)


def test_worker_scales_and_pipelines_run_on_minio(compose: dict[str, Any]) -> None:
    services = compose["services"]
    worker = services["worker"]
    assert "ports" not in worker and "container_name" not in worker  # `--scale worker=N` works
    assert worker["command"][:2] == ["trendflow", "worker"]
    assert worker["environment"]["TRENDFLOW_STORE"].startswith("s3://trendflow/")
    assert services["pipelines"]["command"] == ["kedro", "run", "--env=minio"]
    assert services["pipelines"]["environment"] == worker["environment"]
    # MinIO's buckets are created on start: the store's bucket and MLflow's artifact bucket.
    init = " ".join(services["minio-init"]["command"])
    store_bucket = worker["environment"]["TRENDFLOW_STORE"].split("/")[2]
    artifacts = next(a for a in services["mlflow"]["command"] if a.startswith("--artifacts-destination"))
    assert f"local/{store_bucket}" in init and f"local/{artifacts.split('//')[1].split('/')[0]}" in init
    backend = services["mlflow"]["environment"]["MLFLOW_BACKEND_STORE_URI"]
    assert backend.startswith("postgresql://mlflow:${POSTGRES_PASSWORD}@postgres:")
    assert services["flower"]["command"][:2] == ["celery", "--broker=redis://redis:6379/0"]


def test_no_secret_is_written_in_the_compose_file() -> None:
    text = (ROOT / "compose.yaml").read_text()
    for line in text.splitlines():
        match = re.match(r"\s*([A-Z_]*(PASSWORD|SECRET|_KEY)[A-Z_]*):\s*(.+)", line)
        if match:
            assert match.group(3).startswith("${"), line  # from .env, never a literal
    assert not re.search(r"://[^:/\s]+:[^$@\s]+@", text)  # no password inside a URL either
    example = (ROOT / "deploy" / "compose.env.example").read_text()
    assert "MINIO_ROOT_PASSWORD=" in example and "POSTGRES_PASSWORD=" in example
