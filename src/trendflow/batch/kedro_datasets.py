"""Kedro dataset of the processing pipeline's output that the dataset pipeline reads.

`RunsIndexDataset` is `runs_index.parquet` (one row per video: identity, status, error_code,
error_reason, manifest). Before any processing run it loads as an empty index with the documented
columns, so `kedro run --pipelines=dataset` works on a fresh checkout while still declaring its
dependency on processing (one connected lineage in Kedro-Viz).
"""

from __future__ import annotations

import pandas as pd
from kedro_datasets.pandas import ParquetDataset

from trendflow.batch.report import runs_index_frame


class RunsIndexDataset(ParquetDataset):
    def load(self) -> pd.DataFrame:
        if not self._exists():
            return runs_index_frame([])
        return super().load()
