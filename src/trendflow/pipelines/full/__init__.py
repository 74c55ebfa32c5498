"""The `full` pipeline: snapshots -> processing -> runs_index -> dataset -> training."""

from trendflow.pipelines.full.pipeline import create_pipeline

__all__ = ["create_pipeline"]
