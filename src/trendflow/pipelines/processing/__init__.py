"""The `processing` pipeline."""

from trendflow.pipelines.processing.pipeline import create_pipeline

__all__ = ["create_pipeline"]
