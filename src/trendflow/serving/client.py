"""The one way the product talks to Triton: a gRPC client with batching, timeouts and typed errors.

Every failure becomes a `TrendFlowError` from the taxonomy (SPEC 9), never a silent empty
result and never an in-process fallback (SPEC 12):
- server down / connection refused / reset        -> `triton_unavailable` (transient)
- unknown model or version                        -> `model_not_found`
- model in the repository that failed to load     -> `model_load_failed` (with Triton's reason)
- allocation failures on the accelerator          -> `insufficient_gpu_memory`
- deadline exceeded                               -> `timeout` (transient)
- bad shapes or dtypes                            -> `invalid_request`
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.serving import DEFAULT_GRPC_URL, TRITON_URL_ENV

_OOM_MARKERS = (
    "out of memory",
    "cuda_error_out_of_memory",
    "cudnn_status_alloc_failed",
    "failed to allocate",
)


@dataclass(frozen=True)
class ModelInfo:
    """What the client needs from a model's config: batching limit and tensor names."""

    name: str
    version: str
    max_batch_size: int
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    device: str = "cpu"


class TritonClient:
    """Thread-safe facade over `tritonclient.grpc` (one gRPC client per thread)."""

    def __init__(self, url: str | None = None, timeout_s: float = 120.0, max_in_flight: int = 4) -> None:
        self.url = url or os.environ.get(TRITON_URL_ENV, DEFAULT_GRPC_URL)
        self.timeout_s = timeout_s
        self.max_in_flight = max(1, max_in_flight)
        self._local = threading.local()
        self._infos: dict[tuple[str, str], ModelInfo] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, **kwargs: Any) -> TritonClient:
        return cls(os.environ.get(TRITON_URL_ENV, DEFAULT_GRPC_URL), **kwargs)

    @property
    def _grpc(self) -> grpcclient.InferenceServerClient:
        client = getattr(self._local, "client", None)
        if client is None:
            client = grpcclient.InferenceServerClient(self.url)
            self._local.client = client
        return client

    # ---- health -------------------------------------------------------------------------
    def server_live(self) -> bool:
        try:
            return bool(self._grpc.is_server_live(client_timeout=5))
        except InferenceServerException:
            return False

    def server_ready(self) -> bool:
        try:
            return bool(self._grpc.is_server_ready(client_timeout=5))
        except InferenceServerException:
            return False

    def model_ready(self, name: str, version: str = "") -> bool:
        try:
            return bool(self._grpc.is_model_ready(name, version, client_timeout=5))
        except InferenceServerException:
            return False

    def health(self, models: list[tuple[str, str]] | None = None) -> dict[str, Any]:
        """For a worker's /health: server live/ready and each model's readiness, with detail."""
        live = self.server_live()
        detail: dict[str, Any] = {"url": self.url, "live": live, "ready": live and self.server_ready()}
        if models:
            detail["models"] = {f"{n}/{v}": live and self.model_ready(n, v) for n, v in models}
        detail["ok"] = bool(detail["live"]) and all(detail.get("models", {}).values())
        return detail

    def require_model(self, name: str, version: str) -> ModelInfo:
        """The model's config, or the typed error that says why it cannot be used."""
        key = (name, version)
        with self._lock:
            if key in self._infos:
                return self._infos[key]
        try:
            if not self._grpc.is_model_ready(name, version, client_timeout=10):
                raise self._not_ready_error(name, version)
            config = self._grpc.get_model_config(name, version, as_json=True, client_timeout=10)["config"]
        except InferenceServerException as exc:
            raise self.map_error(exc, name, version) from exc
        info = ModelInfo(
            name=name,
            version=version,
            max_batch_size=int(config.get("max_batch_size", 0)),
            inputs=tuple(i["name"] for i in config.get("input", [])),
            outputs=tuple(o["name"] for o in config.get("output", [])),
            device=_device(config),
        )
        with self._lock:
            self._infos[key] = info
        return info

    # ---- inference ----------------------------------------------------------------------
    def infer(self, name: str, version: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One request; for batched models the leading axis is the batch."""
        info = self.require_model(name, version)
        try:
            result = self._grpc.infer(
                name,
                _infer_inputs(inputs),
                model_version=version,
                outputs=[grpcclient.InferRequestedOutput(o) for o in info.outputs],
                client_timeout=self.timeout_s,
            )
        except InferenceServerException as exc:
            raise self.map_error(exc, name, version) from exc
        return {o: result.as_numpy(o) for o in info.outputs}

    def infer_batched(
        self, name: str, version: str, inputs: dict[str, np.ndarray], batch_size: int | None = None
    ) -> dict[str, np.ndarray]:
        """Split the leading axis into requests of at most the model's max batch size and send
        them concurrently (so the server's dynamic batcher can merge them); outputs come back
        concatenated in input order."""
        info = self.require_model(name, version)
        total = len(next(iter(inputs.values())))
        limit = info.max_batch_size or total
        step = max(1, min(batch_size or limit, limit))
        chunks = [{k: v[start : start + step] for k, v in inputs.items()} for start in range(0, total, step)]
        if not chunks:
            raise TrendFlowError(ErrorCode.INVALID_REQUEST, f"empty batch for model {name}")
        results: list[dict[str, np.ndarray] | None] = [None] * len(chunks)
        errors: list[BaseException] = []
        done = threading.Condition()
        in_flight = threading.Semaphore(self.max_in_flight)

        def on_done(i: int) -> Callable[..., None]:
            def callback(result: Any = None, error: Any = None) -> None:
                # tritonclient calls back with the keywords `result` and `error`.
                with done:
                    if error is not None:
                        errors.append(error)
                    else:
                        results[i] = {o: result.as_numpy(o) for o in info.outputs}
                    done.notify_all()
                in_flight.release()

            return callback

        for i, chunk in enumerate(chunks):
            in_flight.acquire()
            if errors:
                in_flight.release()
                break
            try:
                self._grpc.async_infer(
                    name,
                    _infer_inputs(chunk),
                    on_done(i),
                    model_version=version,
                    outputs=[grpcclient.InferRequestedOutput(o) for o in info.outputs],
                    client_timeout=self.timeout_s,
                )
            except InferenceServerException as exc:
                in_flight.release()
                raise self.map_error(exc, name, version) from exc
        with done:
            finished = done.wait_for(
                lambda: bool(errors) or all(r is not None for r in results), timeout=self.timeout_s + 5
            )
        if errors:
            error = errors[0]
            if isinstance(error, InferenceServerException):
                raise self.map_error(error, name, version) from error
            raise TrendFlowError(ErrorCode.INTERNAL, f"inference on {name}/{version} failed: {error}")
        if not finished:
            raise TrendFlowError(ErrorCode.TIMEOUT, f"{name}/{version}: no answer in {self.timeout_s:.0f} s")
        return {o: np.concatenate([r[o] for r in results if r is not None]) for o in info.outputs}

    # ---- errors -------------------------------------------------------------------------
    def _not_ready_error(self, name: str, version: str) -> TrendFlowError:
        """A model that is not ready either failed to load (it is in the index) or is unknown."""
        try:
            index = self._grpc.get_model_repository_index(as_json=True, client_timeout=10)
        except InferenceServerException as exc:
            return self.map_error(exc, name, version, check_index=False)
        entries = [m for m in index.get("models", []) if m.get("name") == name]
        entry = next((m for m in entries if m.get("version") == version), None)
        if entry is not None and entry.get("state") != "READY":
            reason = entry.get("reason", "")
            code = _oom_code(reason) or ErrorCode.MODEL_LOAD_FAILED
            return TrendFlowError(
                code, f"model {name} version {version} is {entry.get('state')}: {reason}", model=name
            )
        known = ", ".join(sorted({m["name"] for m in index.get("models", [])})) or "none"
        what = f"version {version} of model {name}" if entries else f"model {name}"
        return TrendFlowError(
            ErrorCode.MODEL_NOT_FOUND,
            f"{what} is not in the Triton repository at {self.url} (models: {known})",
            model=name,
        )

    def map_error(
        self, exc: InferenceServerException, name: str, version: str, check_index: bool = True
    ) -> TrendFlowError:
        status = str(exc.status() or "")
        message = str(exc.message() or exc)
        where = f"{name}/{version} at {self.url}"
        if _oom_code(message):
            return TrendFlowError(ErrorCode.INSUFFICIENT_GPU_MEMORY, f"{where}: {message}")
        if "UNAVAILABLE" in status or "failed to connect" in message.lower():
            return TrendFlowError(
                ErrorCode.TRITON_UNAVAILABLE, f"Triton server unreachable at {self.url}: {message}"
            )
        if "DEADLINE_EXCEEDED" in status or "deadline exceeded" in message.lower():
            return TrendFlowError(ErrorCode.TIMEOUT, f"{where}: no answer in {self.timeout_s:.0f} s")
        if "NOT_FOUND" in status or "unknown model" in message.lower() or "not ready" in message.lower():
            return (
                self._not_ready_error(name, version)
                if check_index
                else TrendFlowError(ErrorCode.MODEL_NOT_FOUND, f"{where}: {message}")
            )
        if "INVALID_ARGUMENT" in status:
            return TrendFlowError(ErrorCode.INVALID_REQUEST, f"{where}: {message}")
        return TrendFlowError(ErrorCode.COMPONENT_FAILED, f"{where}: [{status}] {message}")


def _device(config: dict[str, Any]) -> str:
    """Where the model's instances run: "gpu" when any instance group is KIND_GPU."""
    kinds = {group.get("kind", "KIND_CPU") for group in config.get("instance_group", [])}
    return "gpu" if "KIND_GPU" in kinds else "cpu"


def _oom_code(text: str) -> ErrorCode | None:
    lowered = text.lower()
    return ErrorCode.INSUFFICIENT_GPU_MEMORY if any(m in lowered for m in _OOM_MARKERS) else None


def _infer_inputs(arrays: dict[str, np.ndarray]) -> list[grpcclient.InferInput]:
    inputs = []
    for key, value in arrays.items():
        array = np.ascontiguousarray(value)
        tensor = grpcclient.InferInput(key, list(array.shape), np_to_triton_dtype(array.dtype))
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    return inputs


@cache
def shared_client(url: str | None = None) -> TritonClient:
    """One client per URL per process (workers reuse its channels across runs)."""
    return TritonClient(url)
