"""`trendflow retention apply`: remove kept raw text past its retention (SPEC 13).

Raw text reaches an NPZ only under the explicit policy (`--keep-raw-text --retention-days N`),
which records `raw_text_retention_days` in the NPZ meta. Once `run.created_at + N days` has
passed, the `raw_*` arrays (and their masks) are removed from the NPZ, the meta no longer claims
raw text, and the manifest's artifact record gets the new sha256 and size, so the run stays a
valid cache hit. Every other array is untouched. Applying it again changes nothing.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from trendflow.contracts.identity import utc_now
from trendflow.contracts.manifest import ArtifactRef, Manifest
from trendflow.storage.layout import MANIFEST, RunLayout
from trendflow.storage.npz_io import encode_npz, read_npz
from trendflow.storage.store import ResultStore

RAW_PREFIX = "raw_"


@dataclass
class RetentionReport:
    checked: int = 0
    expired: list[str] = field(default_factory=list)  # store-relative NPZ paths stripped now
    kept: int = 0  # NPZs with raw text still inside their retention

    def as_dict(self) -> dict[str, Any]:
        return {"checked": self.checked, "expired": len(self.expired), "kept": self.kept}


def apply_retention(store: ResultStore, now: datetime | None = None) -> RetentionReport:
    now = now or utc_now()
    report = RetentionReport()
    for rel in store.find("", suffix=".npz"):
        if rel.startswith("_"):
            continue  # staging, state: no artifacts there
        report.checked += 1
        arrays, meta = read_npz(store, rel)
        if meta.raw_text_retention_days is None:
            continue
        if meta.run.created_at + timedelta(days=meta.raw_text_retention_days) > now:
            report.kept += 1
            continue
        kept = {k: v for k, v in arrays.items() if not k.startswith(RAW_PREFIX)}
        data = encode_npz(kept, meta.model_copy(update={"raw_text_retention_days": None}))
        digest = store.write_bytes(rel, data)
        _update_manifest(store, RunLayout.of(meta.run), rel, digest, len(data))
        report.expired.append(rel)
    return report


def _update_manifest(store: ResultStore, layout: RunLayout, rel: str, digest: str, size: int) -> None:
    path = layout.path(MANIFEST)
    if not store.exists(path):
        return
    manifest = Manifest.model_validate_json(store.read_bytes(path))
    artifact_path = posixpath.relpath(rel, layout.run_dir)
    for component in manifest.components:
        component.artifacts = [
            ArtifactRef(path=a.path, sha256=digest, bytes=size) if a.path == artifact_path else a
            for a in component.artifacts
        ]
    store.write_bytes(path, Manifest.model_validate(manifest.model_dump()).model_dump_json(indent=2).encode())
