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

SIGKILL cannot be caught: no `finally`, no atexit, no flush runs - exactly like the kernel's
OOM killer or a lost machine.
"""

from __future__ import annotations

import os
import signal
import uuid

from trendflow.storage.store import TMP_MARKER, ResultStore

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
