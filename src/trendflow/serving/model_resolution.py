"""The resolved model mapping of a run (SPEC 8, 12): profile ModelRefs + the built repository.

The profile names, per component, model_name / model_version / engine / precision /
device_policy; the build manifest of that version (`<model>/<version>/weights/build.json`)
adds the `weights_digest`. A profile that asks for a variant the repository does not hold, or
whose engine/precision disagree with what was built, is rejected before any video is touched.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.manifest import ResolvedModel
from trendflow.contracts.npz_meta import ModelUsed
from trendflow.serving import DEFAULT_REPOSITORY
from trendflow.serving.model_build import BuildManifest, read_build_manifest

if TYPE_CHECKING:
    from trendflow.dataprocessor.graph import ModelRef, Profile

REPOSITORY_ENV = "TRENDFLOW_MODEL_REPOSITORY"


def default_repository() -> Path:
    return Path(os.environ.get(REPOSITORY_ENV) or DEFAULT_REPOSITORY)


class ModelCatalog:
    """Read-only view of the build manifests of a model repository."""

    def __init__(self, repository: Path | None = None) -> None:
        self.repository = Path(repository) if repository else default_repository()
        self._manifests: dict[tuple[str, str], BuildManifest] = {}

    def manifest(self, model_name: str, model_version: str) -> BuildManifest:
        key = (model_name, model_version)
        if key not in self._manifests:
            model_dir = self.repository / model_name
            if not (model_dir / "config.pbtxt").exists():
                raise TrendFlowError(
                    ErrorCode.MODEL_NOT_FOUND,
                    f"model {model_name} is not in the model repository {self.repository}",
                )
            manifest = read_build_manifest(model_dir, model_version)
            if manifest is None:
                raise TrendFlowError(
                    ErrorCode.MODEL_NOT_FOUND,
                    f"model {model_name} version {model_version} is not built in {self.repository}; "
                    "run `trendflow models build`",
                )
            self._manifests[key] = manifest
        return self._manifests[key]

    def resolve(self, ref: ModelRef) -> ResolvedModel:
        built = self.manifest(ref.model_name, ref.model_version)
        if (built.engine, built.precision) != (ref.engine, ref.precision):
            raise TrendFlowError(
                ErrorCode.CONFIG_ERROR,
                f"profile asks for {ref.model_name} v{ref.model_version} as {ref.engine}/{ref.precision}, "
                f"the repository built it as {built.engine}/{built.precision}",
            )
        return ResolvedModel(
            model_name=ref.model_name,
            model_version=ref.model_version,
            weights_digest=built.weights_digest,
            engine=ref.engine,
            precision=ref.precision,
            device_policy=ref.device_policy,
        )

    def resolve_profile(self, profile: Profile) -> dict[str, ResolvedModel]:
        """component -> its model; the orchestrator's `model_resolver` (one model per component)."""
        resolved: dict[str, ResolvedModel] = {}
        for name, component in sorted(profile.components.items()):
            if not component.models:
                continue
            if len(component.models) > 1:
                raise TrendFlowError(
                    ErrorCode.CONFIG_ERROR,
                    f"component {name} names {len(component.models)} models; one is served",
                )
            resolved[name] = self.resolve(component.models[0])
        return resolved


def resolve_profile_models(profile: Profile) -> dict[str, ResolvedModel]:
    """`ProcessRequest.model_resolver` for the repository named by TRENDFLOW_MODEL_REPOSITORY."""
    return ModelCatalog().resolve_profile(profile)


def model_used(resolved: ResolvedModel, device: str) -> ModelUsed:
    """What a component records in its NPZ meta for a model it actually called."""
    return ModelUsed(
        model_name=resolved.model_name,
        model_version=resolved.model_version,
        weights_digest=resolved.weights_digest,
        engine=resolved.engine,
        precision=resolved.precision,
        device=device,
    )
