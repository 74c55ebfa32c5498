"""Kedro datasets of the dataset pipeline.

- `SnapshotSourceDataset`: one catalog entry per snapshot source (canonical file, trending CSVs,
  Hugging Face dataset: Hub repo id, Hub-layout folder or `save_to_disk` folder, see
  `trendflow.dataset.huggingface`). Loading returns a lazy `SnapshotSource` handle: nothing is read
  until the node that the `snapshot_source` parameter selects calls `.read()`, so unused
  sources need not exist.
- `HFDiskDataset`: a Hugging Face `datasets` dataset saved with `save_to_disk`, loaded with
  `datasets.load_from_disk` (works offline; kedro-datasets' `HFDataset` needs the hub).
- `DeterministicParquetDataset`: writes the bytes of `table_to_parquet_bytes`, so the file's
  sha256 equals the fingerprint the build computed in memory.
- `ApiCredentialsDataset`: hands the `youtube_api` credentials (api_key) to the node; add
  `credentials: youtube_api` in conf/local to use conf/local/credentials.yml. Never prints keys.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
from dataclasses import dataclass, field
from typing import Any

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from kedro.io import AbstractDataset, DatasetError

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.dataset.huggingface import HFSpec, frame_fingerprint, kind_of, load_hf_frame
from trendflow.dataset.snapshots import normalize_snapshots, read_canonical
from trendflow.dataset.trending import expand_paths, import_trending

SOURCE_KINDS = ("canonical", "trending", "huggingface")


def _storage_options(credentials: dict[str, Any] | None, fs_args: dict[str, Any] | None) -> dict[str, Any]:
    return {**(fs_args or {}), **(credentials or {})}


def path_fingerprint(path: str, storage_options: dict[str, Any] | None = None) -> str:
    """sha256 over (relative path, sha256) of every file under `path` (or of the one file)."""
    fs, _, paths = fsspec.get_fs_token_paths(path, storage_options=storage_options or {})
    root = paths[0] if paths else path
    files = sorted(fs.find(root)) if fs.isdir(root) else [root]
    digest = hashlib.sha256()
    for f in files:
        h = hashlib.sha256()
        with fs.open(f, "rb") as handle:
            while chunk := handle.read(1 << 20):
                h.update(chunk)
        rel = posixpath.relpath(f, root) if f != root else posixpath.basename(f)
        digest.update(f"{rel}:{h.hexdigest()}\n".encode())
    return digest.hexdigest()


@dataclass
class SnapshotSource:
    """A lazy handle on one snapshot source; `.read()` returns canonical snapshots + a report."""

    kind: str
    filepath: str
    load_args: dict[str, Any] = field(default_factory=dict)
    storage_options: dict[str, Any] = field(default_factory=dict, repr=False)
    column_mapping: dict[str, str] = field(default_factory=dict)
    default_platform_id: str | None = "youtube"
    hf_credentials: dict[str, Any] = field(default_factory=dict, repr=False)
    _hub_fingerprint: str | None = field(default=None, repr=False)

    def exists(self) -> bool:
        if self.kind == "huggingface" and not self.filepath.startswith("s3://"):
            try:
                kind_of(self.filepath)  # a folder, a file or a Hub repo id: loading tells the rest
            except TrendFlowError:
                return False
            return True
        fs, _, paths = fsspec.get_fs_token_paths(self.filepath, storage_options=self.storage_options)
        return bool(paths) and fs.exists(paths[0])

    def read(self) -> tuple[pd.DataFrame, dict[str, Any]]:
        if not self.exists():
            raise TrendFlowError(
                ErrorCode.SOURCE_NOT_FOUND, f"{self.kind} snapshot source not found: {self.filepath}"
            )
        if self.kind == "trending":
            return import_trending(self.filepath, self.storage_options, **self.load_args)
        if self.kind == "canonical":
            raw = read_canonical(self.filepath, self.storage_options or None, **self.load_args)
        elif self.kind == "huggingface":
            raw = load_hf_frame(HFSpec.from_options(self.filepath, self.load_args, self.hf_credentials))
            if kind_of(self.filepath) == "hub":
                self._hub_fingerprint = frame_fingerprint(raw)
        else:
            raise TrendFlowError(ErrorCode.CONFIG_ERROR, f"unknown snapshot source kind {self.kind!r}")
        if self.column_mapping:
            missing = sorted(set(self.column_mapping) - set(raw.columns))
            if missing:
                raise TrendFlowError(
                    ErrorCode.INVALID_REQUEST,
                    f"{self.kind}:{self.filepath}: column_mapping names columns the source lacks: {missing}; "
                    f"its columns: {sorted(map(str, raw.columns))}",
                )
            raw = raw.rename(columns=self.column_mapping)
        return normalize_snapshots(raw, f"{self.kind}:{self.filepath}", self.default_platform_id)

    def fingerprint(self) -> str:
        if self.kind == "trending":
            digest = hashlib.sha256()
            for f in expand_paths(self.filepath, self.storage_options):
                digest.update(
                    f"{posixpath.basename(f)}:{path_fingerprint(f, self.storage_options)}\n".encode()
                )
            return digest.hexdigest()
        if self.kind == "huggingface" and kind_of(self.filepath) == "hub":
            if self._hub_fingerprint is None:
                self.read()
            assert self._hub_fingerprint is not None
            return self._hub_fingerprint
        return path_fingerprint(self.filepath, self.storage_options)


class SnapshotSourceDataset(AbstractDataset[pd.DataFrame, SnapshotSource]):
    """Catalog entry of one snapshot source; `load()` returns a lazy `SnapshotSource`."""

    def __init__(
        self,
        kind: str,
        filepath: str | None = None,
        dataset: str | None = None,
        load_args: dict[str, Any] | None = None,
        column_mapping: dict[str, str] | None = None,
        default_platform_id: str | None = "youtube",
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if kind not in SOURCE_KINDS:
            raise DatasetError(f"SnapshotSourceDataset kind must be one of {SOURCE_KINDS}, got {kind!r}")
        # `dataset` (huggingface): a Hub repo id or a folder; Kedro would make a `filepath` absolute
        filepath = dataset if dataset is not None else filepath
        if not filepath:
            raise DatasetError("SnapshotSourceDataset needs `filepath` (or `dataset` for huggingface)")
        # huggingface: `credentials` hold the Hub token; the other kinds: fsspec storage options
        hf = kind == "huggingface"
        self._source = SnapshotSource(
            kind=kind,
            filepath=str(filepath),
            load_args=dict(load_args or {}),
            storage_options=_storage_options(None if hf else credentials, fs_args),
            hf_credentials=dict(credentials or {}) if hf else {},
            column_mapping=dict(column_mapping or {}),
            default_platform_id=default_platform_id,
        )
        self.metadata = metadata

    def load(self) -> SnapshotSource:
        return self._source

    def save(self, data: pd.DataFrame) -> None:
        """Write canonical snapshots in this source's format (canonical parquet/csv, HF on disk)."""
        src = self._source
        if src.kind == "canonical":
            if src.filepath.lower().endswith((".parquet", ".pq")):
                data.to_parquet(src.filepath, index=False, storage_options=src.storage_options or None)
            else:
                data.to_csv(src.filepath, index=False, storage_options=src.storage_options or None)
        elif src.kind == "huggingface":
            HFDiskDataset(src.filepath).save(data)
        else:
            raise DatasetError("trending sources are read-only (they are public CSV exports)")

    def _exists(self) -> bool:
        return self._source.exists()

    def _describe(self) -> dict[str, Any]:
        described = {"kind": self._source.kind, "filepath": self._source.filepath}
        if self._source.kind == "huggingface":
            described["load_args"] = self._source.load_args
        return described


class HFDiskDataset(AbstractDataset[pd.DataFrame, pd.DataFrame]):
    """A Hugging Face dataset saved with `save_to_disk` <-> pandas DataFrame (offline)."""

    def __init__(self, path: str, split: str | None = None, metadata: dict[str, Any] | None = None) -> None:
        self._path = path
        self._split = split
        self.metadata = metadata

    def load(self) -> pd.DataFrame:
        try:
            import datasets
        except ImportError as exc:  # pragma: no cover - datasets is a project dependency
            raise TrendFlowError(
                ErrorCode.DEPENDENCY_MISSING, "the Hugging Face source needs `datasets`"
            ) from exc
        ds = datasets.load_from_disk(self._path)
        if isinstance(ds, datasets.DatasetDict):
            split = self._split or ("train" if "train" in ds else sorted(ds)[0])
            ds = ds[split]
        return ds.to_pandas()

    def save(self, data: pd.DataFrame) -> None:
        import datasets

        ds = datasets.Dataset.from_pandas(data.reset_index(drop=True), preserve_index=False)
        ds.save_to_disk(self._path)

    def _exists(self) -> bool:
        return os.path.exists(self._path)

    def _describe(self) -> dict[str, Any]:
        return {"path": self._path, "split": self._split}


# -- deterministic parquet ---------------------------------------------------------------------
def table_to_parquet_bytes(df: pd.DataFrame) -> bytes:
    """The one encoder of the training table: same frame -> same bytes."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    buffer = io.BytesIO()
    pq.write_table(
        table,
        buffer,
        compression="zstd",
        compression_level=3,
        row_group_size=65536,
        use_dictionary=True,
        write_statistics=True,
    )
    return buffer.getvalue()


class DeterministicParquetDataset(AbstractDataset[pd.DataFrame, pd.DataFrame]):
    def __init__(
        self,
        filepath: str,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._filepath = filepath
        self._options = _storage_options(credentials, fs_args)
        self.metadata = metadata

    def load(self) -> pd.DataFrame:
        return pd.read_parquet(self._filepath, storage_options=self._options or None)

    def save(self, data: pd.DataFrame) -> None:
        payload = table_to_parquet_bytes(data)
        fs, _, paths = fsspec.get_fs_token_paths(self._filepath, storage_options=self._options)
        path = paths[0]
        parent = posixpath.dirname(path)
        if parent:
            fs.makedirs(parent, exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}"
        with fs.open(tmp, "wb") as handle:
            handle.write(payload)
        fs.mv(tmp, path)

    def _exists(self) -> bool:
        fs, _, paths = fsspec.get_fs_token_paths(self._filepath, storage_options=self._options)
        return fs.exists(paths[0])

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath}


class ApiCredentialsDataset(AbstractDataset[None, dict[str, Any]]):
    """Credentials for the YouTube Data API; the key is never part of describe()/repr."""

    def __init__(
        self, credentials: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None
    ) -> None:
        self._credentials = dict(credentials or {})
        self.metadata = metadata

    def load(self) -> dict[str, Any]:
        return dict(self._credentials)

    def save(self, data: None) -> None:
        raise DatasetError("credentials are read-only")

    def _describe(self) -> dict[str, Any]:
        return {"has_api_key": bool(self._credentials.get("api_key"))}
