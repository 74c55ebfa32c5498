"""The journal: durable appends, one reader for the local file and S3 segments, torn tails."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.dataprocessor.state.journal import (
    EventDraft,
    Journal,
    journal_path,
    read_journal,
    segment_dir,
)
from trendflow.storage.store import ResultStore

RUN_DIR = "local/vid/run1"
REPO = Path(__file__).resolve().parents[3]


def _drafts(n: int, start: int = 0) -> list[EventDraft]:
    return [EventDraft(2, "run", "warning", {"message": f"event {start + i}"}) for i in range(n)]


def test_appends_read_back_in_order_on_both_stores(store: ResultStore) -> None:
    journal = Journal.open(store, RUN_DIR)
    first = journal.append(_drafts(3))
    second = journal.append(_drafts(2, start=3))
    journal.close()
    assert [e.seq for e in first + second] == [0, 1, 2, 3, 4]
    contents = read_journal(store, RUN_DIR)
    assert [e.payload["message"] for e in contents.events] == [f"event {i}" for i in range(5)]
    assert contents.torn_bytes == 0
    if store.is_local:
        assert store.exists(journal_path(RUN_DIR)) and contents.segments == 0
    else:  # S3: one segment object per append, named by its first sequence number
        names = store.listdir(segment_dir(RUN_DIR))
        assert [n.split("-")[0] for n in names] == ["000000000000", "000000000003"]
        assert contents.segments == 2
    # A second writer continues the sequence instead of reusing numbers.
    journal = Journal.open(store, RUN_DIR)
    assert [e.seq for e in journal.append(_drafts(1))] == [5]
    journal.close()


def test_unknown_or_misplaced_events_are_rejected() -> None:
    with pytest.raises(ValueError, match="not a level 3 event"):
        EventDraft(3, "visual/x", "run_started")
    with pytest.raises(ValueError, match="not a level 2 event"):
        EventDraft(2, "run", "no_such_event")


def test_torn_last_line_is_ignored_with_a_warning_and_truncated_by_the_next_writer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = ResultStore(str(tmp_path))
    journal = Journal.open(store, RUN_DIR)
    journal.append(_drafts(3))
    journal.close()
    path = Path(store.local_path(journal_path(RUN_DIR)))
    whole = path.read_bytes()
    with open(path, "ab") as handle:
        handle.write(b'{"seq":3,"ts":"2026-01-01T00:00:00Z","lev')
    with caplog.at_level(logging.WARNING):
        contents = read_journal(store, RUN_DIR)
    assert [e.seq for e in contents.events] == [0, 1, 2]
    assert contents.torn_bytes == len(path.read_bytes()) - len(whole)
    assert "torn last line" in caplog.text
    journal = Journal.open(store, RUN_DIR)
    journal.append(_drafts(1, start=3))
    journal.close()
    assert path.read_bytes().startswith(whole)
    assert [e.seq for e in read_journal(store, RUN_DIR).events] == [0, 1, 2, 3]
    assert read_journal(store, RUN_DIR).torn_bytes == 0


def test_damage_before_the_last_line_is_an_error(tmp_path: Path) -> None:
    store = ResultStore(str(tmp_path))
    journal = Journal.open(store, RUN_DIR)
    journal.append(_drafts(3))
    journal.close()
    path = Path(store.local_path(journal_path(RUN_DIR)))
    lines = path.read_bytes().split(b"\n")
    lines[1] = b"garbage"
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(TrendFlowError) as err:
        read_journal(store, RUN_DIR)
    assert err.value.code is ErrorCode.INTERNAL and "line 2" in err.value.message


def test_one_reader_for_both_forms(tmp_path: Path) -> None:
    """A run copied from S3 to a folder (segments) and appended to locally reads as one journal."""
    store = ResultStore(str(tmp_path))
    events = [
        {
            "seq": i,
            "ts": "2026-01-01T00:00:00Z",
            "level": 2,
            "subject": "run",
            "event": "warning",
            "payload": {"message": str(i)},
        }
        for i in range(4)
    ]
    store.write_bytes(
        f"{segment_dir(RUN_DIR)}/000000000000-aaaaaaaa.jsonl",
        "".join(json.dumps(e) + "\n" for e in events[:2]).encode(),
    )
    store.write_bytes(
        f"{segment_dir(RUN_DIR)}/000000000002-bbbbbbbb.jsonl",
        "".join(json.dumps(e) + "\n" for e in events[2:]).encode(),
    )
    journal = Journal.open(store, RUN_DIR)
    assert journal.next_seq == 4
    journal.append(_drafts(1))
    journal.close()
    contents = read_journal(store, RUN_DIR)
    assert [e.seq for e in contents.events] == [0, 1, 2, 3, 4] and contents.segments == 2


def test_a_process_killed_mid_append_leaves_a_torn_line_that_recovery_skips(tmp_path: Path) -> None:
    script = (
        "import sys; from trendflow.storage.store import ResultStore;"
        "from trendflow.dataprocessor.state.journal import Journal, EventDraft;"
        "j = Journal.open(ResultStore(sys.argv[1]), 'local/vid/run1');"
        "[j.append([EventDraft(2, 'run', 'warning', {'message': 'x' * 200})]) for _ in range(10)]"
    )
    env = {**os.environ, "TRENDFLOW_FAULT_INJECT": "mid_journal_append:6", "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=env, timeout=120, check=False)
    assert proc.returncode == -9
    contents = read_journal(ResultStore(str(tmp_path)), RUN_DIR)
    assert [e.seq for e in contents.events] == list(range(6))
    assert contents.torn_bytes > 0
