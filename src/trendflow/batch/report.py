"""What a batch produced: `runs_index` rows (one per video) and the summary table of the CLI."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from trendflow.batch.jobs import PlannedJob
from trendflow.worker.payload import JobResult

INDEX_COLUMNS = [
    "platform_id",
    "video_id",
    "source",
    "profile",
    "config_hash",
    "run_id",
    "status",
    "error_code",
    "error_reason",
    "error",
    "retry_count",
    "retry_error_codes",
    "cache_hit",
    "resumed",
    "manifest_uri",
    "worker",
    "submitted_at",
    "started_at",
    "finished_at",
    "queue_wait_sec",
    "duration_sec",
]


def index_row(job: PlannedJob, result: JobResult | None) -> dict[str, Any]:
    """One `runs_index` row. A job without a result yet is `pending`."""
    payload = job.payload
    row: dict[str, Any] = dict.fromkeys(INDEX_COLUMNS)
    row.update(
        platform_id=payload.platform_id if payload else job.entry.platform_id,
        video_id=payload.video_id if payload else job.entry.video_id,
        source=job.entry.source,
        profile=payload.profile if payload else None,
        config_hash=payload.config_hash if payload else None,
        run_id=payload.run_id if payload else None,
        status="pending",
        retry_count=0,
        retry_error_codes="",
        cache_hit=False,
        resumed=False,
    )
    if result is not None:
        row.update(
            {k: v for k, v in result.model_dump(mode="json").items() if k in row and v is not None},
            run_id=result.run_id or row["run_id"],
            error_code=str(result.error_code) if result.error_code else None,
            retry_error_codes=",".join(map(str, result.retry_error_codes)),
        )
        for name in ("submitted_at", "started_at", "finished_at"):
            value = getattr(result, name)
            row[name] = value.isoformat() if value is not None else None
    return row


def runs_index_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=INDEX_COLUMNS)
    for name in ("submitted_at", "started_at", "finished_at"):
        frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
    frame["retry_count"] = frame["retry_count"].fillna(0).astype("int64")
    for name in ("cache_hit", "resumed"):
        frame[name] = frame[name].fillna(False).astype(bool)
    for name in ("queue_wait_sec", "duration_sec"):
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    text = [
        c
        for c in INDEX_COLUMNS
        if c
        not in (
            "retry_count",
            "cache_hit",
            "resumed",
            "queue_wait_sec",
            "duration_sec",
            "submitted_at",
            "started_at",
            "finished_at",
        )
    ]
    frame[text] = frame[text].astype("string")
    return frame.sort_values(["platform_id", "video_id"], na_position="last").reset_index(drop=True)


def status_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    counts = Counter(r["status"] for r in rows)
    errors = Counter(r["error_code"] for r in rows if r["status"] == "error")
    reasons = Counter(
        f"{r['error_code']}:{r['error_reason']}"
        for r in rows
        if r["status"] == "error" and r.get("error_reason")
    )
    return {
        "videos": len(rows),
        **counts,
        **{f"error:{k}": v for k, v in sorted(errors.items())},
        **{f"reason:{k}": v for k, v in sorted(reasons.items())},
    }


def summary_table(rows: list[dict[str, Any]], max_rows: int = 50) -> Table:
    """Errors first (what needs attention), then the rest; long lists are cut with a note."""
    ordered = sorted(
        rows, key=lambda r: (r["status"] != "error", r["status"] != "pending", str(r["video_id"]))
    )
    table = Table(title="batch summary", show_lines=False)
    for name in ("video", "status", "error", "retries", "run", "sec"):
        table.add_column(name, overflow="fold")
    for row in ordered[:max_rows]:
        colour = {"success": "green", "error": "red"}.get(row["status"], "yellow")
        table.add_row(
            escape(f"{row['platform_id']}/{row['video_id']}" if row["video_id"] else str(row["source"])),
            f"[{colour}]{row['status']}[/{colour}]" + (" (cached)" if row.get("cache_hit") else ""),
            escape(
                str(row["error_code"] or "")
                + (f" ({row['error_reason']})" if row.get("error_reason") else "")
            ),
            str(row["retry_count"] or 0),
            str(row["run_id"] or ""),
            f"{row['duration_sec']:.1f}" if isinstance(row.get("duration_sec"), float) else "",
        )
    if len(ordered) > max_rows:
        table.caption = f"{len(ordered) - max_rows} more rows in the runs index"
    return table


def print_summary(rows: list[dict[str, Any]], console: Console) -> None:
    console.print(summary_table(rows))
    counts = status_counts(rows)
    console.print(" ".join(f"{k}={v}" for k, v in counts.items()), markup=False)
