"""`trendflow serve-models` and `trendflow models build` (registered on the typer app in cli.py)."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from trendflow.contracts.errors import TrendFlowError
from trendflow.serving import DEFAULT_REPOSITORY
from trendflow.serving.triton_server import TritonServer

DEFAULT_REPORT = Path("serving/build/models_build_report.json")


def serve_models(
    repository: Path = DEFAULT_REPOSITORY,
    http_port: int = 8000,
    grpc_port: int = 8001,
    metrics_port: int = 8002,
    stop_event: threading.Event | None = None,
    host: str = "127.0.0.1",
) -> dict[str, Any]:
    """Start the bundled tritonserver, wait until every model is ready, print one JSON line,
    serve until SIGINT/SIGTERM (or `stop_event`), then stop it cleanly."""
    stop = stop_event or threading.Event()
    if stop_event is None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    server = TritonServer(
        repository=Path(repository),
        http_port=http_port,
        grpc_port=grpc_port,
        metrics_port=metrics_port,
        bind_host=host,
    )
    with server:
        status = {
            "status": "ready",
            "grpc_url": server.grpc_url,
            "http_url": server.http_url,
            "repository": str(Path(repository).resolve()),
            "models": [f"{m['name']}/{m['version']}" for m in server.model_states()],
        }
        typer.echo(json.dumps(status), nl=True)
        while not stop.wait(1.0):
            if server._proc is None or server._proc.poll() is not None:
                raise TrendFlowError("triton_unavailable", f"tritonserver exited:\n{server.log_tail()}")
    return {**status, "status": "stopped"}


def build_models(
    repository: Path = DEFAULT_REPOSITORY,
    models: list[str] | None = None,
    force: bool = False,
    report_path: Path = DEFAULT_REPORT,
) -> dict[str, Any]:
    from trendflow.serving.build import build_models as build

    return build(Path(repository), models=models or None, force=force, report_path=report_path)


def register_serving_commands(app: typer.Typer) -> None:
    models_app = typer.Typer(no_args_is_help=True, help="The Triton model repository.")

    @app.command("serve-models")
    def serve_models_command(
        repository: Annotated[Path, typer.Option(help="Triton model repository.")] = DEFAULT_REPOSITORY,
        http_port: Annotated[int, typer.Option(help="HTTP port (0 = any free).")] = 8000,
        grpc_port: Annotated[int, typer.Option(help="gRPC port (0 = any free).")] = 8001,
        metrics_port: Annotated[int, typer.Option(help="Metrics port (0 = any free).")] = 8002,
        host: Annotated[str, typer.Option(help="Address to bind (0.0.0.0 in a container).")] = "127.0.0.1",
    ) -> None:
        """Run the bundled Triton server on the model repository until interrupted."""
        try:
            serve_models(repository, http_port, grpc_port, metrics_port, host=host)
        except TrendFlowError as exc:
            typer.echo(json.dumps({"status": "error", **exc.to_dict()}))
            raise typer.Exit(1) from exc

    @models_app.command("build")
    def build_command(
        repository: Annotated[Path, typer.Option(help="Triton model repository.")] = DEFAULT_REPOSITORY,
        model: Annotated[list[str] | None, typer.Option(help="Only these models (repeatable).")] = None,
        force: Annotated[bool, typer.Option(help="Rebuild even when the content cache matches.")] = False,
        report: Annotated[Path, typer.Option(help="Where to write the JSON report.")] = DEFAULT_REPORT,
    ) -> None:
        """Export/copy the weights, quantize, verify every variant and write the JSON report."""
        try:
            result = build_models(repository, model, force, report)
        except TrendFlowError as exc:
            typer.echo(json.dumps({"status": "error", **exc.to_dict()}))
            raise typer.Exit(1) from exc
        summary = [
            {
                k: m[k]
                for k in ("model_name", "model_version", "precision", "status", "passed", "weights_digest")
            }
            for m in result["models"]
        ]
        typer.echo(json.dumps({"passed": result["passed"], "report": str(report), "models": summary}))
        raise typer.Exit(0 if result["passed"] else 1)

    app.add_typer(models_app, name="models")
