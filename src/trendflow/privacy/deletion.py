"""`trendflow delete`: remove every trace of one video (SPEC 13).

Removed: every run folder of the video (artifacts, manifests, Level 2/3 state, journals and their
S3 segments, checkpoints, kept frames), its Level 1 entries (and the compacted checkpoint is
rewritten without them), staged inputs (`_staging/<platform>/<video>`), its cached YouTube API
answers, and the queue's results and counters for its jobs in Redis. What stays is a deletion
record under `_deletions/` that names only a sha256 of `<platform>/<video>` (proof the request was
carried out, without naming the video). Running it again is a no-op that succeeds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import posixpath
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.identity import utc_now
from trendflow.dataprocessor.state.global_state import ENTRIES_DIR, GlobalStateManager
from trendflow.storage.layout import video_dir
from trendflow.storage.store import ResultStore

logger = logging.getLogger(__name__)
DELETIONS_DIR = "_deletions"
STAGING_DIR = "_staging"  # trendflow.batch.jobs.STAGING_DIR (not imported: batch pulls in Celery)
RESULT_KEY_PREFIX = "celery-task-meta-"
RUN_KEYS = ("trendflow:attempts:{run_id}", "trendflow:lease:{run_id}")


@dataclass
class DeletionReport:
    platform_id: str
    video_id: str
    subject_sha256: str
    run_ids: list[str] = field(default_factory=list)
    store_objects: int = 0
    api_cache_entries: int = 0
    queue_keys: int = 0
    queue: str = "skipped"  # skipped (no Redis given) | cleaned
    record: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def subject_digest(platform_id: str, video_id: str) -> str:
    return hashlib.sha256(f"{platform_id}/{video_id}".encode()).hexdigest()


def delete_video(
    store: ResultStore,
    platform_id: str,
    video_id: str,
    api_cache: str | Path | None = None,
    redis_url: str | None = None,
) -> DeletionReport:
    folder = video_dir(platform_id, video_id)  # validates both ids (no path tricks)
    report = DeletionReport(platform_id, video_id, subject_digest(platform_id, video_id))
    entries = posixpath.join(ENTRIES_DIR, folder)
    run_ids = set(store.listdir(folder)) | set(store.listdir(entries))
    report.run_ids = sorted(run_ids)
    targets = (folder, entries, posixpath.join(STAGING_DIR, folder))
    report.store_objects = sum(len(store.find(t)) for t in targets)
    for target in targets:
        store.delete(target, recursive=True)
    GlobalStateManager(store).forget_video(platform_id, video_id)  # compacts the checkpoint too
    if api_cache is not None:
        report.api_cache_entries = _forget_api_cache(Path(api_cache), video_id)
    if redis_url is not None:
        report.queue_keys = _forget_queue(redis_url, platform_id, video_id, run_ids)
        report.queue = "cleaned"
    report.record = _write_record(store, report)
    return report


def _forget_api_cache(path: Path, video_id: str) -> int:
    if not path.is_file():
        return 0
    from trendflow.dataset.youtube_api import ApiCacheIndex

    cache = ApiCacheIndex(path)
    known = int(("video", video_id) in cache)
    if known:
        cache.forget(video_id)
    return known


def _forget_queue(redis_url: str, platform_id: str, video_id: str, run_ids: set[str]) -> int:
    """Results of the video's jobs (by run id, and any result naming the video: a cache hit's job
    has its own task id), plus attempt counters and leases."""
    import redis

    try:
        client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        keys = {f"{RESULT_KEY_PREFIX}{r}" for r in run_ids}
        keys |= {pattern.format(run_id=r) for pattern in RUN_KEYS for r in run_ids}
        for key in client.scan_iter(match=f"{RESULT_KEY_PREFIX}*", count=1000):
            if _names_video(client.get(key), platform_id, video_id):
                keys.add(key.decode() if isinstance(key, bytes) else key)
        return int(client.delete(*keys)) if keys else 0
    except redis.RedisError as exc:
        raise TrendFlowError(
            ErrorCode.STORAGE_UNAVAILABLE, f"cannot remove queue results from Redis: {exc}"
        ) from exc


def _names_video(raw: bytes | None, platform_id: str, video_id: str) -> bool:
    try:
        result = json.loads(raw or b"{}").get("result")
    except (ValueError, AttributeError):
        return False
    return isinstance(result, dict) and (result.get("platform_id"), result.get("video_id")) == (
        platform_id,
        video_id,
    )


def _write_record(store: ResultStore, report: DeletionReport) -> str:
    """Proof of the deletion that does not name the video: its sha256, counts, when."""
    rel = posixpath.join(DELETIONS_DIR, f"{report.subject_sha256}.json")
    record = {
        "subject_sha256": report.subject_sha256,
        "deleted_at": utc_now().isoformat(),
        "runs": len(report.run_ids),
        "store_objects": report.store_objects,
        "api_cache_entries": report.api_cache_entries,
        "queue_keys": report.queue_keys,
        "queue": report.queue,
    }
    store.write_json(rel, record)
    return store.uri(rel)
