"""Builds and writes `manifest.json` as a run progresses (SPEC section 8).

The manifest is rewritten atomically after every component, so a reader never sees a torn
file and a crashed run still shows how far it got (`status: running`).
"""

from __future__ import annotations

import threading
from datetime import datetime

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.identity import RunIdentity, utc_now
from trendflow.contracts.manifest import (
    ComponentRecord,
    Manifest,
    ProfileComponent,
    ProfileInfo,
    ResolvedModel,
)
from trendflow.dataprocessor.graph import Profile
from trendflow.storage.layout import RunLayout
from trendflow.storage.store import ResultStore


def profile_info(profile: Profile) -> ProfileInfo:
    return ProfileInfo(
        name=profile.name,
        components=[
            ProfileComponent(
                name=n, processor=profile.components[n].processor, required=profile.components[n].required
            )
            for n in profile.order
        ],
    )


class ManifestWriter:
    def __init__(
        self,
        store: ResultStore,
        identity: RunIdentity,
        profile: Profile,
        resolved_models: dict[str, ResolvedModel],
        source: dict[str, str | int | float | bool | None],
        retry_count: int = 0,
        started_at: datetime | None = None,
    ) -> None:
        self.store = store
        self.layout = RunLayout.of(identity)
        now = started_at or utc_now()
        self._lock = threading.Lock()
        self.manifest = Manifest(
            run=identity,
            profile=profile_info(profile),
            resolved_models=resolved_models,
            status="running",
            retry_count=retry_count,
            source=source,
            started_at=now,
            updated_at=now,
        )

    @property
    def uri(self) -> str:
        return self.store.uri(self.layout.manifest)

    def write(self) -> None:
        with self._lock:
            self.manifest.updated_at = utc_now()
            data = Manifest.model_validate(self.manifest.model_dump()).model_dump_json(indent=2)
            self.store.write_bytes(self.layout.manifest, data.encode())

    def record_component(self, record: ComponentRecord) -> None:
        with self._lock:
            others = [c for c in self.manifest.components if c.name != record.name]
            self.manifest.components = [*others, record]
        self.write()

    def add_warning(self, message: str) -> None:
        with self._lock:
            self.manifest.warnings.append(message)

    def finish(
        self, status: str, error_code: ErrorCode | None, error: str | None, peak_rss_mb: float | None
    ) -> Manifest:
        with self._lock:
            finished = utc_now()
            order = {c.name: i for i, c in enumerate(self.manifest.profile.components)}
            self.manifest.components.sort(key=lambda c: order.get(c.name, len(order)))
            self.manifest.status = status  # type: ignore[assignment]
            self.manifest.error_code = error_code
            self.manifest.error = error
            self.manifest.finished_at = finished
            self.manifest.duration_sec = (finished - self.manifest.started_at).total_seconds()
            self.manifest.peak_rss_mb = peak_rss_mb
        try:
            self.write()
        except TrendFlowError as exc:
            if exc.code is not ErrorCode.STORAGE_UNAVAILABLE or not self.store.is_local:
                raise
            self._replace_when_full()
        return self.manifest

    def _replace_when_full(self) -> None:
        """A full disk: free the `running` manifest's blocks, then write the final one compactly
        (smaller than the indented one it replaces). If even that fails the manifest is absent,
        never left saying `running`."""
        data = Manifest.model_validate(self.manifest.model_dump()).model_dump_json().encode()
        self.store.delete(self.layout.manifest)
        self.store.write_bytes(self.layout.manifest, data)


def write_rejected_manifest(
    store: ResultStore,
    identity: RunIdentity,
    profile: Profile,
    source: dict[str, str | int | float | bool | None],
    error: TrendFlowError,
    retry_count: int = 0,
) -> str:
    """The manifest of a queued run whose video could not be fetched (no component ran): status
    `error` with its code and reason, so the store says why the video has no features. A retry
    of the same run_id starts over and replaces it."""
    writer = ManifestWriter(store, identity, profile, {}, source, retry_count)
    writer.manifest.error_reason = error.reason
    writer.finish("error", error.code, error.message, None)
    return writer.uri
