"""`trendflow` command line: process videos, and (per their issues) serve models, run batches."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import click
import typer

try:  # typer >= 0.26 vendors click: its usage errors are not click's own classes
    from typer._click.exceptions import NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover - older typer on plain click
    from click.exceptions import NoArgsIsHelpError, UsageError
from rich.console import Console

from trendflow.cli_progress import component_count, component_progress, summary_line
from trendflow.console import print_error
from trendflow.dataprocessor.component import PrivacyPolicy
from trendflow.storage.store import ResultStore

# Kedro loads `<package>.cli:cli` for project-specific `kedro` commands; TrendFlow adds none there
# (its own commands are the `trendflow` typer app below), so an empty group keeps `kedro run` working.
cli = click.Group(name="trendflow")

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="TrendFlow: video -> features -> forecasts."
)
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
    source: Annotated[
        str | None, typer.Argument(help="A video file path or URL (with --resume: default the run's own).")
    ] = None,
    store: Annotated[str, typer.Option(help="Result store: a folder or s3://bucket/prefix.")] = DEFAULT_STORE,
    profile: Annotated[str, typer.Option(help="Analysis profile from component_graph.yaml.")] = "baseline",
    platform_id: Annotated[str | None, typer.Option(help="Platform id (default: from the source).")] = None,
    video_id: Annotated[
        str | None, typer.Option(help="Video id (default: platform id or content hash).")
    ] = None,
    metadata: Annotated[Path | None, typer.Option(help="Sidecar JSON: title, description, tags, ...")] = None,
    force: Annotated[bool, typer.Option(help="Recompute even when a finished run exists.")] = False,
    keep_raw_text: Annotated[
        bool, typer.Option(help="Store raw text in NPZ (needs --retention-days).")
    ] = False,
    retention_days: Annotated[int | None, typer.Option(help="Retention limit for kept raw text.")] = None,
    keep_frames: Annotated[bool, typer.Option(help="Keep the sampled frames in the store.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log structured events.")] = False,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            metavar="RUN_DIR",
            help="Finish a crashed run: a run folder, an s3://.../<platform>/<video>/<run_id> URI, or "
            "<platform>/<video>/<run_id> inside --store. Valid artifacts are kept, the rest recomputed.",
        ),
    ] = None,
) -> None:
    """Process one video; the last stdout line is a JSON summary of the run."""
    from trendflow.contracts.errors import TrendFlowError
    from trendflow.dataprocessor.run import ProcessRequest, RunOutcome, process_video

    _setup_logging(verbose)
    try:
        policy = PrivacyPolicy(
            keep_raw_text=keep_raw_text, raw_text_retention_days=retention_days, keep_frames=keep_frames
        )
        if source is None and resume is None:
            raise TrendFlowError("invalid_request", "give a video (SOURCE) or --resume RUN_DIR")
        if resume is not None:
            store, resume = split_run_location(resume, store)
        request = ProcessRequest(
            source=source or "",
            resume=resume,
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
        with component_progress(stderr, component_count(profile) if resume is None else None) as progress:
            outcome = process_video(request, progress=progress)
        stderr.print(summary_line(outcome), highlight=False, markup=False, soft_wrap=True)
    summary = outcome.summary()
    if outcome.status != "success":
        from trendflow.contracts.errors import HINTS

        if outcome.error_code:
            print_error(stderr, outcome.error_code, outcome.error or "", HINTS[outcome.error_code])
    typer.echo(json.dumps(summary))
    raise typer.Exit(0 if outcome.status == "success" else 1)


def split_run_location(location: str, default_store: str) -> tuple[str, str]:
    """(store root, run dir) of a run given as an s3:// URI, a path inside the store, or a folder."""
    from trendflow.contracts.errors import ErrorCode, TrendFlowError

    shape = "a run folder <store>/<platform>/<video>/<run_id>, or <platform>/<video>/<run_id> in --store"
    if "://" in location:
        parts = location.rstrip("/").split("/")
        if len(parts) < 6 or not all(parts[2:]):  # s3:, "", bucket, platform, video, run_id
            raise TrendFlowError(ErrorCode.INVALID_REQUEST, f"--resume {location}: not {shape}")
        return "/".join(parts[:-3]), "/".join(parts[-3:])
    path = Path(location)
    if path.is_absolute() or (path.is_dir() and not (Path(default_store) / location).is_dir()):
        full = path.resolve()
        if len(full.parts) < 5:  # "/", "/tmp", ...: no <store>/<platform>/<video>/<run_id> there
            raise TrendFlowError(ErrorCode.INVALID_REQUEST, f"--resume {location}: not {shape}")
        return str(full.parents[2]), "/".join(full.parts[-3:])
    rel = location.strip("/")
    if len([p for p in rel.split("/") if p]) != 3:
        raise TrendFlowError(ErrorCode.INVALID_REQUEST, f"--resume {location}: not {shape}")
    return default_store, rel


@app.command()
def stats(
    store: Annotated[str, typer.Option(help="Result store: a folder or s3://bucket/prefix.")] = DEFAULT_STORE,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    profile: Annotated[str | None, typer.Option(help="Only runs of this analysis profile.")] = None,
) -> None:
    """Resource figures per component across the store's runs, for sizing batches and workers."""
    from trendflow.contracts.errors import TrendFlowError
    from trendflow.dataprocessor.stats import collect_stats, render_table

    _setup_logging(False)
    try:
        report = collect_stats(ResultStore(store), profile=profile)
    except TrendFlowError as exc:
        raise typer.Exit(_fail_summary(exc.code, exc.message, exc.hint)) from exc
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        Console(width=None if sys.stdout.isatty() else 200).print(render_table(report))


@app.command()
def clean(
    scratch: Annotated[
        str | None,
        typer.Option(help="Scratch root (env TRENDFLOW_SCRATCH, else <tmp>/trendflow-scratch)."),
    ] = None,
    max_age_s: Annotated[
        float | None,
        typer.Option(min=0, help="Also remove folders older than this (default: the job limit)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only report what would be removed.")] = False,
) -> None:
    """Report and remove scratch (frames, downloads) that crashed or killed runs left behind."""
    from trendflow.dataprocessor.scratch import clean_leftovers, default_root, find_leftovers

    root = default_root(scratch)
    leftovers = find_leftovers(root, max_age_s) if dry_run else clean_leftovers(root, max_age_s)
    for leftover in leftovers:
        stderr.print(
            f"{'would remove' if dry_run else 'removed'} {leftover.path} ({leftover.reason}, "
            f"{leftover.bytes / 1e6:.1f} MB, {leftover.age_s:.0f} s old)",
            markup=False,
            highlight=False,
        )
    total = sum(leftover.bytes for leftover in leftovers)
    summary = {"status": "success", "scratch": str(root), "dry_run": dry_run, "folders": len(leftovers)}
    typer.echo(json.dumps({**summary, "bytes": total}))


# ---- queue execution (issue 5: docs/queue.md): `trendflow worker`, `trendflow batch` ----------
from trendflow.worker.commands import register_queue_commands  # noqa: E402

register_queue_commands(app)
# ---- end of queue execution ----------------------------------------------------------------


# ---- model serving (issue 4: docs/serving.md): `trendflow serve-models`, `trendflow models build` ----
from trendflow.serving.cli_commands import register_serving_commands  # noqa: E402

register_serving_commands(app)
# ---- end of model serving ------------------------------------------------------------------------


# ---- forecasts (issue 7: docs/training.md): `trendflow predict SOURCE|RUN_DIR` --------------------
from trendflow.inference.cli_commands import register_predict_command  # noqa: E402

register_predict_command(app)
# ---- end of forecasts ------------------------------------------------------------------------------


# ---- delete requests and retention (issue 12, SPEC 13): `trendflow delete`, `trendflow retention` ----
from trendflow.privacy.cli_commands import register_privacy_commands  # noqa: E402

register_privacy_commands(app)
# ---- end of delete requests and retention ---------------------------------------------------------


def main() -> None:
    """Every failure ends with a JSON summary on stdout and a typed code, never usage text or a
    traceback: usage errors are `invalid_request`, an unexpected exception `internal` (its
    traceback only with TRENDFLOW_DEBUG=1)."""
    from trendflow.contracts.errors import ErrorCode, TrendFlowError
    from trendflow.warnings_routing import route_third_party_warnings

    route_third_party_warnings()  # third-party deprecation noise to the debug log
    try:
        code = app(standalone_mode=False)
    except NoArgsIsHelpError as exc:
        exc.show()
        code = exc.exit_code
    except UsageError as exc:
        hint = f"See `{exc.ctx.command_path if exc.ctx else 'trendflow'} --help`."
        code = _fail_summary(ErrorCode.INVALID_REQUEST, exc.format_message(), hint, exit_code=exc.exit_code)
    except typer.Abort:
        code = _fail_summary(ErrorCode.INTERNAL, "interrupted", "Run the command again.", exit_code=130)
    except TrendFlowError as exc:
        code = _fail_summary(exc.code, exc.message, exc.hint)
    except Exception as exc:
        if os.environ.get("TRENDFLOW_DEBUG") == "1":
            raise
        message = f"{type(exc).__name__}: {exc}"
        code = _fail_summary(ErrorCode.INTERNAL, message, "This is a bug; run again with TRENDFLOW_DEBUG=1.")
    sys.exit(code if isinstance(code, int) else 0)


def _fail_summary(code: str, message: str, hint: str, exit_code: int = 1) -> int:
    print_error(stderr, code, message, hint)
    typer.echo(json.dumps({"status": "error", "error_code": str(code), "error": message}))
    return exit_code


if __name__ == "__main__":
    main()
