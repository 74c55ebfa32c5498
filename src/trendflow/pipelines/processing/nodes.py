"""Nodes of the `processing` pipeline: video list -> job payloads -> queue -> outcomes -> runs_index.

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
from trendflow.batch.report import index_row, runs_index_frame, status_counts
from trendflow.batch.runner import staging_store
from trendflow.batch.video_list import VideoEntry, entries_from_records, records_from_json
from trendflow.worker.config import WorkerSettings
from trendflow.worker.payload import JobPayload, JobResult
from trendflow.worker.processes import LocalWorkers

logger = logging.getLogger(__name__)


def queue_settings(params: dict[str, Any], result_store: str) -> WorkerSettings:
    """Environment first (a deployment's TRENDFLOW_* variables), then the pipeline parameters."""
    return WorkerSettings.from_env(
        redis_url=params.get("broker_url"),
        queue=params.get("queue"),
        store_root=result_store,
    )


def plan_processing_jobs(video_list: Any, params: dict[str, Any], result_store: str) -> list[dict[str, Any]]:
    """Video list (CSV rows or JSON) -> one planned job per distinct video, identity fixed."""
    records = (
        video_list.to_dict(orient="records")
        if isinstance(video_list, pd.DataFrame)
        else records_from_json(video_list, "processing_video_list")
    )
    base_dir = Path(params["video_list_base_dir"]).resolve() if params.get("video_list_base_dir") else None
    entries = entries_from_records(records, base_dir)
    settings = queue_settings(params, result_store)
    planned = plan_jobs(
        entries,
        params["profile"],
        staging_store(settings, params.get("stage_inputs", "auto")),
        force=bool(params.get("force", False)),
    )
    rejected = sum(job.error is not None for job in planned)
    logger.info("processing: %d videos planned, %d rejected before dispatch", len(planned), rejected)
    return [_planned_record(job) for job in planned]


def dispatch_processing_jobs(
    planned: list[dict[str, Any]], params: dict[str, Any], result_store: str
) -> list[dict[str, Any]]:
    """Submit every planned payload; returns what was submitted (payloads with submit times)."""
    dispatcher = Dispatcher(queue_settings(params, result_store))
    dispatcher.check_broker()
    submitted = []
    for record in planned:
        if record["payload"] is None:
            continue
        job = TrackedJob(payload=JobPayload.model_validate(record["payload"]))
        dispatcher.submit(job)
        submitted.append(job.payload.model_dump(mode="json"))
    dispatcher.close()
    logger.info("processing: %d jobs submitted to queue %s", len(submitted), dispatcher.settings.queue)
    return submitted


def follow_processing_jobs(
    submitted: list[dict[str, Any]], params: dict[str, Any], result_store: str
) -> list[dict[str, Any]]:
    """Wait for every job (progress bar + a log line every `log_every_s`); returns JobResults."""
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
