"""The health server over real HTTP, against a real Redis, a real store (local and S3), Triton absent."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.fixtures.queue import RedisServer
from trendflow.storage.store import ResultStore
from trendflow.worker.config import WorkerSettings
from trendflow.worker.health import PROBE_DIR, HealthMonitor, HealthServer
from trendflow.worker.processes import free_port


def get(port: int, path: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def serve():
    servers: list[HealthServer] = []

    def start(settings: WorkerSettings, **checks: Any) -> HealthServer:
        monitor = HealthMonitor(settings)
        monitor.checks.update(checks)
        servers.append(HealthServer(monitor, "127.0.0.1", 0).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def test_all_checks_pass_on_local_and_s3_stores(
    serve, redis_server: RedisServer, store: ResultStore, monkeypatch: pytest.MonkeyPatch, s3_options: dict
) -> None:
    monkeypatch.setenv("TRENDFLOW_S3_ENDPOINT_URL", s3_options["endpoint_url"])
    monkeypatch.setenv("TRENDFLOW_S3_KEY", s3_options["key"])
    monkeypatch.setenv("TRENDFLOW_S3_SECRET", s3_options["secret"])
    settings = WorkerSettings(redis_url=redis_server.url(), store_root=store.root_uri, profiles=("signals",))
    # The consumer check pings a worker node; without one it fails (tests/worker/test_tasks.py
    # checks it against a real worker), so this test stands in a passing one for it.
    server = serve(settings, consumer=lambda: {"node": "stand-in"})
    status, body = get(server.port, "/health")
    assert status == 200, body
    assert body["status"] == "ok"
    checks = body["checks"]
    assert set(checks) == {"broker", "storage", "triton", "consumer"}
    assert all(c["ok"] and c["error"] is None and c["latency_ms"] >= 0 for c in checks.values())
    assert checks["broker"]["maxmemory_policy"] == "noeviction"
    assert checks["triton"]["required"] is False and checks["triton"]["status"] == "not required"
    assert store.listdir(PROBE_DIR) == []  # the probe object was deleted
    assert s3_options["secret"] not in json.dumps(body)


def test_live_answers_while_dependencies_are_down(serve, tmp_path) -> None:
    dead_port = free_port()
    settings = WorkerSettings(
        redis_url=f"redis://127.0.0.1:{dead_port}/0",
        store_root=str(tmp_path / "s"),
        broker_timeout_s=1,
        profiles=("signals",),
    )
    server = serve(settings)
    status, body = get(server.port, "/health/live")
    assert status == 200 and body["status"] == "ok"
    status, body = get(server.port, "/health")
    assert status == 503 and body["status"] == "fail"
    assert not body["checks"]["broker"]["ok"]
    assert "Connection" in body["checks"]["broker"]["error"]
    assert body["checks"]["storage"]["ok"]
    assert not body["checks"]["consumer"]["ok"] and "no worker node" in body["checks"]["consumer"]["error"]
    assert get(server.port, "/nope")[0] == 404


def test_live_fails_when_the_worker_process_is_gone(tmp_path) -> None:
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    monitor = HealthMonitor(WorkerSettings(store_root=str(tmp_path)), nodename="n@h", worker_pid=child.pid)
    server = HealthServer(monitor, "127.0.0.1", 0).start()
    try:
        status, body = get(server.port, "/health/live")
    finally:
        server.stop()
    assert status == 503 and body["status"] == "fail" and body["pid"] == child.pid


def test_storage_down_fails_the_storage_check(
    serve, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRENDFLOW_S3_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("TRENDFLOW_S3_KEY", "k")
    monkeypatch.setenv("TRENDFLOW_S3_SECRET", "s")
    settings = WorkerSettings(
        redis_url=redis_server.url(), store_root="s3://nowhere/results", profiles=("signals",)
    )
    status, body = get(serve(settings).port, "/health")
    assert status == 503
    storage = body["checks"]["storage"]
    assert not storage["ok"] and "storage_unavailable" in storage["error"]
    assert body["checks"]["broker"]["ok"]


def test_triton_required_by_the_profile_and_down(serve, redis_server: RedisServer, tmp_path) -> None:
    settings = WorkerSettings(
        redis_url=redis_server.url(),
        store_root=str(tmp_path / "s"),
        profiles=("baseline",),
        triton_url=f"127.0.0.1:{free_port()}",
    )
    status, body = get(serve(settings).port, "/health")
    assert status == 503
    triton = body["checks"]["triton"]
    assert triton["ok"] is False and triton["required"] is True
    assert "not live" in triton["error"]
    assert any(name.startswith("image_encoder/") for name in triton["models"])
