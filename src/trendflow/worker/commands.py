"""CLI commands of queue execution: `trendflow worker` and `trendflow batch` (registered in cli.py).

Heavy imports (Celery, the orchestrator) happen inside the commands, so `trendflow --help` stays fast.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

stderr = Console(stderr=True)


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def worker(
    concurrency: Annotated[
        int, typer.Option(min=1, help="Jobs this worker runs at once (pool processes).")
    ] = 1,
    queues: Annotated[
        list[str] | None, typer.Option(help="Queues to consume (repeat or comma-separate).")
    ] = None,
    health_port: Annotated[
        int | None, typer.Option(help="Port of /health (env TRENDFLOW_HEALTH_PORT).")
    ] = None,
    health_host: Annotated[
        str | None, typer.Option(help="Address of /health (0.0.0.0 in containers).")
    ] = None,
    store: Annotated[str | None, typer.Option(help="Result store (env TRENDFLOW_STORE).")] = None,
    scratch: Annotated[str | None, typer.Option(help="Local scratch folder (env TRENDFLOW_SCRATCH).")] = None,
    profiles: Annotated[
        list[str] | None, typer.Option(help="Profiles whose models /health requires.")
    ] = None,
    hostname: Annotated[
        str | None, typer.Option(help="Celery node name (default trendflow-<pid>@host).")
    ] = None,
    pool: Annotated[str, typer.Option(help="Celery pool: prefork (default), solo, threads.")] = "prefork",
    loglevel: Annotated[str, typer.Option(help="Log level.")] = "INFO",
) -> None:
    """Run a Celery worker for `process_video` jobs, with its health server (/health, /health/live)."""
    from trendflow.worker.config import WorkerSettings
    from trendflow.worker.launcher import run_worker

    logging.basicConfig(
        level=loglevel.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    settings = WorkerSettings.from_env(
        health_port=health_port,
        health_host=health_host,
        store_root=store,
        scratch_root=scratch,
        profiles=tuple(_split(profiles) or ()) or None,
    )
    run_worker(
        settings,
        concurrency=concurrency,
        queues=_split(queues),
        hostname=hostname,
        loglevel=loglevel,
        pool=pool,
    )


def batch(
    video_list: Annotated[
        Path, typer.Argument(help="CSV or JSON list: source, platform_id, video_id, metadata.")
    ],
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Follow the jobs to the end.")] = False,
    state: Annotated[Path | None, typer.Option(help="Batch ledger (default: <list>.state.jsonl).")] = None,
    profile: Annotated[str, typer.Option(help="Analysis profile.")] = "baseline",
    store: Annotated[str | None, typer.Option(help="Result store (env TRENDFLOW_STORE).")] = None,
    queue: Annotated[str | None, typer.Option(help="Queue (env TRENDFLOW_QUEUE).")] = None,
    force: Annotated[bool, typer.Option(help="Recompute even videos with a finished run.")] = False,
    retry_errors: Annotated[
        bool, typer.Option(help="Resubmit videos that failed with permanent errors too.")
    ] = False,
    local_workers: Annotated[
        int, typer.Option(min=0, help="Start this many local workers for the batch.")
    ] = 0,
    timeout: Annotated[float | None, typer.Option(help="Give up waiting after this many seconds.")] = None,
    index: Annotated[
        Path | None, typer.Option(help="Also write the runs index here (.parquet or .csv).")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log structured events.")] = False,
) -> None:
    """Submit every video of a list that has no valid run; with --wait, follow and summarise.

    Re-running the command resumes: finished videos are kept, submitted ones are followed.
    """
    from contextlib import nullcontext

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from trendflow.batch.dispatcher import Progress as BatchProgress
    from trendflow.batch.report import print_summary, runs_index_frame
    from trendflow.batch.runner import BatchOptions, run_batch
    from trendflow.contracts.errors import TrendFlowError
    from trendflow.worker.config import WorkerSettings
    from trendflow.worker.processes import LocalWorkers

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    state_path = state or video_list.with_name(video_list.name + ".state.jsonl")
    try:
        settings = WorkerSettings.from_env(store_root=store, queue=queue)
        options = BatchOptions(
            profile=profile,
            wait=wait or local_workers > 0,
            force=force,
            retry_errors=retry_errors,
            timeout_s=timeout,
        )
        workers = LocalWorkers(settings, local_workers) if local_workers else nullcontext()
        columns = (
            TextColumn("[bold]batch"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
        )
        with workers, Progress(*columns, console=stderr, disable=not stderr.is_terminal) as bar:
            task = bar.add_task("", total=None)
            last_log = [0.0]

            def on_progress(update: BatchProgress) -> None:
                done, counts = update.counts["done"], update.counts
                text = f"ok={counts['success']} err={counts['error']} running={counts['running']}"
                bar.update(task, total=update.total, completed=done, description=text)
                if not stderr.is_terminal and time.monotonic() - last_log[0] > 10:
                    last_log[0] = time.monotonic()
                    stderr.print(f"batch: {done}/{update.total} done, {text}", markup=False)

            report = run_batch(video_list, settings, options, state_path, on_progress=on_progress)
    except TrendFlowError as exc:
        from trendflow.console import print_error

        print_error(stderr, exc.code, exc.message, exc.hint)
        typer.echo(json.dumps({"status": "error", "error_code": str(exc.code), "error": exc.message}))
        raise typer.Exit(2) from exc
    rows = report.rows()
    print_summary(rows, stderr)
    if index is not None:
        frame = runs_index_frame(rows)
        index.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(index) if index.suffix == ".parquet" else frame.to_csv(index, index=False)
    counts = {
        "submitted": report.submitted,
        "kept": report.kept,
        "followed": report.followed,
        "state": str(state_path),
    }
    summary = {s: sum(r["status"] == s for r in rows) for s in ("success", "error", "pending")}
    typer.echo(json.dumps({"videos": len(rows), **summary, **counts}))
    raise typer.Exit(1 if summary["error"] else 0)


def register_queue_commands(app: typer.Typer) -> None:
    app.command(name="worker")(worker)
    app.command(name="batch")(batch)
