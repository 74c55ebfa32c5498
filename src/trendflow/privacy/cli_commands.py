"""`trendflow delete` and `trendflow retention apply` (registered in cli.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from trendflow.contracts.errors import TrendFlowError

stderr = Console(stderr=True)
DEFAULT_API_CACHE = "data/02_intermediate/youtube_api_cache.jsonl"  # params: dataset.enrichment


def _default_store() -> str:
    return os.environ.get("TRENDFLOW_STORE", "data/02_intermediate/result_store")


def delete(
    platform_id: Annotated[str, typer.Option(help="Platform id of the video.")],
    video_id: Annotated[str, typer.Option(help="Video id of the video.")],
    store: Annotated[str | None, typer.Option(help="Result store (env TRENDFLOW_STORE).")] = None,
    api_cache: Annotated[
        Path | None, typer.Option(help=f"YouTube API cache index (default {DEFAULT_API_CACHE} if present).")
    ] = None,
    redis_url: Annotated[
        str | None, typer.Option(help="Redis of the queue whose results to clean (env TRENDFLOW_REDIS_URL).")
    ] = None,
) -> None:
    """Delete every artifact, state entry, cached metadata and queue result of one video."""
    from trendflow.privacy.deletion import delete_video
    from trendflow.storage.store import ResultStore

    try:
        report = delete_video(
            ResultStore(store or _default_store()),
            platform_id,
            video_id,
            api_cache=api_cache or Path(DEFAULT_API_CACHE),
            redis_url=redis_url or os.environ.get("TRENDFLOW_REDIS_URL"),
        )
    except TrendFlowError as exc:
        _fail(exc)
    stderr.print(
        f"deleted {len(report.run_ids)} run(s), {report.store_objects} stored object(s), "
        f"{report.api_cache_entries} API cache entr(ies), {report.queue_keys} queue key(s)",
        markup=False,
        highlight=False,
    )
    summary = report.as_dict()
    summary.pop("platform_id"), summary.pop("video_id")  # the summary may be logged: ids stay out
    typer.echo(json.dumps({"status": "success", **summary}))


def retention_apply(
    store: Annotated[str | None, typer.Option(help="Result store (env TRENDFLOW_STORE).")] = None,
) -> None:
    """Remove raw text kept in NPZ files past its retention (--keep-raw-text --retention-days)."""
    from trendflow.privacy.retention import apply_retention
    from trendflow.storage.store import ResultStore

    try:
        report = apply_retention(ResultStore(store or _default_store()))
    except TrendFlowError as exc:
        _fail(exc)
    typer.echo(json.dumps({"status": "success", **report.as_dict()}))


def _fail(exc: TrendFlowError) -> NoReturn:
    from trendflow.console import print_error

    print_error(stderr, exc.code, exc.message, exc.hint)
    typer.echo(json.dumps({"status": "error", "error_code": str(exc.code), "error": exc.message}))
    raise typer.Exit(1)


def register_privacy_commands(app: typer.Typer) -> None:
    app.command(name="delete")(delete)
    retention = typer.Typer(help="Raw-text retention (SPEC 13).", no_args_is_help=True)
    retention.command(name="apply")(retention_apply)
    app.add_typer(retention, name="retention")
