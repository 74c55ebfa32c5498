"""The `dataset` pipeline."""

from trendflow.pipelines.dataset.pipeline import create_pipeline

__all__ = ["create_pipeline"]
