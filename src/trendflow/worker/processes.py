"""Worker processes started from Python: local runs of the processing pipeline, tests, benchmarks.

Each `WorkerProcess` is `python -m trendflow worker ...` in its own session (process group), with
its own scratch folder and health port, so it can be stopped gracefully (SIGTERM: finish the
current job) or killed like a lost machine (SIGKILL to the whole group, pool children included).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.worker.config import WorkerSettings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WorkerProcess:
    def __init__(
        self,
        settings: WorkerSettings,
        name: str | None = None,
        concurrency: int = 1,
        queues: list[str] | None = None,
        log_dir: str | Path | None = None,
        extra_env: dict[str, str] | None = None,
        loglevel: str = "INFO",
    ) -> None:
        self.name = name or f"w{uuid.uuid4().hex[:6]}"
        self.health_port = settings.health_port if settings.health_port else free_port()
        scratch = Path(settings.scratch_root) / self.name
        self.settings = settings.model_copy(
            update={"health_port": self.health_port, "health_host": "127.0.0.1", "scratch_root": str(scratch)}
        )
        self.concurrency = concurrency
        self.queues = queues
        self.log_path = Path(log_dir or scratch.parent) / f"{self.name}.log"
        self.extra_env = extra_env or {}
        self.loglevel = loglevel
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def hostname(self) -> str:
        return f"{self.name}@{socket.gethostname()}"

    def command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "trendflow",
            "worker",
            f"--concurrency={self.concurrency}",
            f"--hostname={self.hostname}",
            f"--loglevel={self.loglevel}",
        ]
        if self.queues:
            cmd.append(f"--queues={','.join(self.queues)}")
        return cmd

    def start(self) -> WorkerProcess:
        Path(self.settings.scratch_root).mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.settings.to_env(), **self.extra_env, "PYTHONUNBUFFERED": "1"}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    def health(self, path: str = "/health", timeout_s: float = 15.0) -> tuple[int, dict[str, Any]]:
        url = f"http://127.0.0.1:{self.health_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def wait_ready(self, timeout_s: float = 60.0) -> WorkerProcess:
        """Until the Celery consumer runs (other checks may fail: e.g. no Triton for `signals`)."""
        deadline = time.monotonic() + timeout_s
        last: Any = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise TrendFlowError(ErrorCode.INTERNAL, f"worker {self.name} exited: {self.log_tail()}")
            try:
                _, body = self.health(timeout_s=10)
                last = body.get("checks", {}).get("consumer")
                if last and last.get("ok"):
                    return self
            except (OSError, ValueError) as exc:
                last = exc
            time.sleep(0.2)
        raise TrendFlowError(
            ErrorCode.TIMEOUT, f"worker {self.name} not ready in {timeout_s}s ({last}): {self.log_tail()}"
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group: the main process and its pool children, at once."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Warm shutdown (SIGTERM: the current job finishes), SIGKILL if it takes too long."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
        # Pool children left behind by a dying main process belong to the same group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


class LocalWorkers:
    """Several local workers, started together and stopped together (a context manager)."""

    def __init__(self, settings: WorkerSettings, count: int, concurrency: int = 1, **kwargs: Any) -> None:
        base = settings.model_copy(update={"health_port": 0})
        self.workers = [
            WorkerProcess(base, name=f"local{i}-{uuid.uuid4().hex[:4]}", concurrency=concurrency, **kwargs)
            for i in range(count)
        ]

    def __enter__(self) -> LocalWorkers:
        try:
            for worker in self.workers:
                worker.start()
            for worker in self.workers:
                worker.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
