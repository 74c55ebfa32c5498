"""The model bundle: the deployable output of a training run, as one directory.

    <bundle>/bundle.json                  BundleInfo: feature spec, manifest, one ModelCard per model
    <bundle>/models/<key>.cbm | .lgb.txt  native CatBoost / LightGBM models

The bundle holds the models of the deploy split (`training.deploy_split`), every algorithm,
with the champion of each (target, horizon) marked. `ModelBundleDataset` writes it atomically
(a temporary sibling directory renamed into place), so a reader never sees half a bundle.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset
from pydantic import BaseModel, ConfigDict, Field

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.training.baselines import Baseline
from trendflow.training.config import Algorithm, prior_of
from trendflow.training.features import FeatureSpec
from trendflow.training.manifest import ReproducibilityManifest
from trendflow.training.models import BlendModel, FittedModel
from trendflow.training.train import Interval

BUNDLE_SCHEMA_VERSION = "1.0.0"
BUNDLE_FILE = "bundle.json"


class ModelCard(BaseModel):
    """Everything inference needs to know about one model besides its weights."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(description="<target>__<horizon>__<split>__<algorithm>")
    target: str
    horizon: str
    horizon_hours: float | None = None
    split: str = Field(description="split scheme the model was trained and evaluated on")
    algorithm: Algorithm
    file: str = Field(description="the native model file; empty for a blend (its members have files)")
    sha256: str
    # `blend` only: member card key -> weight (the members are cards of the same bundle).
    members: dict[str, float] = Field(default_factory=dict)
    best_iteration: int
    interval: Interval
    rows: dict[str, int]
    valid_metrics: dict[str, float | None]
    test_metrics: dict[str, float | None]
    baselines: dict[str, Baseline]
    champion: bool


class BundleInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: str = BUNDLE_SCHEMA_VERSION
    bundle_id: str
    created_at: datetime
    deploy_split: str
    selection_metric: str = "rmse"  # how the champions were chosen (on validation rows)
    feature_spec: FeatureSpec
    # Fitted on training rows by the dataset pipeline (`feature_transforms`: the PCA of wide
    # vectors), applied unchanged at inference. The category vocabularies are in feature_spec.
    feature_transforms: dict[str, Any] | None = None
    manifest: ReproducibilityManifest
    models: list[ModelCard]

    def champion(self, target: str, horizon: str) -> ModelCard | None:
        return next(
            (c for c in self.models if c.champion and (c.target, c.horizon) == (target, horizon)), None
        )

    def champions(self) -> list[ModelCard]:
        return [c for c in self.models if c.champion]


@dataclass
class ModelBundle:
    info: BundleInfo
    models: dict[str, FittedModel | BlendModel]  # card key -> model

    def model(self, card: ModelCard) -> FittedModel | BlendModel:
        return self.models[card.key]


def card_prior(card: ModelCard):
    """The prior of an `_sh` / `_ep` model (its card's fitted baseline), else None."""
    name = prior_of(card.algorithm)
    return card.baselines.get(name) if name else None


def model_key(target: str, horizon: str, split: str, algorithm: str) -> str:
    return f"{target}__{horizon}__{split}__{algorithm}"


def save_bundle(bundle: ModelBundle, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        (tmp / "models").mkdir()
        cards = []
        for card in bundle.info.models:
            if card.members:
                cards.append(card)
                continue
            data = bundle.models[card.key].to_bytes()
            (tmp / card.file).write_bytes(data)
            cards.append(card.model_copy(update={"sha256": hashlib.sha256(data).hexdigest()}))
        info = bundle.info.model_copy(update={"models": cards})
        (tmp / BUNDLE_FILE).write_text(info.model_dump_json(indent=2) + "\n")
        old = path.with_name(f".{path.name}-old")
        if path.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_bundle(path: str | Path) -> ModelBundle:
    path = Path(path)
    if not (path / BUNDLE_FILE).is_file():
        raise TrendFlowError(
            ErrorCode.MODEL_NOT_FOUND,
            f"no model bundle at {path}: train one with `kedro run --pipelines=training`",
        )
    try:
        info = BundleInfo.model_validate_json((path / BUNDLE_FILE).read_text())
    except ValueError as exc:
        raise TrendFlowError(
            ErrorCode.MODEL_LOAD_FAILED, f"{path / BUNDLE_FILE} is not a valid bundle: {exc}"
        ) from exc
    models: dict[str, FittedModel | BlendModel] = {}
    for card in info.models:
        if card.members:
            continue
        file = path / card.file
        if not file.is_file():
            raise TrendFlowError(
                ErrorCode.MODEL_LOAD_FAILED, f"bundle {path} lacks the model file {card.file}"
            )
        data = file.read_bytes()
        if hashlib.sha256(data).hexdigest() != card.sha256:
            raise TrendFlowError(
                ErrorCode.MODEL_LOAD_FAILED, f"{file} does not match its sha256 in bundle.json"
            )
        models[card.key] = FittedModel.from_bytes(
            card.algorithm, data, info.feature_spec, card.best_iteration, card_prior(card)
        )
    for card in info.models:
        if card.members:
            missing = [k for k in card.members if k not in models]
            if missing:
                raise TrendFlowError(ErrorCode.MODEL_LOAD_FAILED, f"blend {card.key} lacks members {missing}")
            models[card.key] = BlendModel(
                [(w, models[k]) for k, w in sorted(card.members.items())], info.feature_spec
            )
    return ModelBundle(info=info, models=models)


class ModelBundleDataset(AbstractDataset[ModelBundle, ModelBundle]):
    """Kedro dataset of a model bundle directory (local path)."""

    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = path
        self.metadata = metadata

    def load(self) -> ModelBundle:
        return load_bundle(self._path)

    def save(self, data: ModelBundle) -> None:
        save_bundle(data, self._path)

    def _exists(self) -> bool:
        return (Path(self._path) / BUNDLE_FILE).is_file()

    def _describe(self) -> dict[str, Any]:
        return {"path": self._path}


def bundle_summary(info: BundleInfo) -> dict[str, Any]:
    """A short JSON-able summary (logged and shown by the CLI)."""
    return json.loads(
        json.dumps(
            {
                "bundle_id": info.bundle_id,
                "deploy_split": info.deploy_split,
                "dataset_fingerprint": info.manifest.dataset_fingerprint,
                "champions": {f"{c.target}/{c.horizon}": c.algorithm for c in info.champions()},
            }
        )
    )
