"""Kedro datasets shared by the processing, dataset and inference pipelines.

- `RunsIndexDataset` is `runs_index.parquet` (one row per video: identity, status, error_code,
  error_reason, manifest). Before any processing run it loads as an empty index with the
  documented columns, so `kedro run --pipelines=dataset` works on a fresh checkout while still
  declaring its dependency on processing (one connected lineage in Kedro-Viz).
- `ResultStoreDataset` is the result store (runs, state files, journals): a local folder or
  `s3://bucket/prefix`. `load()` returns the `ResultStore` handle the nodes read runs through (the
  workers write them), so no node opens a store from a path of its own. S3 options come from the
  entry's `credentials` (conf/local/credentials.yml, or environment variables resolved there),
  else from TRENDFLOW_S3_* / AWS_* variables; they never appear in `describe()`, logs or repr.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from kedro.io import AbstractDataset, DatasetError
from kedro_datasets.pandas import ParquetDataset

from trendflow.batch.report import runs_index_frame
from trendflow.storage.store import ResultStore


class RunsIndexDataset(ParquetDataset):
    def load(self) -> pd.DataFrame:
        if not self._exists():
            return runs_index_frame([])
        return super().load()


class ResultStoreDataset(AbstractDataset[None, ResultStore]):
    """Catalog entry of the result store; `load()` -> `ResultStore`. Read-only for Kedro: runs are
    written by the workers (and by the SYNTHETIC corpus generator), never saved by a node."""

    def __init__(
        self,
        root: str,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if not root:
            raise DatasetError("ResultStoreDataset needs `root` (a folder or s3://bucket/prefix)")
        self._root = str(root)
        options = {**(fs_args or {}), **{k: v for k, v in (credentials or {}).items() if v is not None}}
        # No options at all: ResultStore falls back to TRENDFLOW_S3_* / AWS_* for s3://.
        self._options = options or None
        self.metadata = metadata

    def load(self) -> ResultStore:
        return ResultStore(self._root, storage_options=self._options)

    def save(self, data: None) -> None:
        raise DatasetError("the result store is read-only in the catalog: workers write the runs")

    def _exists(self) -> bool:
        return True

    def _describe(self) -> dict[str, Any]:
        return {"root": self._root}  # never the credentials
