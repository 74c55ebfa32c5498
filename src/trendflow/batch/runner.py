"""`trendflow batch`: plan a video list, submit what has no valid run, follow, summarise.

Resume rules (re-running the same command after an interruption):
- a job whose last outcome is `success` is kept (a valid run exists);
- a job submitted but never seen finished is followed again under its original run id; only
  if the broker no longer knows it is it resubmitted (same run id, so the run resumes);
- a job that ended in an error is submitted again, except permanent input errors
  (`invalid_media`, `video_too_short`, ...) unless `retry_errors` is set: the same file gives
  the same answer.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trendflow.batch.dispatcher import Dispatcher, JobState, Progress, TrackedJob
from trendflow.batch.jobs import PlannedJob, plan_jobs
from trendflow.batch.report import index_row
from trendflow.batch.state import BatchState
from trendflow.batch.video_list import read_video_list
from trendflow.contracts.errors import is_transient
from trendflow.events import log_event
from trendflow.storage.store import ResultStore
from trendflow.worker.config import WorkerSettings
from trendflow.worker.payload import JobResult

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchOptions:
    profile: str = "baseline"
    wait: bool = True
    force: bool = False
    retry_errors: bool = False
    stage_inputs: str = "auto"  # auto: copy local files into the store when it is not local
    poll_s: float = 0.5
    timeout_s: float | None = None
    no_worker_timeout_s: float = 300.0


@dataclass
class BatchReport:
    planned: list[PlannedJob]
    results: dict[str, JobResult] = field(default_factory=dict)
    submitted: int = 0
    kept: int = 0
    followed: int = 0

    def rows(self) -> list[dict[str, Any]]:
        return [index_row(job, self.results.get(job.key)) for job in self.planned]


def staging_store(store: ResultStore, mode: str) -> ResultStore | None:
    """Where local inputs are copied for the workers: the result store when it is remote."""
    if mode == "never":
        return None
    return store if mode == "always" or not store.is_local else None


def keep_previous(result: JobResult | None, options: BatchOptions) -> bool:
    """True when an earlier outcome stands and the job is not submitted again."""
    if result is None or options.force:
        return False
    if result.status == "success":
        return True
    code = result.last_error_code
    return not options.retry_errors and code is not None and not is_transient(code)


def run_batch(
    list_path: str | Path,
    settings: WorkerSettings,
    options: BatchOptions,
    state_path: str | Path,
    on_progress: Callable[[Progress], None] | None = None,
    dispatcher: Dispatcher | None = None,
) -> BatchReport:
    state = BatchState(state_path)
    batch_id = f"batch-{uuid.uuid4().hex[:8]}"
    planned = plan_jobs(
        read_video_list(list_path),
        options.profile,
        staging_store(ResultStore(settings.store_root), options.stage_inputs),
        force=options.force,
        batch_id=batch_id,
    )
    report = BatchReport(planned=planned)
    dispatcher = dispatcher or Dispatcher(settings)
    dispatcher.check_broker()
    tracked: dict[str, TrackedJob] = {}
    for job in planned:
        previous = state.result(job.key)
        if job.error is not None:
            report.results[job.key] = job.error
            if previous is None or (previous.error_code, previous.error) != (
                job.error.error_code,
                job.error.error,
            ):
                state.record_finished(job.key, job.error)
        elif keep_previous(previous, options):
            report.results[job.key] = previous
            report.kept += 1
        elif (pending := state.pending_payload(job.key)) is not None and not options.force:
            # The ledger has no sidecar text: a resubmission takes it from the list again.
            metadata = job.payload.metadata if job.payload is not None else None
            pending = pending.model_copy(update={"metadata": metadata})
            tracked[job.key] = TrackedJob(payload=pending, state=JobState.QUEUED)
            report.followed += 1
        else:
            assert job.payload is not None
            tracked[job.key] = TrackedJob(payload=job.payload)
            dispatcher.submit(tracked[job.key])
            state.record_submitted(job.key, tracked[job.key].payload)
            report.submitted += 1
    # Keep the identity the state knows for followed jobs (their run ids were issued earlier).
    for job in planned:
        if job.key in tracked:
            job.payload = tracked[job.key].payload
    log_event(
        logger,
        "batch_submitted",
        batch_id=batch_id,
        submitted=report.submitted,
        kept=report.kept,
        followed=report.followed,
        planned=len(planned),
    )
    if not options.wait or not tracked:
        dispatcher.poll(tracked.values())
        _collect(tracked, report, state)
        return report

    key_of = {t.task_id: key for key, t in tracked.items()}

    def progress(update: Progress) -> None:
        for job in update.finished:
            if job.result is not None:
                report.results[key_of[job.task_id]] = job.result
                state.record_finished(key_of[job.task_id], job.result)
        if on_progress is not None:
            on_progress(update)

    dispatcher.follow(
        list(tracked.values()),
        on_progress=progress,
        poll_s=options.poll_s,
        timeout_s=options.timeout_s,
        no_worker_timeout_s=options.no_worker_timeout_s,
    )
    _collect(tracked, report, state)
    return report


def _collect(tracked: dict[str, TrackedJob], report: BatchReport, state: BatchState) -> None:
    for key, job in tracked.items():
        if job.result is not None and key not in report.results:
            report.results[key] = job.result
            state.record_finished(key, job.result)
