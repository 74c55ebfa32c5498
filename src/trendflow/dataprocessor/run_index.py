"""Finding runs of a video in a result store (cache hits, newest runs)."""

from __future__ import annotations

import logging

from pydantic import ValidationError

from trendflow.contracts.manifest import Manifest
from trendflow.dataprocessor.state.recorder import verify_artifacts
from trendflow.storage.layout import MANIFEST, RunLayout, video_dir
from trendflow.storage.store import ResultStore

logger = logging.getLogger(__name__)


def list_manifests(store: ResultStore, platform_id: str, video_id: str) -> list[Manifest]:
    """Every readable manifest of a video, oldest first; unreadable ones are logged and skipped."""
    base = video_dir(platform_id, video_id)
    manifests = []
    for run_id in store.listdir(base):
        rel = f"{base}/{run_id}/{MANIFEST}"
        if not store.exists(rel):
            continue
        try:
            manifests.append(Manifest.model_validate_json(store.read_bytes(rel)))
        except (ValidationError, ValueError) as exc:
            logger.warning("skipping unreadable manifest %s: %s", rel, exc)
    return sorted(manifests, key=lambda m: m.run.created_at)


def find_cached_run(store: ResultStore, platform_id: str, video_id: str, config_hash: str) -> Manifest | None:
    """The newest finished, successful run with this idempotency key whose artifacts are all still
    there and match their recorded sha256 (SPEC 3). A run with a missing or altered NPZ is no hit."""
    hits = [
        m
        for m in list_manifests(store, platform_id, video_id)
        if m.status == "success" and m.run.config_hash == config_hash
    ]
    for manifest in reversed(hits):
        layout = RunLayout.of(manifest.run)
        artifacts = [a for c in manifest.components for a in c.artifacts]
        problems = verify_artifacts(store, layout.run_dir, artifacts)
        if not problems:
            return manifest
        logger.warning("run %s is no cache hit: %s", layout.run_dir, problems[:3])
    return None
