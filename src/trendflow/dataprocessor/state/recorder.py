"""The one object the run orchestrator talks to about state.

It turns orchestrator facts (a component started, a manifest record, a reused artifact, the
run's end) into manager calls, verifies artifacts against their recorded sha256, and counts
the time spent on state tracking (`overhead_sec`) so its cost can be measured.
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from trendflow.contracts.errors import ErrorCode
from trendflow.contracts.identity import RunIdentity
from trendflow.contracts.manifest import ArtifactRef, ComponentRecord
from trendflow.dataprocessor.state.managers import RecoveryReport, RunStateManager, StateSettings
from trendflow.dataprocessor.state.models import VALID_STATUSES, ComponentState, RunState
from trendflow.storage.layout import RunLayout
from trendflow.storage.store import TMP_MARKER, ResultStore

logger = logging.getLogger(__name__)


def verify_artifacts(store: ResultStore, run_dir: str, artifacts: list[ArtifactRef]) -> list[dict[str, Any]]:
    """Problems of recorded artifacts: missing, wrong size, or a sha256 that does not match."""
    problems: list[dict[str, Any]] = []
    for artifact in artifacts:
        rel = posixpath.join(run_dir, artifact.path)
        if TMP_MARKER in posixpath.basename(artifact.path):
            problems.append({"path": artifact.path, "reason": "temp_file"})
            continue
        try:
            data = store.read_bytes(rel)
        except FileNotFoundError:
            problems.append({"path": artifact.path, "reason": "missing"})
            continue
        digest = hashlib.sha256(data).hexdigest()
        if digest != artifact.sha256 or len(data) != artifact.bytes:
            problems.append(
                {
                    "path": artifact.path,
                    "reason": "sha256_mismatch",
                    "expected": artifact.sha256,
                    "actual": digest,
                }
            )
    return problems


class RunRecorder:
    def __init__(self, manager: RunStateManager, report: RecoveryReport | None = None) -> None:
        self.manager = manager
        self.report = report
        self.layout = manager.layout
        self.store = manager.store
        self.overhead_sec = 0.0

    @contextmanager
    def _timed(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.overhead_sec += time.perf_counter() - start

    # -- opening ---------------------------------------------------------------------------------
    @classmethod
    def start(
        cls,
        store: ResultStore,
        identity: RunIdentity,
        profile: str,
        components: list[tuple[str, str, bool]],
        source: dict[str, Any],
        retry_count: int = 0,
        settings: StateSettings | None = None,
    ) -> RunRecorder:
        start = time.perf_counter()
        manager = RunStateManager.create(
            store, identity, profile, components, source, retry_count, settings or StateSettings.from_env()
        )
        recorder = cls(manager)
        recorder.overhead_sec += time.perf_counter() - start
        return recorder

    @classmethod
    def resume(
        cls,
        store: ResultStore,
        layout: RunLayout,
        retry_count: int | None = None,
        settings: StateSettings | None = None,
    ) -> RunRecorder:
        """Recover a run's state for another attempt and journal `run_resumed`."""
        start = time.perf_counter()
        manager, report = RunStateManager.recover(
            store, layout, settings or StateSettings.from_env(), writable=True
        )
        previous = manager.state.retry_count
        retries = max(previous, retry_count or 0)
        if retries > previous:
            manager.retry(retries, manager.state.error_code)
        manager.resumed(report, retries)
        recorder = cls(manager, report)
        recorder.overhead_sec += time.perf_counter() - start
        return recorder

    @staticmethod
    def note_cache_hit(store: ResultStore, layout: RunLayout) -> None:
        """Journal `cache_hit` in the cached run's own journal."""
        manager, _ = RunStateManager.recover(store, layout, StateSettings.from_env(), writable=True)
        try:
            manager.cache_hit()
        finally:
            manager.close()

    # -- reads (through the managers) --------------------------------------------------------------
    @property
    def state(self) -> RunState:
        return self.manager.state

    def component(self, name: str) -> ComponentState:
        return self.manager.component_state(name)

    def dependency(self, asking: str | None, name: str) -> ComponentState:
        """`asking`'s view of dependency `name`: its Level 3 -> Level 2 -> `name`'s Level 3."""
        if asking is None:
            return self.manager.component_state(name)
        return self.manager.processor_of(asking).dependency(name)

    def verify(self, name: str) -> bool:
        """True when the component finished ok/empty and every artifact matches its sha256."""
        with self._timed():
            state = self.manager.component_state(name)
            if state.status not in VALID_STATUSES or not state.artifacts:
                return False
            problems = verify_artifacts(self.store, self.layout.run_dir, state.artifacts)
            if problems:
                self.manager.processor_of(name).invalid(name, problems)
            return not problems

    # -- writes ------------------------------------------------------------------------------------
    def started(self, name: str) -> None:
        with self._timed():
            self.manager.processor_of(name).started(name)

    def finished(
        self, record: ComponentRecord, batch_sizes: list[int] | None = None, oom_rss_mb: float | None = None
    ) -> None:
        with self._timed():
            outcome = ComponentState.model_validate(
                {
                    **record.model_dump(exclude={"name", "processor", "batch_sizes"}),
                    "batch_sizes": list(batch_sizes if batch_sizes is not None else record.batch_sizes),
                }
            )
            if record.error_code == ErrorCode.OUT_OF_MEMORY and oom_rss_mb is None:
                oom_rss_mb = record.peak_rss_mb
            self.manager.processor_of(record.name).finished(record.name, outcome, oom_rss_mb)

    def batch_halved(self, name: str, old: int, new: int, rss_mb: float | None, error: str) -> None:
        """An out-of-memory retried with a smaller batch (dataprocessor/adaptive_batch.py)."""
        with self._timed():
            self.manager.processor_of(name).batch_halved(name, old, new, rss_mb, error)

    def reused(self, name: str) -> ComponentRecord:
        """Journal that a verified component is kept; returns its manifest record."""
        with self._timed():
            self.manager.processor_of(name).reused(name, verified="sha256")
        return self.record_of(name)

    def record_of(self, name: str) -> ComponentRecord:
        """The manifest record of a finished component, read from the state (the one record of
        run progress: the manifest is written from it, never from a copy of its own)."""
        with self._timed():
            processor = self.manager.processor_of(name).processor
            return self.manager.component_state(name).to_record(name, processor)  # type: ignore[arg-type]

    def warning(self, message: str) -> None:
        with self._timed():
            self.manager.warning(message)

    def sweep_orphans(self) -> list[str]:
        """Delete temp files a crash left in the run directory (local stores; S3 has none)."""
        with self._timed():
            removed = []
            for rel in self.store.find(self.layout.run_dir):
                if posixpath.basename(rel).startswith(TMP_MARKER):
                    self.store.delete(rel)
                    self.manager.orphan_removed(rel[len(self.layout.run_dir) :].lstrip("/"))
                    removed.append(rel)
            return removed

    def finish(
        self,
        status: str,
        error_code: ErrorCode | None,
        error: str | None,
        duration_sec: float | None = None,
        peak_rss_mb: float | None = None,
    ) -> None:
        with self._timed():
            self.manager.finished(
                status, str(error_code) if error_code else None, error, duration_sec, peak_rss_mb
            )

    def close(self) -> None:
        self.manager.close()
