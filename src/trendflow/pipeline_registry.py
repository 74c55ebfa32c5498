"""Project pipelines: processing, dataset, training, inference."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline


def register_pipelines() -> dict[str, Pipeline]:
    pipelines = find_pipelines(raise_errors=True)
    # The default run builds the table and trains on it; processing needs a queue and inference
    # a trained model, so they are run by name.
    pipelines["__default__"] = pipelines.get("dataset", Pipeline([])) + pipelines.get(
        "training", Pipeline([])
    )
    return pipelines
