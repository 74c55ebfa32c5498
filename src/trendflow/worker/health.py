"""A worker's health endpoints (SPEC 11), served by a small companion process of the worker.

- `GET /health/live`: the worker process is up (the companion checks its pid);
- `GET /metrics`: Prometheus metrics of the worker's processes (trendflow.worker.metrics);
- `GET /health`: every dependency a job needs, checked now, concurrently, each with a deadline:
  `broker` (Redis PING), `storage` (write, read back and delete a probe object in the result
  store), `triton` (server and every model the worker's profiles need ready; "not required"
  when none needs a model) and `consumer` (the Celery worker answers a control ping, so it is
  connected and consuming). 200 only when every check passes, 503 otherwise; the JSON body
  carries each check's latency and error.

Why a separate process and not a thread of the worker: the prefork pool forks job processes
from the worker's main process, and a fork taken while a health thread holds a lock (an import
lock, a connection pool's lock) deadlocks the child. A spawned companion shares no memory with
the worker and exits within a second when the worker dies.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import redis

from trendflow.contracts.identity import utc_now
from trendflow.dataprocessor.scratch import pid_alive
from trendflow.worker import metrics
from trendflow.worker.config import WorkerSettings

logger = logging.getLogger(__name__)
PROBE_DIR = "_health"
CHECK_TIMEOUT_S = 10.0
PROBE_S3_CONFIG = {"connect_timeout": 2, "read_timeout": 5, "retries": {"max_attempts": 1}}


@dataclass
class CheckResult:
    ok: bool
    latency_ms: float
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "latency_ms": round(self.latency_ms, 2), "error": self.error, **self.detail}


Check = Callable[[], dict[str, Any] | None]


class CheckFailed(RuntimeError):
    """A check that ran but found a problem, with the detail it gathered."""

    def __init__(self, message: str, detail: dict[str, Any]) -> None:
        super().__init__(message)
        self.detail = detail


def broker_check(settings: WorkerSettings) -> Check:
    def check() -> dict[str, Any]:
        client = redis.Redis.from_url(
            settings.redis_url,
            socket_timeout=settings.broker_timeout_s,
            socket_connect_timeout=settings.broker_timeout_s,
        )
        try:
            if not client.ping():
                raise RuntimeError("PING returned false")
            policy = client.config_get("maxmemory-policy").get("maxmemory-policy")
        finally:
            client.close()
        # An evicting Redis can silently drop queued jobs; say so (it does not fail the check).
        return {"url": settings.redacted_redis_url(), "maxmemory_policy": policy}

    return check


def storage_check(settings: WorkerSettings) -> Check:
    def check() -> dict[str, Any]:
        from trendflow.storage.store import ResultStore, s3_options_from_env

        options = None
        if settings.store_root.startswith("s3://"):
            # A probe answers within its deadline: one attempt, short timeouts (jobs keep the
            # store's own retries for blips).
            options = {**s3_options_from_env(), "config_kwargs": PROBE_S3_CONFIG}
        store = ResultStore(settings.store_root, storage_options=options)
        rel = f"{PROBE_DIR}/probe-{socket.gethostname()}-{uuid.uuid4().hex}"
        data = uuid.uuid4().bytes
        store.write_bytes(rel, data)
        try:
            if store.read_bytes(rel) != data:
                raise RuntimeError("probe object read back different bytes")
        finally:
            store.delete(rel)
        if store.exists(rel):
            raise RuntimeError("probe object still exists after delete")
        return {"store": store.root_uri}

    return check


def required_models(profiles: tuple[str, ...]) -> list[tuple[str, str]]:
    """(model_name, model_version) pairs every listed profile needs from Triton."""
    from trendflow.dataprocessor.graph import ComponentGraph

    graph = ComponentGraph.load()
    models: set[tuple[str, str]] = set()
    for name in profiles:
        for refs in graph.profile(name).model_mapping().values():
            models.update((ref["model_name"], str(ref["model_version"])) for ref in refs)
    return sorted(models)


def triton_check(settings: WorkerSettings) -> Check:
    def check() -> dict[str, Any]:
        models = required_models(settings.profiles)
        if not models:
            return {"required": False, "status": "not required", "profiles": list(settings.profiles)}
        from trendflow.serving.client import TritonClient

        client = TritonClient(settings.triton_url) if settings.triton_url else TritonClient.from_env()
        detail = client.health(models)
        if not detail.get("ok"):
            missing = [m for m, ready in detail.get("models", {}).items() if not ready]
            why = "server not live" if not detail.get("live") else f"models not ready: {', '.join(missing)}"
            raise CheckFailed(f"Triton at {client.url}: {why}", {"required": True, **detail})
        return {"required": True, **detail}

    return check


class HealthMonitor:
    """Runs the checks; the HTTP handler only formats what this returns."""

    def __init__(
        self,
        settings: WorkerSettings,
        nodename: str | None = None,
        worker_pid: int | None = None,
        checks: dict[str, Check] | None = None,
    ) -> None:
        self.settings = settings
        self.nodename = nodename
        self.worker_pid = worker_pid
        self.started_at = utc_now()
        self.checks: dict[str, Check] = checks or {
            "broker": broker_check(settings),
            "storage": storage_check(settings),
            "triton": triton_check(settings),
            "consumer": self._consumer_check,
        }
        self._pool = ThreadPoolExecutor(max_workers=len(self.checks) * 2, thread_name_prefix="health")
        self._celery: Any = None
        self._queue_length = metrics.QueueLengthCollector(
            settings.redis_url, settings.queue, timeout_s=settings.broker_timeout_s
        )

    def _consumer_check(self) -> dict[str, Any]:
        if self.nodename is None:
            raise RuntimeError("no worker node to ask (the health server runs without a worker)")
        if self._celery is None:
            from trendflow.worker.celery_app import make_celery

            self._celery = make_celery(self.settings)
        replies = self._celery.control.ping(destination=[self.nodename], timeout=2.0)
        if not any(self.nodename in reply for reply in replies or []):
            raise RuntimeError(
                f"worker {self.nodename} does not answer a control ping (starting, or disconnected)"
            )
        return {"node": self.nodename, "queue": self.settings.queue}

    def metrics(self) -> bytes:
        """Prometheus exposition of every process of this worker, plus the queue's length."""
        return metrics.render((self._queue_length,))

    def worker_alive(self) -> bool:
        return self.worker_pid is None or pid_alive(self.worker_pid)

    def run_check(self, check: Check) -> CheckResult:
        start = time.perf_counter()
        try:
            detail = check() or {}
            return CheckResult(True, (time.perf_counter() - start) * 1000, None, detail)
        except CheckFailed as exc:
            return CheckResult(False, (time.perf_counter() - start) * 1000, str(exc), exc.detail)
        except Exception as exc:
            return CheckResult(False, (time.perf_counter() - start) * 1000, f"{type(exc).__name__}: {exc}")

    def report(self, timeout_s: float = CHECK_TIMEOUT_S) -> tuple[bool, dict[str, Any]]:
        futures = {name: self._pool.submit(self.run_check, check) for name, check in self.checks.items()}
        deadline = time.monotonic() + timeout_s
        results: dict[str, dict[str, Any]] = {}
        for name, future in futures.items():
            try:
                results[name] = future.result(timeout=max(0.0, deadline - time.monotonic())).as_dict()
            except FutureTimeout:
                results[name] = CheckResult(
                    False, timeout_s * 1000, f"no answer within {timeout_s:.0f}s"
                ).as_dict()
        ok = all(r["ok"] for r in results.values())
        return ok, {
            "status": "ok" if ok else "fail",
            "worker": socket.gethostname(),
            "queue": self.settings.queue,
            "time": utc_now().isoformat(),
            "checks": results,
        }

    def live(self) -> tuple[bool, dict[str, Any]]:
        alive = self.worker_alive()
        uptime = (utc_now() - self.started_at).total_seconds()
        return alive, {
            "status": "ok" if alive else "fail",
            "worker": socket.gethostname(),
            "node": self.nodename,
            "pid": self.worker_pid,
            "uptime_sec": round(uptime, 1),
        }


def _handler(monitor: HealthMonitor) -> type[BaseHTTPRequestHandler]:
    class HealthHandler(BaseHTTPRequestHandler):
        server_version = "trendflow-health/1"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            if path == "/health/live":
                alive, body = monitor.live()
                self._send(HTTPStatus.OK if alive else HTTPStatus.SERVICE_UNAVAILABLE, body)
            elif path == "/health":
                ok, body = monitor.report()
                self._send(HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE, body)
            elif path == "/metrics":
                self._send_bytes(HTTPStatus.OK, monitor.metrics(), metrics.CONTENT_TYPE)
            else:
                self._send(
                    HTTPStatus.NOT_FOUND, {"error": f"no such endpoint {path}; try /health or /metrics"}
                )

        def _send(self, status: HTTPStatus, body: dict[str, Any]) -> None:
            self._send_bytes(status, json.dumps(body, default=str).encode(), "application/json")

        def _send_bytes(self, status: HTTPStatus, data: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds: debug only
            logger.debug("health %s", format % args)

    return HealthHandler


class HealthServer:
    """The HTTP server in a daemon thread; `port=0` picks a free port (see `.port`)."""

    def __init__(self, monitor: HealthMonitor, host: str, port: int) -> None:
        self.monitor = monitor
        self.httpd = ThreadingHTTPServer((host, port), _handler(monitor))
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="health-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)


def serve_health(settings: WorkerSettings, nodename: str, worker_pid: int) -> None:
    """The companion process: serve until the worker process is gone, then exit."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s health %(message)s")
    monitor = HealthMonitor(settings, nodename=nodename, worker_pid=worker_pid)
    server = HealthServer(monitor, settings.health_host, settings.health_port).start()
    logger.info(
        "health server on %s:%d for %s (pid %d)", settings.health_host, server.port, nodename, worker_pid
    )
    try:
        while monitor.worker_alive():
            time.sleep(1.0)
    finally:
        server.stop()
