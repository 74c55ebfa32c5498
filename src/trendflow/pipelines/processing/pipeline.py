"""The `processing` pipeline: videos (list file or snapshots) -> Celery jobs -> outcomes -> `runs_index`.

    kedro run --pipelines=processing               # conf/base: local store, local Redis
    kedro run --pipelines=processing --env minio   # result store and datasets on s3://

Needs Redis (TRENDFLOW_REDIS_URL) and workers (`trendflow worker`); with
`processing.local_workers > 0` the pipeline starts local workers when none consumes the queue.
"""

from kedro.pipeline import Pipeline, node

from trendflow.pipelines.processing.nodes import (
    build_runs_index,
    dispatch_processing_jobs,
    follow_processing_jobs,
    plan_processing_jobs,
    select_processing_videos,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                select_processing_videos,
                inputs=[
                    "processing_video_list",
                    "snapshots_canonical",
                    "snapshots_trending",
                    "snapshots_huggingface",
                    "params:processing",
                    "params:dataset",
                    "result_store",
                ],
                outputs="processing_videos",
                name="select_processing_videos",
            ),
            node(
                plan_processing_jobs,
                inputs=["processing_videos", "params:processing", "result_store"],
                outputs="processing_planned_jobs",
                name="plan_processing_jobs",
            ),
            node(
                dispatch_processing_jobs,
                inputs=["processing_planned_jobs", "params:processing", "result_store"],
                outputs="processing_submitted_jobs",
                name="dispatch_processing_jobs",
            ),
            node(
                follow_processing_jobs,
                inputs=["processing_submitted_jobs", "params:processing", "result_store"],
                outputs="processing_job_results",
                name="follow_processing_jobs",
            ),
            node(
                build_runs_index,
                inputs=["processing_planned_jobs", "processing_job_results"],
                outputs="runs_index",
                name="build_runs_index",
            ),
        ]
    )
