"""Nodes of the `processing` pipeline: videos -> job payloads -> queue -> outcomes -> runs_index.

The videos come from the video list file (`processing.video_list: file`) or from the snapshot
source the dataset pipeline uses (`processing.video_list: snapshots`, `dataset.snapshot_source`).

The queue work is done by `trendflow.batch` (the same code as `trendflow batch`); these nodes
only adapt it to Kedro: typed inputs from the catalog, parameters, plain records between nodes.
"""

from __future__ import annotations

import logging
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from trendflow.batch.dispatcher import Dispatcher, TrackedJob
from trendflow.batch.dispatcher import Progress as QueueProgress
from trendflow.batch.jobs import PlannedJob, plan_jobs
from trendflow.batch.report import INDEX_COLUMNS, index_row, runs_index_frame, status_counts
from trendflow.batch.runner import staging_store
from trendflow.batch.snapshot_videos import videos_from_snapshots
from trendflow.batch.video_list import VideoEntry, entries_from_records, records_from_json
from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.identity import utc_now
from trendflow.storage.store import ResultStore
from trendflow.worker.config import WorkerSettings
from trendflow.worker.execution import profile_config_hash
from trendflow.worker.payload import JobPayload, JobResult
from trendflow.worker.processes import LocalWorkers

logger = logging.getLogger(__name__)


def queue_settings(params: dict[str, Any], result_store: ResultStore) -> WorkerSettings:
    """Environment first (a deployment's TRENDFLOW_* variables), then the pipeline parameters;
    the workers use the catalog's result store (its root; their S3 keys come from TRENDFLOW_S3_*)."""
    return WorkerSettings.from_env(
        redis_url=params.get("broker_url"),
        queue=params.get("queue"),
        store_root=result_store.root_uri,
    )


VIDEO_LISTS = ("file", "snapshots")


def select_processing_videos(
    video_list: Any,
    canonical: Any,
    trending: Any,
    huggingface: Any,
    params: dict[str, Any],
    dataset_params: dict[str, Any],
    result_store: ResultStore,
) -> dict[str, Any]:
    """The videos of this batch: `{"videos": [records], "already_processed": [...], "counts": {...}}`.

    `file`: every row of `processing_video_list`. `snapshots`: one record per distinct video of
    the snapshot source named by `dataset.snapshot_source` that has no successful run for the
    profile's config_hash yet (at most `processing.max_videos`)."""
    mode = params.get("video_list", "file")
    if mode not in VIDEO_LISTS:
        raise TrendFlowError(
            ErrorCode.CONFIG_ERROR, f"processing.video_list must be one of {VIDEO_LISTS}, got {mode!r}"
        )
    if mode == "file":
        records = (
            video_list.to_dict(orient="records")
            if isinstance(video_list, pd.DataFrame)
            else records_from_json(video_list, "processing_video_list")
        )
        return {"videos": records, "already_processed": [], "counts": {"queued": len(records)}}
    kind = dataset_params.get("snapshot_source", "synthetic")
    handles = {"canonical": canonical, "trending": trending, "huggingface": huggingface}
    if kind not in handles:
        raise TrendFlowError(
            ErrorCode.CONFIG_ERROR,
            f"processing.video_list=snapshots needs a real snapshot source (dataset.snapshot_source: "
            f"{sorted(handles)}), not {kind!r}: SYNTHETIC videos have nothing to download",
        )
    snapshots, _ = handles[kind].read()
    max_videos = params.get("max_videos")
    selected = videos_from_snapshots(
        snapshots,
        result_store,
        profile_config_hash(params["profile"]),
        max_videos=int(max_videos) if max_videos is not None else None,
        force=bool(params.get("force", False)),
    )
    return {
        "videos": selected.records,
        "already_processed": selected.already_processed,
        "counts": {**selected.counts(), "source": kind},
    }


def plan_processing_jobs(
    videos: Any, params: dict[str, Any], result_store: ResultStore
) -> list[dict[str, Any]]:
    """Videos (records, CSV rows or JSON) -> one planned job per distinct video, identity fixed.

    Videos that `select_processing_videos` found already processed become `success` records
    without a job, so `runs_index` lists every video of the batch."""
    records = (
        videos.to_dict(orient="records")
        if isinstance(videos, pd.DataFrame)
        else records_from_json(videos, "processing_video_list")
    )
    base_dir = Path(params["video_list_base_dir"]).resolve() if params.get("video_list_base_dir") else None
    entries = entries_from_records(records, base_dir)
    planned = plan_jobs(
        entries,
        params["profile"],
        staging_store(result_store, params.get("stage_inputs", "auto")),
        force=bool(params.get("force", False)),
    )
    rejected = sum(job.error is not None for job in planned)
    logger.info("processing: %d videos planned, %d rejected before dispatch", len(planned), rejected)
    done = videos.get("already_processed", []) if isinstance(videos, dict) else []
    return [_planned_record(job) for job in planned] + [
        _already_processed_record(item, params["profile"]) for item in done
    ]


def dispatch_processing_jobs(
    planned: list[dict[str, Any]], params: dict[str, Any], result_store: ResultStore
) -> list[dict[str, Any]]:
    """Submit every planned payload; returns what was submitted (payloads with submit times)."""
    submitted: list[dict[str, Any]] = []
    if not any(record.get("payload") for record in planned):
        logger.info("processing: nothing to submit")
        return submitted
    dispatcher = Dispatcher(queue_settings(params, result_store))
    dispatcher.check_broker()
    for record in planned:
        if record.get("payload") is None:
            continue
        job = TrackedJob(payload=JobPayload.model_validate(record["payload"]))
        dispatcher.submit(job)
        submitted.append(job.payload.model_dump(mode="json"))
    dispatcher.close()
    logger.info("processing: %d jobs submitted to queue %s", len(submitted), dispatcher.settings.queue)
    return submitted


def follow_processing_jobs(
    submitted: list[dict[str, Any]], params: dict[str, Any], result_store: ResultStore
) -> list[dict[str, Any]]:
    """Wait for every job (progress bar + a log line every `log_every_s`); returns JobResults."""
    if not submitted:
        return []
    settings = queue_settings(params, result_store)
    dispatcher = Dispatcher(settings)
    jobs = [TrackedJob(payload=JobPayload.model_validate(p)) for p in submitted]
    with _local_workers_if_needed(dispatcher, int(params.get("local_workers", 0)), bool(jobs)):
        _follow_with_progress(dispatcher, jobs, params)
    dispatcher.close()
    return [job.result.model_dump(mode="json") for job in jobs if job.result is not None]


def build_runs_index(planned: list[dict[str, Any]], results: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per video: identity, status, error_code, retry_count, manifest path, timings."""
    by_run = {r["requested_run_id"]: JobResult.model_validate(r) for r in results}
    rows = []
    for record in planned:
        if record.get("done"):
            rows.append(record["done"])
            continue
        job = _job_from_record(record)
        result = job.error or (by_run.get(job.payload.run_id) if job.payload else None)
        rows.append(index_row(job, result))
    logger.info("processing: %s", status_counts(rows))
    return runs_index_frame(rows)


# -- helpers -------------------------------------------------------------------------------
def _planned_record(job: PlannedJob) -> dict[str, Any]:
    return {
        "key": job.key,
        "entry": job.entry.model_dump(mode="json"),
        "payload": job.payload.model_dump(mode="json") if job.payload else None,
        "error": job.error.model_dump(mode="json") if job.error else None,
    }


def _already_processed_record(item: dict[str, Any], profile: str) -> dict[str, Any]:
    """A runs_index row for a video whose successful run for this config_hash already exists."""
    now = utc_now().isoformat()
    row: dict[str, Any] = dict.fromkeys(INDEX_COLUMNS)
    row.update(
        platform_id=item["platform_id"],
        video_id=item["video_id"],
        source=item["source"],
        profile=profile,
        config_hash=profile_config_hash(profile),
        run_id=item["run_id"],
        status="success",
        retry_count=0,
        retry_error_codes="",
        cache_hit=True,
        resumed=False,
        finished_at=now,
    )
    return {"key": f"{item['platform_id']}/{item['video_id']}", "done": row}


def _job_from_record(record: dict[str, Any]) -> PlannedJob:
    return PlannedJob(
        key=record["key"],
        entry=VideoEntry.model_validate(record["entry"]),
        payload=JobPayload.model_validate(record["payload"]) if record["payload"] else None,
        error=JobResult.model_validate(record["error"]) if record["error"] else None,
    )


def _local_workers_if_needed(
    dispatcher: Dispatcher, count: int, has_jobs: bool
) -> AbstractContextManager[Any]:
    """Start `count` local workers for this run when no worker consumes the queue yet."""
    if count <= 0 or not has_jobs:
        return nullcontext()
    if dispatcher.workers_for_queue():
        return nullcontext()
    logger.info(
        "processing: no worker on queue %s; starting %d local workers", dispatcher.settings.queue, count
    )
    return LocalWorkers(dispatcher.settings, count)


def _follow_with_progress(dispatcher: Dispatcher, jobs: list[TrackedJob], params: dict[str, Any]) -> None:
    console = Console(stderr=True)
    log_every_s = float(params.get("log_every_s", 10))
    last_log = [0.0]
    columns = (
        TextColumn("[bold]processing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, disable=not console.is_terminal) as bar:
        task = bar.add_task("", total=len(jobs))

        def on_progress(update: QueueProgress) -> None:
            counts = update.counts
            text = (
                f"ok={counts['success']} error={counts['error']} running={counts['running']} "
                f"queued={counts['queued']} retrying={counts['retrying']}"
            )
            bar.update(task, completed=counts["done"], description=text)
            now = time.monotonic()
            if now - last_log[0] >= log_every_s or counts["done"] == update.total:
                last_log[0] = now
                logger.info("processing: %d/%d done, %s", counts["done"], update.total, text)

        dispatcher.follow(
            jobs,
            on_progress=on_progress,
            poll_s=float(params.get("poll_s", 0.5)),
            timeout_s=params.get("timeout_s"),
            no_worker_timeout_s=float(params.get("no_worker_timeout_s", 300)),
        )
