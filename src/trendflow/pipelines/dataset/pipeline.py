"""The `dataset` pipeline: snapshots + run artifacts -> training_table.parquet + dataset_metadata.json.

`kedro run --pipelines=dataset` builds it from the source named by `dataset.snapshot_source`
(default: the SYNTHETIC corpus). See docs/dataset.md.
"""

from kedro.pipeline import Pipeline, node

from trendflow.pipelines.dataset import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                nodes.load_snapshots,
                inputs=[
                    "snapshots_canonical",
                    "snapshots_trending",
                    "snapshots_huggingface",
                    "synthetic_sample_snapshots",
                    "params:dataset",
                    "params:processing",
                    "result_store",
                ],
                outputs=["dataset_snapshots", "dataset_snapshot_sources"],
                name="load_snapshots",
                tags=["dataset"],
            ),
            node(
                nodes.build_snapshot1,
                inputs=["dataset_snapshots", "params:dataset"],
                outputs=["dataset_snapshot1", "dataset_snapshot1_info"],
                name="build_snapshot1_and_targets",
                tags=["dataset"],
            ),
            node(
                nodes.build_run_features,
                inputs=[
                    "dataset_snapshot1",
                    "runs_index",
                    "params:dataset",
                    "params:processing",
                    "result_store",
                ],
                outputs="dataset_run_features",
                name="build_run_features",
                tags=["dataset"],
            ),
            node(
                nodes.enrich_and_split,
                inputs=[
                    "dataset_snapshot1",
                    "dataset_run_features",
                    "params:dataset",
                    "youtube_api_credentials",
                ],
                outputs=["dataset_enriched", "dataset_split_info"],
                name="enrich_channels_and_split",
                tags=["dataset"],
            ),
            node(
                nodes.fit_feature_transforms,
                inputs=["dataset_enriched", "dataset_run_features", "params:dataset"],
                outputs="feature_transforms",
                name="fit_feature_transforms",
                tags=["dataset"],
            ),
            node(
                nodes.assemble_table,
                inputs=[
                    "dataset_enriched",
                    "dataset_run_features",
                    "params:dataset",
                    "dataset_snapshot1_info",
                    "dataset_split_info",
                    "dataset_snapshots",
                    "dataset_snapshot_sources",
                    "feature_transforms",
                ],
                outputs=["training_table", "dataset_metadata"],
                name="assemble_training_table",
                tags=["dataset"],
            ),
        ]
    )
