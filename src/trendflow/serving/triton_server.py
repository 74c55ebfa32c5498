"""Run the `tritonserver` bundled in the nvidia-pytriton wheel on a standard model repository.

The wheel ships the server binary, the Python backend and one backend stub per Python version,
but not in the layout `--backend-directory` expects, and the stub needs the running
interpreter's libpython and the venv's packages. `TritonServer` builds that layout in a
private folder, sets the environment, starts the server on loopback, waits for it, and stops it
(leaving no shared-memory regions behind). See ../shared/ENVIRONMENT.md for the facts behind it.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.serving import DEFAULT_REPOSITORY

logger = logging.getLogger(__name__)
HOST = "127.0.0.1"
SHM_PREFIX_ROOT = "trendflow_triton"


@dataclass(frozen=True)
class BundledTriton:
    """Paths inside the installed nvidia-pytriton wheel."""

    root: Path

    @classmethod
    def locate(cls) -> BundledTriton:
        spec = importlib.util.find_spec("pytriton")
        if spec is None or not spec.submodule_search_locations:
            raise TrendFlowError(
                ErrorCode.TRITON_UNAVAILABLE,
                "nvidia-pytriton is not installed; `pip install nvidia-pytriton` brings tritonserver",
            )
        root = Path(next(iter(spec.submodule_search_locations))) / "tritonserver"
        if not (root / "bin" / "tritonserver").exists():
            raise TrendFlowError(ErrorCode.TRITON_UNAVAILABLE, f"no tritonserver binary under {root}")
        return cls(root)

    @property
    def binary(self) -> Path:
        return self.root / "bin" / "tritonserver"

    @property
    def libs(self) -> Path:
        # auditwheel puts the server's shared libraries next to the package as <dist>.libs.
        return self.root.parents[1] / "nvidia_pytriton.libs"

    def stub(self) -> Path:
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        path = self.root / "python_backend_stubs" / version / "triton_python_backend_stub"
        if not path.exists():
            raise TrendFlowError(ErrorCode.TRITON_UNAVAILABLE, f"no Python backend stub for Python {version}")
        return path

    def make_backend_dir(self, target: Path) -> Path:
        """`<target>/python/` with the backend library, its utils and the stub for this Python."""
        python_dir = target / "python"
        python_dir.mkdir(parents=True, exist_ok=True)
        backend = self.root / "backends" / "python"
        for source in (
            backend / "libtriton_python.so",
            backend / "triton_python_backend_utils.py",
            self.stub(),
        ):
            shutil.copy2(source, python_dir / source.name)
        return target


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def server_environment(bundle: BundledTriton) -> dict[str, str]:
    """The stub must load this interpreter's libpython (not Debian's) and find the venv's packages."""
    env = dict(os.environ)
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    ld_paths = [str(bundle.libs), libdir, env.get("LD_LIBRARY_PATH", "")]
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in ld_paths if p)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    # One inference thread pool per model instance is set in config.pbtxt; keep BLAS from
    # oversubscribing the cores on top of it.
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


@dataclass
class TritonServer:
    """A running tritonserver; use as a context manager or call start()/stop()."""

    repository: Path = DEFAULT_REPOSITORY
    http_port: int = 0
    grpc_port: int = 0
    metrics_port: int = 0
    require_all_ready: bool = True
    startup_timeout_s: float = 120.0
    log_verbose: int = 0
    extra_args: list[str] = field(default_factory=list)
    bind_host: str = HOST  # 0.0.0.0 in a container; clients of this object still use HOST
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _workdir: Path | None = field(default=None, init=False, repr=False)
    _shm_prefix: str = field(default="", init=False, repr=False)

    @property
    def grpc_url(self) -> str:
        return f"{HOST}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    @property
    def log_path(self) -> Path | None:
        return self._workdir / "tritonserver.log" if self._workdir else None

    def log_tail(self, chars: int = 4000) -> str:
        path = self.log_path
        if path is None or not path.exists():
            return ""
        return path.read_text(errors="replace")[-chars:]

    def command(self, backend_dir: Path) -> list[str]:
        bundle = BundledTriton.locate()
        return [
            str(bundle.binary),
            f"--model-repository={Path(self.repository).resolve()}",
            f"--backend-directory={backend_dir}",
            f"--http-address={self.bind_host}",
            f"--grpc-address={self.bind_host}",
            f"--metrics-address={self.bind_host}",
            f"--http-port={self.http_port}",
            f"--grpc-port={self.grpc_port}",
            f"--metrics-port={self.metrics_port}",
            "--exit-timeout-secs=2",
            "--strict-readiness=true",
            # A broken model must not take the server down: it is reported per model.
            "--exit-on-error=false",
            f"--log-verbose={self.log_verbose}",
            f"--backend-config=python,shm-region-prefix-name={self._shm_prefix}",
            # Room for a 32-frame batch without growing the region on every request.
            "--backend-config=python,shm-default-byte-size=16777216",
            *self.extra_args,
        ]

    def start(self) -> TritonServer:
        if self._proc is not None:
            return self
        repository = Path(self.repository)
        if not repository.is_dir():
            raise TrendFlowError(ErrorCode.MODEL_NOT_FOUND, f"model repository {repository} does not exist")
        bundle = BundledTriton.locate()
        self.http_port = self.http_port or free_port()
        self.grpc_port = self.grpc_port or free_port()
        self.metrics_port = self.metrics_port or free_port()
        self._workdir = Path(tempfile.mkdtemp(prefix="trendflow-triton-"))
        self._shm_prefix = f"{SHM_PREFIX_ROOT}_{uuid.uuid4().hex[:12]}_"
        backend_dir = bundle.make_backend_dir(self._workdir / "backends")
        log = (self._workdir / "tritonserver.log").open("wb")
        logger.info("starting tritonserver on %s (repository %s)", self.grpc_url, repository)
        self._proc = subprocess.Popen(
            self.command(backend_dir),
            env=server_environment(bundle),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _get(self, path: str, method: str = "GET", timeout: float = 2.0) -> tuple[int, Any]:
        data = b"{}" if method == "POST" else None
        request = urllib.request.Request(self.http_url + path, data=data, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                body = response.read()
                return response.status, json.loads(body) if body else None
        except urllib.error.HTTPError as exc:
            return exc.code, None

    def model_states(self) -> list[dict[str, Any]]:
        """The repository index: name, version, state (READY / UNAVAILABLE / LOADING), reason."""
        _, index = self._get("/v2/repository/index", method="POST")
        return list(index or [])

    def wait_ready(self) -> None:
        """Wait until the server is live and every model has finished loading.

        With `require_all_ready` a model that failed to load is `model_load_failed`; otherwise
        the server stays up and reports that model as unavailable (what the failure tests need).
        """
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise TrendFlowError(
                    ErrorCode.TRITON_UNAVAILABLE,
                    f"tritonserver exited with code {self._proc.returncode}:\n{self.log_tail()}",
                )
            try:
                ready, _ = self._get("/v2/health/ready")
                if ready == 200:
                    return
                live, _ = self._get("/v2/health/live")
            except (OSError, urllib.error.URLError):
                time.sleep(0.2)
                continue
            if live == 200:
                states = self.model_states()
                if states and all(s.get("state") in ("READY", "UNAVAILABLE") for s in states):
                    failed = [s for s in states if s.get("state") == "UNAVAILABLE"]
                    if failed and self.require_all_ready:
                        reasons = "; ".join(f"{s['name']}: {s.get('reason', '')}" for s in failed)
                        raise TrendFlowError(ErrorCode.MODEL_LOAD_FAILED, f"models failed to load: {reasons}")
                    return
            time.sleep(0.2)
        raise TrendFlowError(
            ErrorCode.TIMEOUT,
            f"tritonserver not ready after {self.startup_timeout_s:.0f} s:\n{self.log_tail()}",
        )

    def stop(self, timeout_s: float = 15.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                # The server and its backend stubs share one process group (start_new_session).
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=timeout_s)
        if self._shm_prefix:
            for region in Path("/dev/shm").glob(f"{self._shm_prefix}*"):
                region.unlink(missing_ok=True)
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> TritonServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def running_server(repository: Path = DEFAULT_REPOSITORY, **options: Any) -> Iterator[TritonServer]:
    """For pytest session fixtures: `with running_server(repo) as server: yield server`."""
    server = TritonServer(repository=Path(repository), **options)
    with server:
        yield server
