"""The `training` pipeline: training_table.parquet -> models, metrics, report, MLflow run.

`kedro run --pipelines=training` (parameters: conf/base/parameters_training.yml). kedro-mlflow
opens one MLflow run for the pipeline; the catalog's Mlflow* datasets fill it. See
docs/training.md.
"""

from kedro.pipeline import Pipeline, node

from trendflow.pipelines.training import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                nodes.select_features,
                inputs=["training_table", "params:training"],
                outputs="training_feature_spec",
                name="select_features",
            ),
            node(
                nodes.make_manifest,
                inputs=["training_table", "dataset_metadata", "params:training"],
                outputs="training_manifest",
                name="make_reproducibility_manifest",
            ),
            node(
                nodes.fit_models,
                inputs=["training_table", "training_feature_spec", "params:training"],
                outputs="training_result",
                name="fit_models",
            ),
            node(
                nodes.evaluate_models,
                inputs=["training_result", "training_table", "params:training"],
                outputs=["training_metrics", "training_test_predictions", "training_mlflow_metrics"],
                name="evaluate_models",
            ),
            node(
                nodes.build_child_runs,
                inputs=["training_metrics", "training_result", "training_manifest"],
                outputs="training_mlflow_child_runs",
                name="build_mlflow_child_runs",
            ),
            node(
                nodes.build_comparison,
                inputs=["training_metrics", "training_manifest", "training_result"],
                outputs=["training_comparison_md", "training_comparison_json"],
                name="build_comparison_table",
            ),
            node(
                nodes.build_report,
                inputs=[
                    "training_metrics",
                    "training_test_predictions",
                    "training_result",
                    "training_manifest",
                    "params:training",
                ],
                outputs="training_report_html",
                name="build_html_report",
            ),
            node(
                nodes.build_bundle,
                inputs=[
                    "training_result",
                    "training_metrics",
                    "training_manifest",
                    "params:training",
                    "feature_transforms",
                ],
                outputs=["model_bundle", "forecast_models@mlflow", "training_mlflow_tags"],
                name="build_model_bundle",
            ),
        ],
        tags=["training"],
    )
