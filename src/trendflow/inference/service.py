"""Prediction for one video outside Kedro: what `trendflow predict SOURCE|RUN_DIR` runs.

It reads the project's configuration (conf/<env>, like `kedro run`): the dataset parameters
(so the feature row is built exactly as for training), the inference parameters, the
`forecast_models@loader` catalog entry and the MLflow tracking URI of conf/*/mlflow.yml.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.inference.features import build_feature_row, check_required
from trendflow.inference.models import ForecastModel, feature_transforms_of, load_models
from trendflow.inference.predict import predict_video
from trendflow.inference.schema import PredictionsDocument, Snapshot1Facts
from trendflow.storage.layout import MANIFEST, RunLayout
from trendflow.storage.store import ResultStore

log = logging.getLogger(__name__)
DEFAULT_STORE = "data/02_intermediate/result_store"
DEFAULT_REQUIRED = ["video_age_hours_at_snapshot1", "snapshot1__views_log1p", "snapshot1__likes_log1p"]


@dataclass
class ProjectConfig:
    project_path: Path
    parameters: dict[str, Any]
    forecast_models: dict[str, Any]
    result_store: str  # the root of the `result_store` catalog entry
    tracking_uri: str | None
    registry_uri: str | None

    @property
    def dataset(self) -> dict[str, Any]:
        return self.parameters.get("dataset") or {}

    @property
    def inference(self) -> dict[str, Any]:
        return self.parameters.get("inference") or {}


def load_project_config(project_path: str | Path = ".", env: str | None = None) -> ProjectConfig:
    from kedro.config import MissingConfigException, OmegaConfigLoader

    from trendflow.settings import CONFIG_LOADER_ARGS

    root = Path(project_path).resolve()
    if not (root / "conf" / "base").is_dir():
        raise TrendFlowError(
            ErrorCode.CONFIG_ERROR,
            f"{root} is not the TrendFlow project root (no conf/base): pass --project-dir",
        )
    loader = OmegaConfigLoader(
        conf_source=str(root / "conf"),
        base_env=CONFIG_LOADER_ARGS["base_env"],
        default_run_env=CONFIG_LOADER_ARGS["default_run_env"],
        env=env,
        config_patterns=CONFIG_LOADER_ARGS["config_patterns"],
    )
    try:
        server = (loader["mlflow"] or {}).get("server", {}) or {}
    except MissingConfigException:
        server = {}
    catalog = loader["catalog"]
    return ProjectConfig(
        project_path=root,
        parameters=loader["parameters"],
        forecast_models=dict(catalog.get("forecast_models@loader") or catalog.get("forecast_models") or {}),
        result_store=str((catalog.get("result_store") or {}).get("root") or DEFAULT_STORE),
        tracking_uri=_absolute_uri(
            server.get("mlflow_tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI"), root
        ),
        registry_uri=_absolute_uri(server.get("mlflow_registry_uri"), root),
    )


def _absolute_uri(uri: str | None, root: Path) -> str | None:
    """Relative paths resolve against the project root, as kedro-mlflow does; so does a relative
    sqlite path, so the CLI finds the same database from any working directory."""
    if not uri:
        return None
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return f"sqlite:///{(root / uri[len('sqlite:///') :]).as_posix()}"
    if "://" not in uri and not uri.startswith("/"):
        return (root / uri).as_uri()
    return uri


def models_for(
    config: ProjectConfig, source: str | None = None, bundle: str | None = None
) -> list[ForecastModel]:
    entry = dict(config.forecast_models)
    entry.pop("type", None)
    if bundle:
        entry.update({"source": "bundle", "bundle_path": bundle})
    elif source:
        entry["source"] = source
    bundle_path = Path(entry.get("bundle_path", "data/06_models/model_bundle"))
    return load_models(
        source=entry.get("source", "registry"),
        bundle_path=str(bundle_path if bundle_path.is_absolute() else config.project_path / bundle_path),
        prefix=entry.get("model_name_prefix", "trendflow"),
        alias=entry.get("alias", "champion"),
        tracking_uri=_absolute_uri(entry.get("tracking_uri"), config.project_path) or config.tracking_uri,
        registry_uri=_absolute_uri(entry.get("registry_uri"), config.project_path) or config.registry_uri,
    )


def facts_from_sidecar(path: Path | None) -> tuple[dict[str, Any], str | None, str | None]:
    """(facts, platform_id, video_id) from a metadata sidecar: TrendFlow's SourceSidecar JSON or
    a yt-dlp info JSON (which also carries view/like/comment counts and the time it was read)."""
    if path is None:
        return {}, None, None
    from trendflow.dataprocessor.sources import SourceSidecar, info_from_ytdlp, ytdlp_identity

    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TrendFlowError(ErrorCode.INVALID_REQUEST, f"metadata sidecar {path}: {exc}") from exc
    if "extractor_key" in raw or "extractor" in raw:
        info, (platform_id, video_id) = info_from_ytdlp(raw), ytdlp_identity(raw)
        counts = {
            "views": raw.get("view_count"),
            "likes": raw.get("like_count"),
            "comments": raw.get("comment_count"),
        }
        if raw.get("epoch"):
            counts["snapshot_at"] = datetime.fromtimestamp(int(raw["epoch"]), UTC)
    else:
        sidecar = SourceSidecar.model_validate(raw)
        info, platform_id, video_id, counts = sidecar, sidecar.platform_id, sidecar.video_id, {}
    facts = {
        "published_at": info.published_at,
        "channel_id": info.channel_id,
        "title": info.title,
        "description": info.description,
        "tags": list(info.tags) or None,
        "category": info.category,
        "language": info.language,
        "duration_sec": info.duration_sec,
        **{k: v for k, v in counts.items() if v is not None},
    }
    return {k: v for k, v in facts.items() if v is not None}, platform_id, video_id


def make_facts(options: dict[str, Any], sidecar: dict[str, Any]) -> Snapshot1Facts:
    """Snapshot1 facts: explicit options win over the sidecar; snapshot time defaults to now."""
    merged = {**sidecar, **{k: v for k, v in options.items() if v is not None}}
    merged.setdefault("snapshot_at", datetime.now(UTC))
    try:
        return Snapshot1Facts.model_validate(merged)
    except ValueError as exc:
        raise TrendFlowError(ErrorCode.INVALID_REQUEST, f"invalid snapshot facts: {exc}") from exc


def run_dir_of(store: ResultStore, target: str) -> str | None:
    """`target` as a run directory of the store (relative, or an absolute path inside it), or None."""
    candidates = [target.strip("/")]
    if store.is_local and os.path.isabs(target):
        root = store.full_path("")
        rel = os.path.relpath(os.path.abspath(target), root)
        if not rel.startswith(".."):
            candidates.insert(0, rel)
    for rel in candidates:
        parts = rel.split("/")
        if len(parts) == 3 and all(parts) and store.exists(f"{rel}/{MANIFEST}"):
            return rel
    return None


def predict_run(
    store: ResultStore,
    run_dir: str,
    facts: Snapshot1Facts,
    config: ProjectConfig,
    models: list[ForecastModel],
) -> PredictionsDocument:
    layout = RunLayout.from_run_dir(run_dir)
    inference = config.inference
    features = build_feature_row(
        store,
        layout.platform_id,
        layout.video_id,
        facts,
        config.dataset,
        run_dir=layout.run_dir,
        require_run=bool(inference.get("require_run", True)),
        feature_transforms=feature_transforms_of(models),
    )
    check_required(features.row, list(inference.get("required_features", DEFAULT_REQUIRED)))
    return predict_video(features, models, facts, int(inference.get("top_contributions", 8)))
