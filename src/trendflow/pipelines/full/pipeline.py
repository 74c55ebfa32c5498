"""The `full` pipeline: processing + dataset + training in one run.

    kedro run --pipelines=full \
      --params "processing.video_list=snapshots,dataset.snapshot_source=huggingface,hf_dataset=owner/name"

equals `kedro run --pipelines=processing,dataset,training`. It is a package of its own (not a sum
in pipeline_registry.py) because Kedro 1.x imports only the pipeline packages a run names.
"""

from kedro.pipeline import Pipeline

from trendflow.pipelines import dataset, processing, training


def create_pipeline(**kwargs) -> Pipeline:
    return processing.create_pipeline() + dataset.create_pipeline() + training.create_pipeline()
