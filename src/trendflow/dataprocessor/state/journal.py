"""The run's durable event journal (SPEC 10): append first, checkpoint later, replay after a crash.

Two physical forms, one reader:

- Local store: one append-only file `state_events.jsonl`. Every append writes whole lines,
  flushes and fsyncs before it returns (fsync can be turned off for benchmarks only).
  A crash can leave a torn last line; the reader ignores it with a warning and the next
  writer truncates it away before appending.
- S3: objects cannot be appended to, so each append is one segment object
  `state_events/<first_seq:012d>-<writer>.jsonl`, written by a single PUT (visible whole or not
  at all). Segments sort by name = by sequence number; the writer tag keeps two writers from
  overwriting each other's segment.

`read_journal` reads both forms from any store, so recovery code does not care where it runs.
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.identity import utc_now
from trendflow.dataprocessor.state import faults
from trendflow.dataprocessor.state.models import EVENTS_BY_LEVEL, StateEvent
from trendflow.storage.layout import RUN_STATE, STATE_EVENTS, RunLayout
from trendflow.storage.store import TMP_MARKER, ResultStore

logger = logging.getLogger(__name__)
SEGMENT_DIR = "state_events"
SEGMENT_SUFFIX = ".jsonl"
_SEQ_PREFIX = re.compile(rb'^\{"seq":(\d+),')


@dataclass(frozen=True)
class EventDraft:
    """An event before the journal gives it a sequence number and a time."""

    level: int
    subject: str
    event: str
    payload: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.event not in EVENTS_BY_LEVEL.get(self.level, ()):
            raise ValueError(f"event {self.event!r} is not a level {self.level} event")


@dataclass
class JournalContents:
    events: list[StateEvent]  # in sequence order; only those after `after_seq` when one was given
    last_seq: int = -1  # the journal's last sequence number (also when its event was not kept)
    torn_bytes: int = 0  # bytes of an incomplete last line that were ignored
    valid_bytes: int = 0  # length of the local file up to its last complete event
    segments: int = 0


def journal_path(run_dir: str) -> str:
    return posixpath.join(run_dir, STATE_EVENTS)


def segment_dir(run_dir: str) -> str:
    return posixpath.join(run_dir, SEGMENT_DIR)


def _parse_lines(
    data: bytes, where: str, tolerate_torn_tail: bool, after_seq: int
) -> tuple[list[StateEvent], int, int, int]:
    """Events of one file after `after_seq`; returns (events, last_seq, valid_bytes, torn_bytes).

    Lines up to `after_seq` (the writer puts `seq` first) are only checked to be complete: a
    checkpoint already contains them, so validation is spent on the events a replay applies.
    """
    events: list[StateEvent] = []
    last_seq = -1
    offset = 0
    lines = data.split(b"\n")
    for number, line in enumerate(lines, start=1):
        is_last = number == len(lines)
        if is_last and not line:
            break  # the file ends with a newline, as every complete append does
        try:
            if is_last:
                raise ValueError("no newline at the end of the line")
            prefix = _SEQ_PREFIX.match(line)
            if prefix and int(prefix[1]) <= after_seq and line.rstrip().endswith(b"}"):
                last_seq = max(last_seq, int(prefix[1]))  # already in every checkpoint: not re-validated
            else:
                event = StateEvent.model_validate_json(line)
                if event.seq > after_seq:
                    events.append(event)
                last_seq = max(last_seq, event.seq)
        except (ValidationError, ValueError) as exc:
            last_content = is_last or not any(lines[number:])
            if tolerate_torn_tail and last_content:
                torn = len(data) - offset
                logger.warning("journal %s: ignoring a torn last line (%d bytes): %s", where, torn, exc)
                return events, last_seq, offset, torn
            raise TrendFlowError(
                ErrorCode.INTERNAL,
                f"journal {where}: line {number} is not a valid event ({exc}); the journal is damaged - "
                "move the run directory aside and process the video again",
            ) from exc
        offset += len(line) + 1
    return events, last_seq, offset, 0


def run_has_state(store: ResultStore, layout: RunLayout) -> bool:
    """Whether a run directory already has state (a journal in either form, or a checkpoint)."""
    return (
        store.exists(journal_path(layout.run_dir))
        or store.exists(layout.path(RUN_STATE))
        or bool(store.listdir(segment_dir(layout.run_dir)))
    )


def read_journal(store: ResultStore, run_dir: str, after_seq: int = -1) -> JournalContents:
    """The events of a run after `after_seq` (default: all), in sequence order, from the local
    file and/or S3 segments."""
    contents = JournalContents(events=[])
    path = journal_path(run_dir)
    if store.exists(path):
        parsed, contents.last_seq, contents.valid_bytes, contents.torn_bytes = _parse_lines(
            store.read_bytes(path), store.uri(path), True, after_seq
        )
        contents.events.extend(parsed)
    listing = store.listdir(segment_dir(run_dir))
    names = sorted(n for n in listing if n.endswith(SEGMENT_SUFFIX) and not n.startswith(TMP_MARKER))
    first_seqs = [int(n.split("-")[0]) for n in names]
    for i, name in enumerate(names):
        if i + 1 < len(names) and first_seqs[i + 1] - 1 <= after_seq:
            continue  # every event of this segment precedes the next one's: all already checkpointed
        rel = posixpath.join(segment_dir(run_dir), name)
        # A segment is one PUT: it cannot be torn, so any bad line is damage.
        parsed, last, _, _ = _parse_lines(store.read_bytes(rel), store.uri(rel), False, after_seq)
        contents.events.extend(parsed)
        contents.last_seq = max(contents.last_seq, last)
        contents.segments += 1
    contents.events.sort(key=lambda e: e.seq)
    return contents


class Journal:
    """The writer side: assigns sequence numbers, appends durably, one writer per run."""

    def __init__(
        self,
        store: ResultStore,
        run_dir: str,
        next_seq: int,
        fsync: bool = True,
        valid_bytes: int | None = None,
    ) -> None:
        self.store = store
        self.run_dir = run_dir
        self.next_seq = next_seq
        self.fsync = fsync
        self._lock = threading.Lock()
        self._writer_tag = uuid.uuid4().hex[:8]
        self._handle: Any = None
        if store.is_local:
            path = store.local_path(journal_path(run_dir))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            self._handle = open(path, "ab")  # noqa: SIM115 - kept open for the run's lifetime
            if valid_bytes is not None and self._handle.tell() > valid_bytes:
                # Drop a torn tail so the next line does not glue onto it.
                self._handle.truncate(valid_bytes)
                self._handle.seek(valid_bytes)

    @classmethod
    def open(cls, store: ResultStore, run_dir: str, fsync: bool = True, min_next_seq: int = 0) -> Journal:
        """A writer positioned after the events already in the journal."""
        contents = read_journal(store, run_dir)
        return cls(
            store, run_dir, max(contents.last_seq + 1, min_next_seq), fsync, valid_bytes=contents.valid_bytes
        )

    def append(
        self, drafts: list[EventDraft], ts: datetime | None = None, sync: bool = True
    ) -> list[StateEvent]:
        """Append events; they are on disk (or in S3) when this returns. `sync=False` (local only)
        flushes to the OS without fsync: the lines survive a crash of the process, and the next
        synced append makes them durable against a crash of the machine too."""
        if not drafts:
            return []
        with self._lock:
            now = ts or utc_now()
            events = [
                StateEvent(
                    seq=self.next_seq + i,
                    ts=now,
                    level=d.level,
                    subject=d.subject,
                    event=d.event,
                    payload=d.payload,
                )
                for i, d in enumerate(drafts)
            ]
            data = "".join(e.model_dump_json() + "\n" for e in events).encode()
            self._write(events, data, sync)
            self.next_seq += len(events)
            return events

    def _write(self, events: list[StateEvent], data: bytes, sync: bool) -> None:
        torn = any(faults.armed("mid_journal_append", e.seq) for e in events)
        if self._handle is not None:
            try:
                if torn:
                    self._handle.write(data[: max(1, len(data) // 2)])
                    self._handle.flush()
                    os.fsync(self._handle.fileno())
                    faults.kill_now()
                self._handle.write(data)
                self._handle.flush()
                if self.fsync and sync:
                    os.fsync(self._handle.fileno())
            except OSError as exc:
                raise TrendFlowError(
                    ErrorCode.STORAGE_UNAVAILABLE,
                    f"cannot append to {self.store.uri(journal_path(self.run_dir))}: {exc}",
                ) from exc
            return
        if torn:
            faults.kill_now()  # a PUT is atomic: a crash leaves no part of the segment
        name = f"{events[0].seq:012d}-{self._writer_tag}{SEGMENT_SUFFIX}"
        self.store.write_bytes(posixpath.join(segment_dir(self.run_dir), name), data)

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                handle, self._handle = self._handle, None
                try:
                    handle.close()
                except OSError as exc:  # a full disk: the append that could not land already failed
                    logger.warning("journal of %s not closed cleanly: %s", self.run_dir, exc)
