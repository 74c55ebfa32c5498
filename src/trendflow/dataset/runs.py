"""Finding runs for the dataset build: discovery, manifests, selection, worker processes.

Selection (SPEC 3, 8): only runs whose manifest says `status: success`; one config_hash for the
whole table (a parameter; `auto` = the config_hash that covers the most snapshot videos, ties to
the newest run, then the smaller hash); per (platform_id, video_id, config_hash) the newest run
by `run.created_at` (ties: the larger run_id). Videos without such a run get a reason:
`no_run`, `no_successful_run` or `no_run_for_config_hash`.
"""

from __future__ import annotations

import gc
import hashlib
import math
import os
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_all_start_methods, get_context

import pandas as pd

from trendflow.contracts.manifest import Manifest
from trendflow.storage.layout import MANIFEST, METADATA
from trendflow.storage.store import ResultStore

PARALLEL_MIN_RUNS = 256


@dataclass
class RunRecord:
    run_dir: str
    platform_id: str
    video_id: str
    run_id: str = ""
    config_hash: str = ""
    created_at: str = ""
    status: str = "invalid"
    error: str | None = None
    channel_id: str | None = None
    manifest_sha256: str = ""
    has_metadata: bool = False
    components: list[tuple[str, str, str, str | None, str | None]] = field(default_factory=list)


def discover_runs(store: ResultStore, platform_ids: list[str]) -> tuple[list[str], set[str]]:
    """Run directories (with a manifest.json) and those that also have frames_dir/metadata.json."""
    run_dirs: list[str] = []
    with_metadata: set[str] = set()
    for platform in sorted(set(platform_ids)):
        if store.is_local:  # a directory walk of 3 fixed levels: much cheaper than fsspec's find
            for run_dir, names in _walk_local(store, platform):
                if MANIFEST in names:
                    run_dirs.append(run_dir)
                    if "frames_dir" in names and os.path.exists(store.full_path(f"{run_dir}/{METADATA}")):
                        with_metadata.add(run_dir)
            continue
        for path in store.find(platform):
            parts = path.split("/")
            if len(parts) == 4 and parts[3] == MANIFEST:
                run_dirs.append("/".join(parts[:3]))
            elif len(parts) == 5 and "/".join(parts[3:]) == METADATA:
                with_metadata.add("/".join(parts[:3]))
    return sorted(run_dirs), with_metadata


def _walk_local(store: ResultStore, platform: str):
    base = store.full_path(platform)
    if not os.path.isdir(base):
        return
    with os.scandir(base) as videos:
        video_names = sorted(e.name for e in videos if e.is_dir())
    for video in video_names:
        with os.scandir(os.path.join(base, video)) as runs:
            run_names = sorted(e.name for e in runs if e.is_dir())
        for run in run_names:
            with os.scandir(os.path.join(base, video, run)) as entries:
                yield f"{platform}/{video}/{run}", {e.name for e in entries}


def _read(store: ResultStore, rel: str) -> bytes:
    """Store reads; a local store is read directly (fsspec's per-call overhead dominates
    for 80k small files)."""
    if store.is_local:
        with open(store.full_path(rel), "rb") as handle:
            return handle.read()
    return store.read_bytes(rel)


def _read_manifest(store: ResultStore, run_dir: str, has_metadata: bool) -> RunRecord:
    platform_id, video_id, run_id = run_dir.split("/")
    rec = RunRecord(run_dir=run_dir, platform_id=platform_id, video_id=video_id, run_id=run_id)
    rec.has_metadata = has_metadata
    try:
        data = _read(store, f"{run_dir}/{MANIFEST}")
        rec.manifest_sha256 = hashlib.sha256(data).hexdigest()
        manifest = Manifest.model_validate_json(data)
    except Exception as exc:  # an unreadable manifest is a bad run, not a failed build
        rec.error = f"{type(exc).__name__}: {str(exc)[:200]}"
        return rec
    rec.run_id = manifest.run.run_id
    rec.config_hash = manifest.run.config_hash
    rec.created_at = manifest.run.created_at.isoformat()
    rec.status = manifest.status
    src = manifest.source or {}
    channel = src.get("channel_id") or src.get("uploader_id") if isinstance(src, dict) else None
    rec.channel_id = str(channel) if channel else None
    for comp in manifest.components:
        if comp.processor == "segmenter":
            continue  # writes metadata.json, not features; its facts enter through snapshot1 columns
        npz = next((a.path for a in comp.artifacts if a.path.endswith(".npz")), None)
        rec.components.append((comp.name, comp.processor, comp.status, comp.empty_reason, npz))
    return rec


def _store(root: str | ResultStore, options: dict | None) -> ResultStore:
    return root if isinstance(root, ResultStore) else ResultStore(root, options)


def _worker_manifests(args: tuple[str | ResultStore, dict | None, list[tuple[str, bool]]]) -> list[RunRecord]:
    root, options, items = args
    store = _store(root, options)
    return [_read_manifest(store, run_dir, has_meta) for run_dir, has_meta in items]


def _worker_store_args(
    store: ResultStore, storage_options: dict | None, jobs: int
) -> tuple[str | ResultStore, dict | None]:
    """Serial work reuses the store; worker processes rebuild it from its root and options."""
    if jobs <= 1:
        return store, None
    if storage_options is None and not store.is_local:
        storage_options = dict(getattr(store.fs, "storage_options", {}) or {})
    return store.root_uri, storage_options


def _resolve_jobs(n_jobs: int | str | None, n_items: int) -> int:
    if n_items < PARALLEL_MIN_RUNS:
        return 1
    if n_jobs in (None, "auto", 0):
        n_jobs = min(os.cpu_count() or 1, 8)
    return max(1, min(int(n_jobs), n_items))


def mp_context():
    """fork where the platform has it (workers start in milliseconds and need no importable
    __main__, so notebooks and `python -c` work; fsspec and logging reset their locks and
    event loops after a fork), spawn elsewhere."""
    return get_context("fork" if "fork" in get_all_start_methods() else "spawn")


def _parallel_map(fn, chunks: list, n_jobs: int) -> list:
    if n_jobs <= 1 or len(chunks) <= 1:
        return [fn(c) for c in chunks]
    # Forked workers share the parent's memory copy-on-write; the garbage collector of a child
    # would touch (and so copy) every object of the parent unless they are frozen first.
    gc.collect()
    gc.freeze()
    try:
        with ProcessPoolExecutor(max_workers=n_jobs, mp_context=mp_context()) as pool:
            return list(pool.map(fn, chunks))  # results keep the input order
    finally:
        gc.unfreeze()


def _chunks(items: list, n_jobs: int, target: int = 250) -> list[list]:
    if not items:
        return []
    size = max(1, min(target, math.ceil(len(items) / max(n_jobs, 1))))
    return [items[i : i + size] for i in range(0, len(items), size)]


def read_run_records(
    store: ResultStore, platform_ids: list[str], storage_options: dict | None, n_jobs: int | str | None
) -> list[RunRecord]:
    run_dirs, with_meta = discover_runs(store, platform_ids)
    jobs = _resolve_jobs(n_jobs, len(run_dirs))
    items = [(d, d in with_meta) for d in run_dirs]
    root, options = _worker_store_args(store, storage_options, jobs)
    chunks = [(root, options, c) for c in _chunks(items, jobs)]
    return [rec for part in _parallel_map(_worker_manifests, chunks, jobs) for rec in part]


# -- selection ---------------------------------------------------------------------------------
@dataclass
class Selection:
    selected: dict[tuple[str, str], RunRecord]
    missing_reason: dict[tuple[str, str], str]
    config_hash: str | None
    counts: dict[str, int]


def select_runs(
    records: list[RunRecord], video_keys: list[tuple[str, str]], config_hash: str | None = "auto"
) -> Selection:
    wanted = set(video_keys)
    counts: dict[str, int] = defaultdict(int)
    by_video: dict[tuple[str, str], list[RunRecord]] = defaultdict(list)
    for rec in records:
        counts["runs_found"] += 1
        key = (rec.platform_id, rec.video_id)
        if rec.status == "invalid":
            counts["runs_invalid_manifest"] += 1
        elif rec.status == "success":
            counts["runs_success"] += 1
        else:
            counts[f"runs_{rec.status}"] += 1
        if key in wanted:
            by_video[key].append(rec)
        else:
            counts["runs_without_snapshots"] += 1
    success = [r for rs in by_video.values() for r in rs if r.status == "success"]
    chosen = config_hash if config_hash not in (None, "", "auto") else None
    if chosen is None and success:
        videos_per_hash: dict[str, set] = defaultdict(set)
        newest: dict[str, int] = defaultdict(int)
        for r in success:
            videos_per_hash[r.config_hash].add((r.platform_id, r.video_id))
            newest[r.config_hash] = max(newest[r.config_hash], pd.Timestamp(r.created_at).value)
        chosen = sorted(videos_per_hash, key=lambda h: (-len(videos_per_hash[h]), -newest[h], h))[0]
    selected: dict[tuple[str, str], RunRecord] = {}
    missing: dict[tuple[str, str], str] = {}
    for key in sorted(wanted):
        runs = by_video.get(key, [])
        ok = [r for r in runs if r.status == "success"]
        match = [r for r in ok if r.config_hash == chosen]
        if match:
            best = max(match, key=lambda r: (pd.Timestamp(r.created_at), r.run_id))
            selected[key] = best
            counts["runs_superseded"] += len(match) - 1
        elif not runs:
            missing[key] = "no_run"
        elif not ok:
            missing[key] = "no_successful_run"
        else:
            missing[key] = "no_run_for_config_hash"
    counts["videos_with_run"] = len(selected)
    counts["videos_without_run"] = len(missing)
    return Selection(selected, missing, chosen, dict(sorted(counts.items())))
