"""Resolved model mapping: digests from the build, precision in model_signature and config_hash."""

from __future__ import annotations

import pytest

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.identity import compute_config_hash
from trendflow.contracts.npz_meta import model_signature
from trendflow.contracts.versions import SAMPLING_POLICY_VERSION
from trendflow.dataprocessor.graph import ComponentGraph, ModelRef, Profile
from trendflow.serving import DEFAULT_REPOSITORY
from trendflow.serving.model_build import read_build_manifest
from trendflow.serving.model_resolution import ModelCatalog, model_used


def config_hash_for(profile: Profile) -> str:
    # What the orchestrator hashes (dataprocessor.run.config_hash_for).
    return compute_config_hash(profile.canonical(), SAMPLING_POLICY_VERSION, profile.model_mapping())


def _graph_with_precision(version: str, precision: str) -> ComponentGraph:
    raw = ComponentGraph.load().spec.model_dump(mode="json")
    raw["profiles"]["baseline"]["components"]["image_embedding"]["models"] = [
        {"model_name": "image_encoder", "model_version": version, "precision": precision}
    ]
    return ComponentGraph.from_dict(raw)


def test_baseline_profile_resolves_every_model_with_its_digest(built_repository: dict) -> None:
    profile = ComponentGraph.load().profile("baseline")
    resolved = ModelCatalog(DEFAULT_REPOSITORY).resolve_profile(profile)
    with_models = {name for name, c in profile.components.items() if c.models}
    assert set(resolved) == with_models and "image_embedding" in resolved
    for component, model in resolved.items():
        built = read_build_manifest(DEFAULT_REPOSITORY / model.model_name, model.model_version)
        assert built is not None, component
        assert model.weights_digest == built.weights_digest
        assert (model.engine, model.precision) == (built.engine, built.precision)


def test_changing_precision_changes_model_signature_and_config_hash(built_repository: dict) -> None:
    catalog = ModelCatalog(DEFAULT_REPOSITORY)
    fp32 = _graph_with_precision("1", "fp32").profile("baseline")
    int8 = _graph_with_precision("2", "int8").profile("baseline")
    assert config_hash_for(fp32) != config_hash_for(int8)
    sig_fp32 = model_signature([model_used(catalog.resolve_profile(fp32)["image_embedding"], "cpu")])
    sig_int8 = model_signature([model_used(catalog.resolve_profile(int8)["image_embedding"], "cpu")])
    assert sig_fp32 != sig_int8


def test_precision_that_was_not_built_is_a_config_error(built_repository: dict) -> None:
    catalog = ModelCatalog(DEFAULT_REPOSITORY)
    with pytest.raises(TrendFlowError) as info:
        catalog.resolve(ModelRef(model_name="image_encoder", model_version="1", precision="int8"))
    assert info.value.code is ErrorCode.CONFIG_ERROR


def test_unbuilt_version_and_unknown_model_are_model_not_found(built_repository: dict) -> None:
    catalog = ModelCatalog(DEFAULT_REPOSITORY)
    for ref in (ModelRef(model_name="image_encoder", model_version="7"), ModelRef(model_name="nope")):
        with pytest.raises(TrendFlowError) as info:
            catalog.resolve(ref)
        assert info.value.code is ErrorCode.MODEL_NOT_FOUND
