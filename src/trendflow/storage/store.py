"""The one storage adapter: local folders and s3:// (MinIO, moto) through fsspec.

Every path the rest of the code uses is relative to the store root, with "/" separators.
Writes are atomic: locally a temp file in the same folder plus `os.replace`; on S3 a single
PUT, which S3 makes visible all at once. Connection failures become `storage_unavailable`
(transient), so the queue retries them.

Every S3 call is bounded (`StorageLimits`): connect and read timeouts, a few attempts with
backoff, and a total deadline per operation. After one operation found the endpoint dead or
hung, the store fails fast for a cool-down instead of waiting out the deadline again, so a run,
a job or a pipeline step ends with `storage_unavailable` well within a minute.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.storage.layout import TMP_MARKER

MIN_THROUGHPUT = 2_000_000  # bytes/s a healthy store sustains: large writes get this much longer

# Exceptions that mean "the store cannot be reached", as opposed to "this object is absent".
_UNAVAILABLE = (ConnectionError, TimeoutError, OSError)


@dataclass(frozen=True)
class StorageLimits:
    """Bounds of one S3 operation; TRENDFLOW_S3_{CONNECT_TIMEOUT,READ_TIMEOUT,DEADLINE,COOLDOWN}_S
    and TRENDFLOW_S3_ATTEMPTS override them."""

    connect_timeout_s: float = 5.0
    read_timeout_s: float = 10.0
    attempts: int = 3  # per operation, with exponential backoff (botocore "standard" mode)
    deadline_s: float = 30.0  # the whole operation, retries included
    cooldown_s: float = 30.0  # fail fast for this long after the endpoint was found dead

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> StorageLimits:
        env = dict(os.environ if env is None else env)
        names = {
            "connect_timeout_s": "TRENDFLOW_S3_CONNECT_TIMEOUT_S",
            "read_timeout_s": "TRENDFLOW_S3_READ_TIMEOUT_S",
            "deadline_s": "TRENDFLOW_S3_DEADLINE_S",
            "cooldown_s": "TRENDFLOW_S3_COOLDOWN_S",
        }
        values: dict[str, Any] = {}
        try:
            for field_name, var in names.items():
                if env.get(var):
                    values[field_name] = float(env[var])
            if env.get("TRENDFLOW_S3_ATTEMPTS"):
                values["attempts"] = int(env["TRENDFLOW_S3_ATTEMPTS"])
        except ValueError as exc:
            raise TrendFlowError(ErrorCode.CONFIG_ERROR, f"bad TRENDFLOW_S3_* bound: {exc}") from exc
        limits = cls(**values)
        bounds = (limits.connect_timeout_s, limits.read_timeout_s, limits.deadline_s)
        if min(bounds) <= 0 or limits.attempts < 1:
            raise TrendFlowError(ErrorCode.CONFIG_ERROR, "TRENDFLOW_S3_* bounds must be positive")
        return limits


def bounded_s3_options(options: dict[str, Any], limits: StorageLimits | None = None) -> dict[str, Any]:
    """s3fs options with the timeouts and retry budget of `limits` (explicit settings win)."""
    limits = limits or StorageLimits.from_env()
    config = {
        "connect_timeout": limits.connect_timeout_s,
        "read_timeout": limits.read_timeout_s,
        "retries": {"max_attempts": limits.attempts, "mode": "standard"},
        **dict(options.get("config_kwargs") or {}),
    }
    return {**options, "config_kwargs": config}


def s3_options_from_env(env: dict[str, str] | None = None) -> dict[str, Any]:
    """Storage options for s3:// from TRENDFLOW_S3_* / AWS_* variables; secrets never logged."""
    env = dict(os.environ if env is None else env)
    options: dict[str, Any] = {}
    key = env.get("TRENDFLOW_S3_KEY") or env.get("AWS_ACCESS_KEY_ID")
    secret = env.get("TRENDFLOW_S3_SECRET") or env.get("AWS_SECRET_ACCESS_KEY")
    endpoint = env.get("TRENDFLOW_S3_ENDPOINT_URL") or env.get("AWS_ENDPOINT_URL")
    if key:
        options["key"] = key
    if secret:
        options["secret"] = secret
    if endpoint:
        options["endpoint_url"] = endpoint
    return options


class ResultStore:
    """A root (local folder or s3://bucket/prefix) and atomic, relative-path I/O under it."""

    def __init__(
        self, root: str, storage_options: dict[str, Any] | None = None, limits: StorageLimits | None = None
    ) -> None:
        protocol, _ = fsspec.core.split_protocol(root)
        self.protocol = protocol or "file"
        self.limits = limits or StorageLimits.from_env()
        self._down_until = 0.0
        self._down_reason = ""
        if self.protocol == "s3" and storage_options is None:
            storage_options = s3_options_from_env()
        options = dict(storage_options or {})
        if self.protocol == "s3":
            # Fresh listings every time: another worker may have written since.
            options.setdefault("use_listings_cache", False)
            options.setdefault("skip_instance_cache", True)
            options = bounded_s3_options(options, self.limits)
        try:
            self.fs: fsspec.AbstractFileSystem = fsspec.filesystem(self.protocol, **options)
        except (ValueError, ImportError) as exc:
            raise TrendFlowError(ErrorCode.INVALID_REQUEST, f"unusable store {root!r}: {exc}") from exc
        if self.protocol == "s3":
            self.fs.retries = self.limits.attempts  # s3fs' own retry loop around botocore's
        self._root = self.fs._strip_protocol(root).rstrip("/")
        self.root_uri = root.rstrip("/") if protocol else os.path.abspath(root)
        self.is_local = isinstance(self.fs, LocalFileSystem)
        if self.is_local:
            with self._guard("create", ""):
                if os.path.exists(self._root) and not os.path.isdir(self._root):
                    raise NotADirectoryError(f"{self._root} is a file, not a folder")
                os.makedirs(self._root, exist_ok=True)
                if not os.access(self._root, os.W_OK | os.X_OK):
                    raise PermissionError(f"{self._root} is not writable")

    def __repr__(self) -> str:
        return f"ResultStore({self.root_uri!r})"

    # -- paths -----------------------------------------------------------------------------
    def full_path(self, rel: str) -> str:
        rel = rel.strip("/")
        if rel.startswith("..") or "/../" in f"/{rel}/":
            raise TrendFlowError(ErrorCode.INVALID_REQUEST, f"path {rel!r} escapes the store")
        return posixpath.join(self._root, rel) if rel else self._root

    def uri(self, rel: str) -> str:
        """A path a user can paste: absolute locally, s3://... on S3."""
        path = self.full_path(rel)
        return path if self.is_local else f"{self.protocol}://{path}"

    def local_path(self, rel: str) -> str:
        if not self.is_local:
            raise TrendFlowError(ErrorCode.INTERNAL, f"{self.root_uri} is not a local store")
        return self.full_path(rel)

    # -- guarded calls ---------------------------------------------------------------------
    @contextmanager
    def _guard(self, action: str, rel: str) -> Iterator[None]:
        if self._down_until and time.monotonic() < self._down_until:
            raise TrendFlowError(
                ErrorCode.STORAGE_UNAVAILABLE,
                f"cannot {action} {self._uri_or_root(rel)}: store found unavailable moments ago "
                f"({self._down_reason})",
            )
        try:
            yield
        except FileNotFoundError as exc:
            if action == "create":
                raise self._unavailable(action, rel, exc) from exc
            raise
        except TrendFlowError:
            raise
        except _UNAVAILABLE as exc:
            raise self._unavailable(action, rel, exc) from exc
        except Exception as exc:  # botocore/aiohttp errors do not share a base class
            if _looks_like_connection_error(exc):
                raise self._unavailable(action, rel, exc) from exc
            raise

    def _unavailable(self, action: str, rel: str, exc: BaseException) -> TrendFlowError:
        reason = f"{type(exc).__name__}: {exc}".rstrip(": ")
        if isinstance(exc, TimeoutError) and not str(exc):
            reason = f"no answer within {self.limits.deadline_s:g} s"
        if not self.is_local_protocol:
            # A dead or hung endpoint: do not wait out the deadline again on the next call.
            self._down_until = time.monotonic() + self.limits.cooldown_s
            self._down_reason = reason
        return TrendFlowError(
            ErrorCode.STORAGE_UNAVAILABLE, f"cannot {action} {self._uri_or_root(rel)}: {reason}"
        )

    @property
    def is_local_protocol(self) -> bool:
        return self.protocol in ("file", "local")

    def _uri_or_root(self, rel: str) -> str:
        try:
            return self.uri(rel)
        except (AttributeError, TrendFlowError):
            return str(rel)

    def _call(self, method: Callable[..., Any], *args: Any, nbytes: int = 0, **kwargs: Any) -> Any:
        """One filesystem call; on S3 under the operation deadline (fsspec cancels it after),
        stretched for large payloads at `MIN_THROUGHPUT` bytes per second."""
        if not self.is_local_protocol:
            kwargs["timeout"] = self.limits.deadline_s + nbytes / MIN_THROUGHPUT
        return method(*args, **kwargs)

    # -- reads -----------------------------------------------------------------------------
    def exists(self, rel: str) -> bool:
        with self._guard("check", rel):
            return self._call(self.fs.exists, self.full_path(rel))

    def read_bytes(self, rel: str) -> bytes:
        with self._guard("read", rel):
            return self._call(self.fs.cat_file, self.full_path(rel))

    def read_json(self, rel: str) -> Any:
        return json.loads(self.read_bytes(rel))

    def listdir(self, rel: str = "") -> list[str]:
        """Names (not paths) directly under `rel`; empty when it does not exist."""
        with self._guard("list", rel):
            try:
                entries = self._call(self.fs.ls, self.full_path(rel), detail=False)
            except FileNotFoundError:
                return []
        base = self.full_path(rel)
        return sorted(posixpath.relpath(e.rstrip("/"), base) for e in entries if e.rstrip("/") != base)

    def find(self, rel: str = "", suffix: str = "") -> list[str]:
        """Every file under `rel` (recursive), as store-relative paths."""
        with self._guard("list", rel):
            try:
                entries = self._call(self.fs.find, self.full_path(rel))
            except FileNotFoundError:
                return []
        out = [posixpath.relpath(e, self._root) for e in entries]
        return sorted(p for p in out if p.endswith(suffix))

    def size(self, rel: str) -> int:
        with self._guard("stat", rel):
            return int(self._call(self.fs.size, self.full_path(rel)))

    # -- writes ----------------------------------------------------------------------------
    def write_bytes(self, rel: str, data: bytes) -> str:
        """Atomically write `data`; returns its sha256."""
        path = self.full_path(rel)
        if os.environ.get("TRENDFLOW_FAULT_INJECT"):  # crash tests only (dataprocessor/state/faults.py)
            from trendflow.dataprocessor.state import faults

            faults.mid_store_write(self, rel, data)
        with self._guard("write", rel):
            if self.is_local:
                folder = os.path.dirname(path)
                os.makedirs(folder, exist_ok=True)
                tmp = os.path.join(folder, f"{TMP_MARKER}{uuid.uuid4().hex}-{os.path.basename(path)}")
                try:
                    with open(tmp, "wb") as handle:
                        handle.write(data)
                        handle.flush()
                        os.fsync(handle.fileno())
                    os.replace(tmp, path)
                finally:
                    if os.path.exists(tmp):
                        os.unlink(tmp)
            else:
                # one PUT: visible whole or not at all
                self._call(self.fs.pipe_file, path, data, nbytes=len(data))
        return hashlib.sha256(data).hexdigest()

    def write_json(self, rel: str, obj: Any) -> str:
        text = json.dumps(obj, indent=2, default=str) + "\n"
        return self.write_bytes(rel, text.encode())

    def put_file(self, local_path: str, rel: str) -> None:
        """Upload a local file (e.g. a large NPZ written to scratch) in one operation."""
        with open(local_path, "rb") as handle:
            self.write_bytes(rel, handle.read())

    def delete(self, rel: str, recursive: bool = False) -> None:
        with self._guard("delete", rel), suppress(FileNotFoundError):
            self._call(self.fs.rm, self.full_path(rel), recursive=recursive)


def _looks_like_connection_error(exc: BaseException) -> bool:
    names = {type(e).__name__ for e in _chain(exc)}
    return bool(
        names
        & {
            "EndpointConnectionError",
            "ConnectTimeoutError",
            "ReadTimeoutError",
            "ClientConnectorError",
            "ServerDisconnectedError",
            "ConnectionClosedError",
            "ClientOSError",
            "NoCredentialsError",
            "PartialCredentialsError",
            "FSTimeoutError",
        }
    )


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__
