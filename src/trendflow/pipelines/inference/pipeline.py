"""The `inference` pipeline: forecast models + videos -> predictions.json per video.

`kedro run --pipelines=inference` (parameters: conf/base/parameters_inference.yml; models:
the `forecast_models@loader` catalog entry, MLflow registry alias by default). See docs/training.md.
"""

from kedro.pipeline import Pipeline, node

from trendflow.pipelines.inference import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                nodes.select_requests,
                inputs=["params:inference", "training_table", "dataset_snapshots"],
                outputs="inference_requests",
                name="select_inference_requests",
            ),
            node(
                nodes.predict_requests,
                inputs=[
                    "inference_requests",
                    "forecast_models@loader",
                    "params:inference",
                    "params:dataset",
                    "result_store",
                ],
                outputs="predictions",
                name="predict_videos",
            ),
        ],
        tags=["inference"],
    )
