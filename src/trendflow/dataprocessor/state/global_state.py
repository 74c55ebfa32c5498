"""Level 1: every run known to a result store, safe under many concurrent workers.

Concurrency design: per-run entries merged on read. No process ever rewrites another run's
data, so no update can be lost and no lock is needed (S3 has none to offer):

- each run's own process writes its entry as a new revision object
  `_state/runs/<platform>/<video>/<run_id>/<revision:010d>.json` (one atomic write), then deletes
  the older revisions; the newest revision always exists;
- `state_level1_global.json` is a checkpoint: the merged view, written atomically by `compact()`
  (at the end of every run). Two workers compacting at once may each write a view that lacks the
  other's newest entries; that is harmless, because
- readers merge: checkpoint + a listing of `_state/runs/`, reading only the entries whose
  revision is newer than the checkpoint's (or that it lacks) and dropping runs whose entries were
  deleted (a video deletion, SPEC 13).
"""

from __future__ import annotations

import logging
import posixpath
import re

from pydantic import ValidationError

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.identity import utc_now
from trendflow.dataprocessor.state.models import GlobalState, RunEntry
from trendflow.storage.layout import GLOBAL_STATE, video_dir
from trendflow.storage.store import ResultStore

logger = logging.getLogger(__name__)
ENTRIES_DIR = "_state/runs"
_ENTRY_RE = re.compile(r"^(?P<key>[^/]+/[^/]+/[^/]+)/(?P<rev>\d{10})\.json$")
_READ_ATTEMPTS = 5


def entry_dir(key: str) -> str:
    return posixpath.join(ENTRIES_DIR, key)


def entry_path(key: str, revision: int) -> str:
    return posixpath.join(ENTRIES_DIR, key, f"{revision:010d}.json")


class GlobalStateManager:
    """The only reader and writer of Level 1 state of one store."""

    def __init__(self, store: ResultStore) -> None:
        self.store = store

    # -- writes --------------------------------------------------------------------------------
    def put(self, entry: RunEntry) -> RunEntry:
        """Publish a new revision of one run's entry (called by that run's process only)."""
        revisions = self._revisions(entry.key)
        stored = entry.model_copy(update={"revision": max(revisions, default=0) + 1, "updated_at": utc_now()})
        self.store.write_bytes(
            entry_path(entry.key, stored.revision), stored.model_dump_json(indent=1).encode()
        )
        for old in revisions:  # after the new one exists: a reader always finds one revision
            self.store.delete(entry_path(entry.key, old))
        return stored

    def compact(self) -> GlobalState:
        """Rewrite the checkpoint from the merged view; returns that view."""
        state = self.read()
        state.updated_at = utc_now()
        self.store.write_bytes(GLOBAL_STATE, state.model_dump_json(indent=1).encode())
        return state

    def forget_video(self, platform_id: str, video_id: str) -> None:
        """Drop every entry of a video (SPEC 13 deletion); the next compaction forgets its runs."""
        self.store.delete(posixpath.join(ENTRIES_DIR, video_dir(platform_id, video_id)), recursive=True)
        self.compact()

    # -- reads ---------------------------------------------------------------------------------
    def checkpoint(self) -> GlobalState:
        if not self.store.exists(GLOBAL_STATE):
            return GlobalState()
        try:
            return GlobalState.model_validate_json(self.store.read_bytes(GLOBAL_STATE))
        except (ValidationError, ValueError) as exc:
            # The checkpoint is only a cache of the entries: rebuild rather than fail.
            logger.warning("ignoring unreadable %s (%s); rebuilding from run entries", GLOBAL_STATE, exc)
            return GlobalState()

    def read(self) -> GlobalState:
        """The current Level 1 state: checkpoint merged with newer run entries."""
        checkpoint = self.checkpoint()
        runs: dict[str, RunEntry] = {}
        for key, revision in sorted(self._listing().items()):
            known = checkpoint.runs.get(key)
            if known is not None and known.revision >= revision:
                runs[key] = known
                continue
            entry = self.entry(key, hint=revision)
            if entry is not None:
                runs[key] = entry
        return GlobalState(updated_at=checkpoint.updated_at, runs=runs).recount()

    def entry(self, key: str, hint: int | None = None) -> RunEntry | None:
        """The newest entry of one run, or None when the store has none."""
        revision = hint
        for _ in range(_READ_ATTEMPTS):
            if revision is None:
                revision = max(self._revisions(key), default=None)
                if revision is None:
                    return None
            try:
                return RunEntry.model_validate_json(self.store.read_bytes(entry_path(key, revision)))
            except FileNotFoundError:
                revision = None  # its writer published a newer revision meanwhile: look again
        raise TrendFlowError(
            ErrorCode.STORAGE_UNAVAILABLE, f"run entry {key} kept changing while being read; try again"
        )

    def _revisions(self, key: str) -> list[int]:
        return sorted(
            int(name[:-5])
            for name in self.store.listdir(entry_dir(key))
            if name.endswith(".json") and name[:-5].isdigit()
        )

    def _listing(self) -> dict[str, int]:
        """Run key -> newest revision, from one recursive listing."""
        newest: dict[str, int] = {}
        prefix = ENTRIES_DIR + "/"
        for path in self.store.find(ENTRIES_DIR):
            match = _ENTRY_RE.match(path[len(prefix) :]) if path.startswith(prefix) else None
            if match is None:
                continue  # temp files of an atomic write in progress, stray files
            key, revision = match["key"], int(match["rev"])
            newest[key] = max(newest.get(key, 0), revision)
        return newest
