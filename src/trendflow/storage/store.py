"""The one storage adapter: local folders and s3:// (MinIO, moto) through fsspec.

Every path the rest of the code uses is relative to the store root, with "/" separators.
Writes are atomic: locally a temp file in the same folder plus `os.replace`; on S3 a single
PUT, which S3 makes visible all at once. Connection failures become `storage_unavailable`
(transient), so the queue retries them.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from trendflow.contracts.errors import ErrorCode, TrendFlowError

TMP_MARKER = ".tmp-"

# Exceptions that mean "the store cannot be reached", as opposed to "this object is absent".
_UNAVAILABLE = (ConnectionError, TimeoutError, OSError)


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

    def __init__(self, root: str, storage_options: dict[str, Any] | None = None) -> None:
        protocol, _ = fsspec.core.split_protocol(root)
        self.protocol = protocol or "file"
        if self.protocol == "s3" and storage_options is None:
            storage_options = s3_options_from_env()
        options = dict(storage_options or {})
        if self.protocol == "s3":
            # Fresh listings every time: another worker may have written since.
            options.setdefault("use_listings_cache", False)
            options.setdefault("skip_instance_cache", True)
        self.fs: fsspec.AbstractFileSystem = fsspec.filesystem(self.protocol, **options)
        self._root = self.fs._strip_protocol(root).rstrip("/")
        self.root_uri = root.rstrip("/") if protocol else os.path.abspath(root)
        self.is_local = isinstance(self.fs, LocalFileSystem)
        if self.is_local:
            os.makedirs(self._root, exist_ok=True)

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
        try:
            yield
        except (FileNotFoundError, TrendFlowError):
            raise
        except _UNAVAILABLE as exc:
            raise TrendFlowError(
                ErrorCode.STORAGE_UNAVAILABLE,
                f"cannot {action} {self.uri(rel)}: {type(exc).__name__}: {exc}",
            ) from exc
        except Exception as exc:  # botocore/aiohttp errors do not share a base class
            if _looks_like_connection_error(exc):
                raise TrendFlowError(
                    ErrorCode.STORAGE_UNAVAILABLE,
                    f"cannot {action} {self.uri(rel)}: {type(exc).__name__}: {exc}",
                ) from exc
            raise

    # -- reads -----------------------------------------------------------------------------
    def exists(self, rel: str) -> bool:
        with self._guard("check", rel):
            return self.fs.exists(self.full_path(rel))

    def read_bytes(self, rel: str) -> bytes:
        with self._guard("read", rel):
            return self.fs.cat_file(self.full_path(rel))

    def read_json(self, rel: str) -> Any:
        return json.loads(self.read_bytes(rel))

    def listdir(self, rel: str = "") -> list[str]:
        """Names (not paths) directly under `rel`; empty when it does not exist."""
        with self._guard("list", rel):
            try:
                entries = self.fs.ls(self.full_path(rel), detail=False)
            except FileNotFoundError:
                return []
        base = self.full_path(rel)
        return sorted(posixpath.relpath(e.rstrip("/"), base) for e in entries if e.rstrip("/") != base)

    def find(self, rel: str = "", suffix: str = "") -> list[str]:
        """Every file under `rel` (recursive), as store-relative paths."""
        with self._guard("list", rel):
            try:
                entries = self.fs.find(self.full_path(rel))
            except FileNotFoundError:
                return []
        out = [posixpath.relpath(e, self._root) for e in entries]
        return sorted(p for p in out if p.endswith(suffix))

    def size(self, rel: str) -> int:
        with self._guard("stat", rel):
            return int(self.fs.size(self.full_path(rel)))

    # -- writes ----------------------------------------------------------------------------
    def write_bytes(self, rel: str, data: bytes) -> str:
        """Atomically write `data`; returns its sha256."""
        path = self.full_path(rel)
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
                self.fs.pipe_file(path, data)  # one PUT: visible whole or not at all
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
            self.fs.rm(self.full_path(rel), recursive=recursive)


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
        }
    )


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__
