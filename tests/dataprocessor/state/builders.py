"""Builders for state tests: a run identity and finished component records (real artifacts)."""

from __future__ import annotations

import hashlib

from trendflow.contracts.identity import RunIdentity, utc_now
from trendflow.contracts.manifest import ArtifactRef, ComponentRecord
from trendflow.contracts.npz_meta import Producer
from trendflow.storage.layout import RunLayout
from trendflow.storage.store import ResultStore

COMPONENTS = [
    ("segmenter", "segmenter", True),
    ("frame_stats", "visual", True),
    ("motion", "visual", False),
    ("loudness", "audio", True),
    ("text_stats", "text", True),
]


def make_identity(run_id: str = "20260101T000000Z-00000001", video_id: str = "vid1") -> RunIdentity:
    return RunIdentity(
        platform_id="local",
        video_id=video_id,
        run_id=run_id,
        config_hash="c" * 64,
        sampling_policy_version="sampling-1.0.0",
        dataprocessor_version="test",
        created_at=utc_now(),
    )


def finished_record(
    store: ResultStore,
    identity: RunIdentity,
    name: str,
    processor: str,
    status: str = "ok",
    duration: float = 1.0,
    **extra: object,
) -> ComponentRecord:
    """A record whose artifact really exists in the store (so it verifies)."""
    artifacts = []
    if status in ("ok", "empty"):
        data = f"{identity.run_id}:{name}".encode()
        rel = f"{processor}/{name}.npz"
        store.write_bytes(RunLayout.of(identity).path(rel), data)
        artifacts = [ArtifactRef(path=rel, sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))]
    return ComponentRecord(
        name=name,
        processor=processor,
        required=True,
        status=status,
        artifacts=artifacts,
        producer=Producer(name=f"test.{name}", version="1"),
        schema_version="1.0.0",
        started_at=utc_now(),
        finished_at=utc_now(),
        duration_sec=duration,
        cpu_time_sec=duration / 2,
        peak_rss_mb=100.0 + duration,
        units_processed=10,
        empty_reason="nothing" if status == "empty" else None,
        **extra,
    )
