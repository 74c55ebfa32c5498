"""`state.jsonl`: the local ledger of one batch (what was submitted, what came back).

Append-only, one JSON object per line, flushed and fsynced per write, so an interrupted batch
(Ctrl-C, a lost terminal, a reboot) knows exactly which jobs it had already submitted and which
ended. A torn last line from a crash is ignored, and cut off by the next append. The latest
line per job key wins.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from trendflow.contracts.identity import utc_now
from trendflow.worker.payload import JobPayload, JobResult

logger = logging.getLogger(__name__)


class StateRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event: Literal["submitted", "finished"]
    key: str
    at: datetime
    payload: JobPayload | None = None
    metadata_sha256: str | None = None
    result: JobResult | None = None


class BatchState:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.latest: dict[str, StateRecord] = {}
        self.submitted: dict[str, JobPayload] = {}
        self._valid_bytes = 0
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        data = self.path.read_bytes()
        offset = 0
        for number, line in enumerate(data.split(b"\n"), start=1):
            end = offset + len(line) + 1
            if line.strip():
                try:
                    record = StateRecord.model_validate(json.loads(line))
                except (json.JSONDecodeError, ValidationError) as exc:
                    if end >= len(data):  # a torn last line: the write a crash interrupted
                        logger.warning("ignoring torn last line of %s: %s", self.path, exc)
                        break
                    raise ValueError(f"{self.path}:{number} is not a batch state record: {exc}") from exc
                self._apply(record)
            self._valid_bytes = min(end, len(data))
            offset = end

    def _apply(self, record: StateRecord) -> None:
        self.latest[record.key] = record
        if record.payload is not None:
            self.submitted[record.key] = record.payload

    def _append(self, record: StateRecord) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = record.model_dump_json(exclude_none=True) + "\n"
        with open(self.path, "ab") as handle:
            if handle.tell() > self._valid_bytes:
                handle.truncate(self._valid_bytes)  # drop a torn tail left by a crash
            handle.write(line.encode())
            handle.flush()
            os.fsync(handle.fileno())
            self._valid_bytes = handle.tell()
        self._apply(record)

    def record_submitted(self, key: str, payload: JobPayload) -> None:
        digest = metadata_digest(payload.metadata)
        kept = payload.model_copy(update={"metadata": None})
        self._append(
            StateRecord(event="submitted", key=key, at=utc_now(), payload=kept, metadata_sha256=digest)
        )

    def record_finished(self, key: str, result: JobResult) -> None:
        self._append(StateRecord(event="finished", key=key, at=utc_now(), result=result))

    def result(self, key: str) -> JobResult | None:
        record = self.latest.get(key)
        return record.result if record is not None and record.event == "finished" else None

    def pending_payload(self, key: str) -> JobPayload | None:
        """The payload of a job submitted but not yet finished (to follow, not resubmit)."""
        record = self.latest.get(key)
        return record.payload if record is not None and record.event == "submitted" else None

    def summary(self) -> dict[str, Any]:
        finished = [r.result for r in self.latest.values() if r.result is not None]
        return {
            "jobs": len(self.latest),
            "success": sum(r.status == "success" for r in finished),
            "error": sum(r.status == "error" for r in finished),
            "pending": sum(r.event == "submitted" for r in self.latest.values()),
        }


def metadata_digest(metadata: dict[str, Any] | None) -> str | None:
    if metadata is None:
        return None
    return hashlib.sha256(json.dumps(metadata, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
