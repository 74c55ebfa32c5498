"""The run orchestrator: one video -> a complete, contract-valid run in the result store.

Order of work: validate the request, resolve the source, derive the run identity, return a
cached run when the idempotency key already has one, then the segmenter (decode once) and
every component of the profile in dependency order, a few at a time. Each component's
outcome is journaled in the run state (dataprocessor/state), then written as an NPZ and a
manifest record before the next decision is made.

A crashed run is resumed (`ProcessRequest.resume`, or a redelivered job whose `run_id` already
has state): its state is recovered from checkpoints + journal, components whose artifacts
still match their sha256 are kept, the rest is recomputed.

Modules, each importing only those listed after it: `admission` (a request -> cache hit, resume
or new run), `resume` (recover and finish a run), `scheduler` (dependency-ordered execution),
`artifacts` (metadata.json and NPZ writing), `reuse` (what a resume keeps), `step` (measure,
record, map exceptions: the segmenter and every component alike), `plan` (models, config hash,
source record), `request` (the types callers see). Nothing below imports this entry point.
"""

from __future__ import annotations

import shutil
from typing import Any

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.identity import validate_platform_id, validate_video_id
from trendflow.dataprocessor.graph import ComponentGraph
from trendflow.dataprocessor.run.admission import admit
from trendflow.dataprocessor.run.plan import config_hash_for, resolve_models, source_record
from trendflow.dataprocessor.run.request import ProcessRequest, ProgressCallback, RunOutcome
from trendflow.dataprocessor.scratch import clean_leftovers, default_root, new_scratch
from trendflow.dataprocessor.services import Services
from trendflow.storage.store import ResultStore

__all__ = [
    "ProcessRequest",
    "ProgressCallback",
    "RunOutcome",
    "Services",
    "config_hash_for",
    "process_video",
    "resolve_models",
    "resume_run",
    "source_record",
]


def process_video(request: ProcessRequest, progress: ProgressCallback | None = None) -> RunOutcome:
    """Run one video through its profile. Never raises for bad input: the outcome says why."""
    try:
        profile = None if request.resume else ComponentGraph.load(request.graph_path).profile(request.profile)
        if request.platform_id is not None:
            validate_platform_id(request.platform_id)
        if request.video_id is not None:
            validate_video_id(request.video_id)
    except TrendFlowError as exc:
        return RunOutcome.failed(exc)

    root = default_root(request.scratch_root)
    try:
        clean_leftovers(root)  # frames a killed run left behind (dataprocessor/scratch.py)
        scratch = new_scratch(root)
    except OSError as exc:
        return RunOutcome(
            status="error", error_code=ErrorCode.STORAGE_UNAVAILABLE, error=f"scratch {root}: {exc}"
        )
    try:
        return admit(request, profile, scratch, progress)
    finally:
        if not request.policy.keep_media:
            shutil.rmtree(scratch, ignore_errors=True)


def resume_run(store: ResultStore, run_dir: str, source: str | None = None, **options: Any) -> RunOutcome:
    """Finish a crashed or failed run: same identity, valid artifacts kept, the rest recomputed.

    `source` (and `metadata_file` in `options`) must be the ones the run started with; without
    `source` the uri recorded in the run state is used (a URL, or a path this worker can read).
    """
    request = ProcessRequest(source=source or "", store=store, resume=run_dir, **options)
    return process_video(request)
