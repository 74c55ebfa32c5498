"""Local scratch (downloads, decoded frames, audio): one folder per run, never left behind.

Every run works in `<root>/run-<pid>-<rand>/` (a worker's job in `<root>/job-<pid>-...`), with a
`.scratch` marker holding its owner and creation time. A run removes its folder when it ends; a
run killed by SIGKILL or the OOM killer cannot, so every run start, resume and worker start-up
sweeps the root: folders whose owner process is gone (on this host), and folders older than the
job time limit (a run never lives longer), are removed. `trendflow clean` does the same on demand
and reports what it found. Root: `--scratch` / ProcessRequest.scratch_root, else
TRENDFLOW_SCRATCH, else `<tmp>/trendflow-scratch`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)
SCRATCH_ENV = "TRENDFLOW_SCRATCH"
MARKER = ".scratch"
PREFIXES = ("run-", "job-")
DEFAULT_MAX_AGE_S = 3600.0  # the worker's default job time limit; a run never lives longer


def max_age_s() -> float:
    """The job time limit (TRENDFLOW_JOB_TIME_LIMIT_S, as the worker reads it), else the default."""
    try:
        return float(os.environ.get("TRENDFLOW_JOB_TIME_LIMIT_S") or DEFAULT_MAX_AGE_S)
    except ValueError:
        return DEFAULT_MAX_AGE_S


def default_root(explicit: str | Path | None = None) -> Path:
    if explicit:
        return Path(explicit)
    return Path(os.environ.get(SCRATCH_ENV) or os.path.join(tempfile.gettempdir(), "trendflow-scratch"))


def new_scratch(root: str | Path, prefix: str = "run-", tag: str = "") -> Path:
    """A fresh folder `<root>/<prefix><pid>-[<tag>-]<rand>` with its owner marker."""
    name = f"{prefix}{os.getpid()}-{f'{tag}-' if tag else ''}{uuid.uuid4().hex[:8]}"
    path = Path(root) / name
    path.mkdir(parents=True, exist_ok=False)
    owner = {"pid": os.getpid(), "host": socket.gethostname(), "created": time.time()}
    (path / MARKER).write_text(json.dumps(owner))
    return path


@dataclass(frozen=True)
class Leftover:
    path: Path
    reason: str  # owner_gone | too_old
    bytes: int
    age_s: float


def find_leftovers(root: str | Path, max_age: float | None = None) -> list[Leftover]:
    """Scratch folders under `root` whose run is over: owner gone, or older than `max_age` s."""
    max_age = max_age_s() if max_age is None else max_age
    root = Path(root)
    if not root.is_dir():
        return []
    found: list[Leftover] = []
    now = time.time()
    for entry in sorted(root.iterdir()):
        if not entry.is_dir() or not entry.name.startswith(PREFIXES):
            continue
        pid, host, created = _owner(entry)
        age = max(0.0, now - created)
        if age > max_age:
            reason = "too_old"
        elif host == socket.gethostname() and pid is not None and not pid_alive(pid):
            reason = "owner_gone"
        else:
            continue
        found.append(Leftover(entry, reason, _size(entry), round(age, 1)))
    return found


def clean_leftovers(root: str | Path, max_age: float | None = None) -> list[Leftover]:
    removed = find_leftovers(root, max_age)
    for leftover in removed:
        shutil.rmtree(leftover.path, ignore_errors=True)
    if removed:
        logger.info("removed %d stale scratch folder(s) under %s", len(removed), root)
    return removed


def _owner(entry: Path) -> tuple[int | None, str | None, float]:
    try:
        owner = json.loads((entry / MARKER).read_text())
        return int(owner["pid"]), str(owner["host"]), float(owner["created"])
    except (OSError, ValueError, KeyError, TypeError):
        # No marker (an older folder, or killed before writing it): the pid is in the name.
        pid_text = entry.name.split("-", 2)[1] if entry.name.count("-") >= 1 else ""
        return (int(pid_text) if pid_text.isdigit() else None), socket.gethostname(), entry.stat().st_mtime


def _size(path: Path) -> int:
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):  # removed while walking
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
