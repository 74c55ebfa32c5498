"""`trendflow predict SOURCE|RUN_DIR`: forecasts for one video -> predictions.json.

RUN_DIR (`<platform_id>/<video_id>/<run_id>` in the store, or its absolute path) is predicted
from its artifacts; anything else is a SOURCE (file or URL) that is processed first with
`process_video` (profile `signals` by default: no model server needed). The snapshot1 facts
(counters, publish and snapshot times) come from the options, else from the `--metadata`
sidecar (a yt-dlp info JSON carries counts too); a required one missing -> an error naming the
option to pass. The last stdout line is the predictions document as JSON.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from trendflow.contracts.errors import ErrorCode, TrendFlowError

stderr = Console(stderr=True)
_MODEL_CODES = {ErrorCode.MODEL_NOT_FOUND, ErrorCode.MODEL_LOAD_FAILED}


def _fail(exc: TrendFlowError) -> None:
    # The generic hints of model codes are about the Triton model server, not forecast models.
    hint = "" if exc.code in _MODEL_CODES else f"\n{exc.hint}"
    from trendflow.console import print_error

    print_error(stderr, exc.code, exc.message, hint.lstrip("\n") or None)
    typer.echo(json.dumps({"status": "error", "error_code": str(exc.code), "error": exc.message}))
    raise typer.Exit(1)


def predict(
    target: Annotated[
        str, typer.Argument(help="A run dir <platform>/<video>/<run_id> of the store, or a video file/URL.")
    ],
    views: Annotated[float | None, typer.Option(help="Views at the snapshot (snapshot1).")] = None,
    likes: Annotated[float | None, typer.Option(help="Likes at the snapshot.")] = None,
    comments: Annotated[float | None, typer.Option(help="Comments at the snapshot.")] = None,
    published_at: Annotated[
        datetime | None, typer.Option(help="Publish time (UTC unless it has an offset).")
    ] = None,
    snapshot_at: Annotated[
        datetime | None, typer.Option(help="When the counters were read (default: now).")
    ] = None,
    metadata: Annotated[
        Path | None, typer.Option(help="Sidecar JSON (TrendFlow or yt-dlp info) with facts.")
    ] = None,
    store: Annotated[str | None, typer.Option(help="Result store (default: catalog result_store).")] = None,
    profile: Annotated[str, typer.Option(help="Analysis profile used to process a SOURCE.")] = "signals",
    platform_id: Annotated[str | None, typer.Option(help="Platform id of a SOURCE.")] = None,
    video_id: Annotated[str | None, typer.Option(help="Video id of a SOURCE.")] = None,
    bundle: Annotated[str | None, typer.Option(help="Predict with this model bundle directory.")] = None,
    model_source: Annotated[str | None, typer.Option(help="registry | bundle (default: catalog).")] = None,
    output: Annotated[Path | None, typer.Option(help="Where to write predictions.json.")] = None,
    project_dir: Annotated[Path, typer.Option(help="The TrendFlow project root (conf/).")] = Path("."),
    env: Annotated[str | None, typer.Option(help="Kedro configuration environment.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress.")] = False,
) -> None:
    """Forecast views/likes growth of one video; writes predictions.json and prints it."""
    from trendflow.inference.predict import predictions_json, predictions_path, write_predictions
    from trendflow.inference.service import (
        facts_from_sidecar,
        load_project_config,
        make_facts,
        models_for,
        predict_run,
        run_dir_of,
    )
    from trendflow.storage.layout import RunLayout
    from trendflow.storage.store import ResultStore

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    try:
        config = load_project_config(project_dir, env)
        root = store or config.result_store
        if "://" not in root and not Path(root).is_absolute():
            root = str(config.project_path / root)
        result_store = ResultStore(root)
        sidecar, side_platform, side_video = facts_from_sidecar(metadata)
        options = {
            "views": views,
            "likes": likes,
            "comments": comments,
            "published_at": published_at,
            "snapshot_at": snapshot_at,
        }
        facts = make_facts(options, sidecar)
        models = models_for(config, source=model_source, bundle=bundle)  # fail fast, before processing
        run_dir = run_dir_of(result_store, target)
        if run_dir is None:
            run_dir = _process(
                target, result_store, profile, platform_id or side_platform, video_id or side_video, metadata
            )
        doc = predict_run(result_store, run_dir, facts, config, models)
        layout = RunLayout.from_run_dir(run_dir)
        default_dir = config.project_path / "data/07_model_output/predictions"
        path = write_predictions(
            doc, output or predictions_path(default_dir, layout.platform_id, layout.video_id)
        )
    except TrendFlowError as exc:
        _fail(exc)
        return
    stderr.print(f"predictions written to {path}", markup=False, highlight=False)
    typer.echo(predictions_json(doc))


def _process(
    source: str, store, profile: str, platform_id: str | None, video_id: str | None, metadata: Path | None
) -> str:
    from trendflow.dataprocessor.run import ProcessRequest, process_video
    from trendflow.storage.layout import RunLayout

    if not (Path(source).exists() or "://" in source):
        raise TrendFlowError(
            ErrorCode.SOURCE_NOT_FOUND,
            f"{source} is neither a run directory of {store.root_uri} nor a video file or URL",
        )
    outcome = process_video(
        ProcessRequest(
            source=source,
            store=store,
            profile=profile,
            platform_id=platform_id,
            video_id=video_id,
            metadata_file=metadata,
        )
    )
    if outcome.status != "success" or outcome.identity is None:
        raise TrendFlowError(
            outcome.error_code or ErrorCode.INTERNAL, f"processing {source} failed: {outcome.error}"
        )
    return RunLayout.of(outcome.identity).run_dir


def register_predict_command(app: typer.Typer) -> None:
    app.command(name="predict")(predict)
