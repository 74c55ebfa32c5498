"""Finding runs of a video in a result store (cache hits, newest runs)."""

from __future__ import annotations

import logging

from pydantic import ValidationError

from trendflow.contracts.manifest import Manifest
from trendflow.storage.layout import MANIFEST, video_dir
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


def find_cached_run(
    store: ResultStore, platform_id: str, video_id: str, config_hash: str
) -> Manifest | None:
    """The newest finished, successful run with this idempotency key (SPEC 3)."""
    hits = [
        m
        for m in list_manifests(store, platform_id, video_id)
        if m.status == "success" and m.run.config_hash == config_hash
    ]
    return hits[-1] if hits else None
