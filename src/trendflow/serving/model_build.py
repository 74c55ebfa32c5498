"""`trendflow models build`: weights into the model repository, digests, checks, a JSON report.

Each served model has a recipe (`trendflow.serving.recipes.common`) that exports or copies its
weights into `<repository>/<model>/<version>/weights/` and checks every variant against its
reference on the sample frames. This module owns what is common: the per-version
`weights/build.json` (engine, precision, `weights_digest` = sha256 over the weight files), the
content cache (a model whose recipe, source packages and files are unchanged is not rebuilt)
and the report. Weights are built, never committed (.gitignore).
"""

from __future__ import annotations

import fcntl
import hashlib
import inspect
import logging
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.identity import canonical_json

logger = logging.getLogger(__name__)
BUILDER_VERSION = "1"
BUILD_FILE = "build.json"
WEIGHTS_DIR = "weights"
SAMPLES_DIR = Path(__file__).resolve().parents[3] / "serving" / "samples"


class BuildManifest(BaseModel):
    """`<model>/<version>/weights/build.json`: what model resolution and model.py read."""

    model_config = ConfigDict(extra="forbid")

    model_name: str
    model_version: str
    engine: str
    precision: str
    weights_digest: str
    files: dict[str, str] = Field(description="Weight file (relative to weights/) -> sha256.")
    onnx_file: str | None = None
    build_key: str
    sources: dict[str, str] = Field(default_factory=dict, description="Source package -> version.")
    checks: dict[str, Any] = Field(default_factory=dict)
    builder_version: str = BUILDER_VERSION
    built_at: str


@dataclass
class VariantResult:
    """What a recipe produced for one version: files already written into `weights_dir`."""

    model_version: str
    engine: str
    precision: str
    onnx_file: str | None = None
    checks: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.checks.get("passed", True))


class Recipe(Protocol):
    model_name: str
    recipe_version: str

    def sources(self) -> dict[str, str]: ...

    def versions(self) -> list[str]: ...

    def build(self, model_dir: Path) -> list[VariantResult]: ...


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def weight_files(weights_dir: Path) -> dict[str, str]:
    return {
        str(p.relative_to(weights_dir)): file_sha256(p)
        for p in sorted(weights_dir.rglob("*"))
        if p.is_file() and p.name != BUILD_FILE
    }


def weights_digest(files: dict[str, str]) -> str:
    """sha256 over (relative path, file sha256) pairs: changes with any byte of any weight file."""
    return hashlib.sha256(canonical_json(sorted(files.items())).encode()).hexdigest()


def weights_dir(model_dir: Path, version: str) -> Path:
    return model_dir / version / WEIGHTS_DIR


def read_build_manifest(model_dir: Path, version: str) -> BuildManifest | None:
    path = weights_dir(model_dir, version) / BUILD_FILE
    if not path.exists():
        return None
    return BuildManifest.model_validate_json(path.read_text())


def served_code(model_dir: Path) -> list[tuple[str, str]]:
    """config.pbtxt and the Python files of the model (not its weights): the checks run them."""
    return sorted(
        (str(p.relative_to(model_dir)), file_sha256(p))
        for p in model_dir.rglob("*")
        if p.is_file() and WEIGHTS_DIR not in p.relative_to(model_dir).parts and p.suffix in {".py", ".pbtxt"}
    )


def build_key(recipe: Recipe, model_dir: Path) -> str:
    payload = {
        "builder": BUILDER_VERSION,
        "model": recipe.model_name,
        "recipe": recipe.recipe_version,
        # Editing a recipe's code rebuilds its model: the cache is keyed by content.
        "recipe_source": hashlib.sha256(inspect.getsource(type(recipe)).encode()).hexdigest(),
        "sources": recipe.sources(),
        # The checks run on the sample inputs: new samples re-verify every model.
        "samples": sorted(weight_files(SAMPLES_DIR).items()),
        "served_code": served_code(model_dir),
    }
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def cached_manifests(recipe: Recipe, model_dir: Path, key: str) -> list[BuildManifest] | None:
    """The existing builds when every version was built by the same recipe and is intact."""
    manifests = []
    for version in recipe.versions():
        manifest = read_build_manifest(model_dir, version)
        if manifest is None or manifest.build_key != key:
            return None
        if weight_files(weights_dir(model_dir, version)) != manifest.files:
            return None
        manifests.append(manifest)
    return manifests


def write_manifest(recipe: Recipe, model_dir: Path, variant: VariantResult, key: str) -> BuildManifest:
    target = weights_dir(model_dir, variant.model_version)
    files = weight_files(target)
    if not files:
        raise TrendFlowError(ErrorCode.INTERNAL, f"recipe {recipe.model_name} wrote no files into {target}")
    manifest = BuildManifest(
        model_name=recipe.model_name,
        model_version=variant.model_version,
        engine=variant.engine,
        precision=variant.precision,
        weights_digest=weights_digest(files),
        files=files,
        onnx_file=variant.onnx_file,
        build_key=key,
        sources=recipe.sources(),
        checks=variant.checks,
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    (target / BUILD_FILE).write_text(manifest.model_dump_json(indent=2))
    return manifest


def build_entry(manifest: BuildManifest, status: str, seconds: float) -> dict[str, Any]:
    return {
        "model_name": manifest.model_name,
        "model_version": manifest.model_version,
        "engine": manifest.engine,
        "precision": manifest.precision,
        "weights_digest": manifest.weights_digest,
        "status": status,
        "seconds": round(seconds, 2),
        "checks": manifest.checks,
        "passed": bool(manifest.checks.get("passed", True)),
    }


@contextmanager
def repository_lock(repository: Path, timeout_s: float = 1800.0) -> Iterator[None]:
    """One build per repository at a time (test sessions and CI may start builds together)."""
    key = hashlib.sha256(str(Path(repository).resolve()).encode()).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"trendflow-models-build-{key}.lock"
    with lock_path.open("w") as handle:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TrendFlowError(
                        ErrorCode.TIMEOUT, f"another build of {repository} holds {lock_path}"
                    ) from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
