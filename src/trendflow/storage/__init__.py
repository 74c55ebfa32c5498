"""Storage: one fsspec adapter for local folders and s3://, the per-run layout, NPZ I/O."""

from trendflow.storage.layout import RunLayout
from trendflow.storage.npz_io import read_npz, write_npz
from trendflow.storage.store import ResultStore

__all__ = ["ResultStore", "RunLayout", "read_npz", "write_npz"]
