"""`trendflow models build`: digests, verification checks, content cache, report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures.triton import copy_model
from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.serving import DEFAULT_REPOSITORY
from trendflow.serving.build import build_models
from trendflow.serving.model_build import (
    build_key,
    cached_manifests,
    read_build_manifest,
    weight_files,
    weights_digest,
    weights_dir,
)
from trendflow.serving.recipes import RECIPES


def test_every_variant_is_built_verified_and_digested(built_repository: dict) -> None:
    assert built_repository["passed"]
    entries = {(e["model_name"], e["model_version"]): e for e in built_repository["models"]}
    assert entries[("image_encoder", "1")]["precision"] == "fp32"
    assert entries[("image_encoder", "2")]["precision"] == "int8"
    for (name, version), entry in entries.items():
        manifest = read_build_manifest(DEFAULT_REPOSITORY / name, version)
        assert manifest is not None
        files = weight_files(weights_dir(DEFAULT_REPOSITORY / name, version))
        assert entry["weights_digest"] == manifest.weights_digest == weights_digest(files)
        assert manifest.checks.get("passed", True) is True
    checks = entries[("image_encoder", "2")]["checks"]
    assert checks["cosine_min"] >= 0.95 and checks["top1_agreement"] == 1.0


def test_second_build_is_a_cache_hit_and_writes_the_report(built_repository: dict, tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    report = build_models(DEFAULT_REPOSITORY, models=["image_encoder"], report_path=report_path)
    assert {e["status"] for e in report["models"]} == {"cached"}
    assert json.loads(report_path.read_text())["passed"] is True


def test_a_changed_weight_file_invalidates_the_cache(built_repository: dict, tmp_path: Path) -> None:
    recipe = RECIPES["image_encoder"]()
    model_dir = copy_model("image_encoder", tmp_path, versions=("1", "2"))
    key = build_key(recipe, model_dir)
    assert cached_manifests(recipe, model_dir, key) is not None
    onnx = model_dir / "2" / "weights" / "model.onnx"
    onnx.write_bytes(onnx.read_bytes()[:-1] + b"\x00")
    assert cached_manifests(recipe, model_dir, key) is None


def test_unknown_model_has_no_recipe() -> None:
    with pytest.raises(TrendFlowError) as info:
        build_models(DEFAULT_REPOSITORY, models=["no_such_model"])
    assert info.value.code is ErrorCode.MODEL_NOT_FOUND
