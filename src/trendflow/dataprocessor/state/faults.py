"""Fault injection for crash tests: kill this process with SIGKILL at a named point.

Inert unless the environment variable TRENDFLOW_FAULT_INJECT is set. Its value is a
comma-separated list of `point:subject` entries, for example
`after_component:frame_stats` or `mid_checkpoint:3,mid_journal_append:17`. Points:

- `before_component:<name>` / `after_component:<name>`: around a component (the orchestrator);
  "after" is once its outcome is in the journal, before the manifest is rewritten.
- `mid_npz_write:<name>`: half of the component's NPZ is on disk in a temp file, the final
  file is not (the state a crash inside an atomic write leaves behind).
- `mid_checkpoint:<k>`: during the k-th checkpoint (1-based), after the first state file.
- `mid_journal_append:<seq>`: half of the line of event `seq` is in the journal (a torn line).
- `before_finish:run`: every component done, the run not yet marked finished.
- `mid_decode:<k>`: the k-th analysis frame is in the scratch frames file; decoding goes on no more.
- `mid_audio_extract:started`: ffmpeg's audio extraction is running (it is orphaned, as in a crash).
- `mid_store_write:<file name>[#n]`: the n-th (default first) store write of a file with that name:
  locally half of the bytes are in the temp file next to it; on S3 the PUT never completes (S3
  makes a PUT visible whole or not at all, so that is all a kill mid-PUT can leave).
- `during_resume:recovered` / `during_resume:planned`: a resume, after recovering the state /
  after deciding what to keep, before any work.

SIGKILL cannot be caught: no `finally`, no atexit, no flush runs - exactly like the kernel's
OOM killer or a lost machine.
"""

from __future__ import annotations

import os
import signal
import uuid
from typing import Protocol

from trendflow.storage.layout import TMP_MARKER


class ResultStore(Protocol):
    """What a torn write needs of the store (no import of storage/store.py: the store calls this
    module, so importing it back would make a cycle)."""

    is_local: bool

    def local_path(self, rel: str) -> str: ...


FAULT_ENV = "TRENDFLOW_FAULT_INJECT"


def armed(point: str, subject: object) -> bool:
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return False
    return f"{point}:{subject}" in {item.strip() for item in spec.split(",")}


def kill_now() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def crash_point(point: str, subject: object) -> None:
    """Die here when `point:subject` is armed; otherwise do nothing."""
    if armed(point, subject):
        kill_now()


_write_counts: dict[str, int] = {}


def mid_store_write(store: ResultStore, rel: str, data: bytes) -> None:
    """Called by `ResultStore.write_bytes` when fault injection is on: die inside this write if
    `mid_store_write:<name>[#n]` is armed for it."""
    name = os.path.basename(rel)
    _write_counts[name] = count = _write_counts.get(name, 0) + 1
    if armed("mid_store_write", f"{name}#{count}") or (count == 1 and armed("mid_store_write", name)):
        torn_write(store, rel, data)


def torn_write(store: ResultStore, rel: str, data: bytes) -> None:
    """Leave what a crash inside `ResultStore.write_bytes` leaves, then die: locally half of the
    bytes in the temp file next to the target (the target itself untouched); on S3 nothing,
    since a PUT is all or nothing."""
    if store.is_local:
        path = store.local_path(rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = os.path.join(os.path.dirname(path), f"{TMP_MARKER}{uuid.uuid4().hex}-{os.path.basename(path)}")
        with open(tmp, "wb") as handle:
            handle.write(data[: len(data) // 2])
            handle.flush()
            os.fsync(handle.fileno())
    kill_now()
