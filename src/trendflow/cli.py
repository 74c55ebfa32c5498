"""`trendflow` command line: process videos, and (per their issues) serve models, run batches."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from trendflow.dataprocessor.component import PrivacyPolicy
from trendflow.storage.store import ResultStore

app = typer.Typer(add_completion=False, no_args_is_help=True, help="TrendFlow: video -> features -> forecasts.")
stderr = Console(stderr=True)
DEFAULT_STORE = os.environ.get("TRENDFLOW_STORE", "data/02_intermediate/result_store")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )


@app.command()
def process(
    source: Annotated[str, typer.Argument(help="A video file path or URL.")],
    store: Annotated[str, typer.Option(help="Result store: a folder or s3://bucket/prefix.")] = DEFAULT_STORE,
    profile: Annotated[str, typer.Option(help="Analysis profile from component_graph.yaml.")] = "baseline",
    platform_id: Annotated[str | None, typer.Option(help="Platform id (default: from the source).")] = None,
    video_id: Annotated[str | None, typer.Option(help="Video id (default: platform id or content hash).")] = None,
    metadata: Annotated[Path | None, typer.Option(help="Sidecar JSON: title, description, tags, ...")] = None,
    force: Annotated[bool, typer.Option(help="Recompute even when a finished run exists.")] = False,
    keep_raw_text: Annotated[bool, typer.Option(help="Store raw text in NPZ (needs --retention-days).")] = False,
    retention_days: Annotated[int | None, typer.Option(help="Retention limit for kept raw text.")] = None,
    keep_frames: Annotated[bool, typer.Option(help="Keep the sampled frames in the store.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log structured events.")] = False,
) -> None:
    """Process one video; the last stdout line is a JSON summary of the run."""
    from trendflow.contracts.errors import TrendFlowError
    from trendflow.dataprocessor.run import ProcessRequest, RunOutcome, process_video

    _setup_logging(verbose)
    try:
        policy = PrivacyPolicy(
            keep_raw_text=keep_raw_text, raw_text_retention_days=retention_days, keep_frames=keep_frames
        )
        request = ProcessRequest(
            source=source,
            store=ResultStore(store),
            profile=profile,
            platform_id=platform_id,
            video_id=video_id,
            metadata_file=metadata,
            force=force,
            policy=policy,
        )
    except TrendFlowError as exc:
        outcome = RunOutcome(status="error", error_code=exc.code, error=exc.message)
    else:
        with Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=stderr,
            transient=True,
            disable=not stderr.is_terminal,
        ) as bar:
            task = bar.add_task("starting", total=None)
            done: set[str] = set()

            def on_progress(component: str, status: str) -> None:
                if status == "running":
                    bar.update(task, description=component)
                else:
                    done.add(component)
                    bar.update(task, completed=len(done))

            outcome = process_video(request, progress=on_progress)
    summary = outcome.summary()
    if outcome.status != "success":
        from trendflow.contracts.errors import HINTS

        if outcome.error_code:
            stderr.print(f"[red]error[/red] {outcome.error_code}: {outcome.error}\n{HINTS[outcome.error_code]}")
    typer.echo(json.dumps(summary))
    raise typer.Exit(0 if outcome.status == "success" else 1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
