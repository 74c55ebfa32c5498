"""Build every recipe's variants into the model repository (`trendflow models build`).

Kept apart from model_build.py (manifests, digests, the build cache) because it needs the
recipes, and the recipes need model_build: this module imports both, neither imports it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.serving.model_build import (
    BUILDER_VERSION,
    build_entry,
    build_key,
    cached_manifests,
    repository_lock,
    weights_dir,
    write_manifest,
)
from trendflow.serving.recipes import RECIPES

logger = logging.getLogger(__name__)


def build_models(
    repository: Path,
    models: Iterable[str] | None = None,
    force: bool = False,
    report_path: Path | None = None,
) -> dict[str, Any]:
    """Build (or reuse) every recipe's variants; return the report (also written to report_path)."""
    with repository_lock(repository):
        return _build_models(repository, models, force, report_path)


def _build_models(
    repository: Path,
    models: Iterable[str] | None,
    force: bool,
    report_path: Path | None,
) -> dict[str, Any]:

    wanted = list(models) if models else list(RECIPES)
    unknown = sorted(set(wanted) - set(RECIPES))
    if unknown:
        raise TrendFlowError(
            ErrorCode.MODEL_NOT_FOUND, f"no build recipe for {unknown}; known: {sorted(RECIPES)}"
        )
    started = time.monotonic()
    entries: list[dict[str, Any]] = []
    for name in wanted:
        recipe = RECIPES[name]()
        model_dir = Path(repository) / name
        if not (model_dir / "config.pbtxt").exists():
            raise TrendFlowError(ErrorCode.MODEL_NOT_FOUND, f"{model_dir}/config.pbtxt is missing")
        key = build_key(recipe, model_dir)
        t0 = time.monotonic()
        cached = None if force else cached_manifests(recipe, model_dir, key)
        if cached is not None:
            logger.info("model %s: cached (%s)", name, key[:12])
            entries.extend(build_entry(m, "cached", 0.0) for m in cached)
            continue
        logger.info("model %s: building", name)
        for version in recipe.versions():
            _clear(weights_dir(model_dir, version))
        variants = recipe.build(model_dir)
        seconds = time.monotonic() - t0
        for variant in variants:
            manifest = write_manifest(recipe, model_dir, variant, key)
            entries.append(build_entry(manifest, "built", seconds))
    report = {
        "builder_version": BUILDER_VERSION,
        "repository": str(Path(repository).resolve()),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_sec": round(time.monotonic() - started, 2),
        "models": entries,
        "passed": all(e["passed"] for e in entries),
    }
    if report_path is not None:
        Path(report_path).parent.mkdir(parents=True, exist_ok=True)
        Path(report_path).write_text(json.dumps(report, indent=2))
    return report


def _clear(target: Path) -> None:
    """Remove a previous build of one version (its weights folder only)."""
    if target.exists():
        for path in sorted(target.rglob("*"), reverse=True):
            path.unlink() if path.is_file() or path.is_symlink() else path.rmdir()
        target.rmdir()
    target.mkdir(parents=True)
