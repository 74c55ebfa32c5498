"""The reproducibility manifest of a training run: what produced its models and metrics.

Retraining with the same `dataset_fingerprint`, `training_config_digest`, seed, thread count
and package versions reproduces the metrics exactly (tests/training/test_reproducibility.py).
"""

from __future__ import annotations

import hashlib
import logging
import platform
import subprocess
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from trendflow.contracts.versions import (
    MANIFEST_SCHEMA_VERSION,
    METADATA_SCHEMA_VERSION,
    NPZ_META_SCHEMA_VERSION,
    SAMPLING_POLICY_VERSION,
    dataprocessor_version,
)
from trendflow.dataset.kedro_datasets import table_to_parquet_bytes
from trendflow.training.config import TrainingParams

log = logging.getLogger(__name__)

MANIFEST_VERSION = "1.0.0"
PACKAGES = (
    "trendflow",
    "numpy",
    "pandas",
    "pyarrow",
    "scipy",
    "catboost",
    "lightgbm",
    "mlflow",
    "kedro",
    "kedro-mlflow",
    "kedro-datasets",
)
GIT_TIMEOUT_SEC = 5


class GitState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    commit: str = "unknown"
    dirty: bool | None = None  # tracked files changed since the commit (None: unknown)


class ReproducibilityManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    manifest_version: str = MANIFEST_VERSION
    created_at: datetime
    seed: int
    threads: int
    training_config_digest: str = Field(description="sha256 of the canonical training parameters")
    dataset_fingerprint: str = Field(
        description="sha256 of training_table.parquet (as the dataset build writes it)"
    )
    dataset_fingerprint_verified: bool = Field(
        description="the table trained on hashes to the fingerprint in dataset_metadata.json"
    )
    table_rows: int
    table_columns: int
    synthetic_rows: int
    dataprocessor_version: str
    git: GitState
    packages: dict[str, str]
    versions: dict[str, str | None] = Field(
        description="schema/sampling/config versions: table schema, run config hash, contracts"
    )


def git_state(path: str | Path = ".") -> GitState:
    """HEAD commit and dirtiness of the repository holding `path`; 'unknown' outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=path,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SEC,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=path,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SEC,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return GitState()
    return GitState(commit=commit or "unknown", dirty=bool(status.strip()))


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def table_fingerprint(table: pd.DataFrame) -> str:
    """The dataset fingerprint of an in-memory table (same bytes as the dataset build writes)."""
    return hashlib.sha256(table_to_parquet_bytes(table)).hexdigest()


def build_manifest(
    table: pd.DataFrame, metadata: dict[str, Any], params: TrainingParams, project_path: str | Path = "."
) -> ReproducibilityManifest:
    recorded = metadata.get("dataset_fingerprint")
    actual = table_fingerprint(table)
    if recorded and recorded != actual:
        log.warning(
            "training table hashes to %s but dataset_metadata.json records %s: the metadata belongs to "
            "another build; rebuild with `kedro run --pipelines=dataset`",
            actual[:16],
            recorded[:16],
        )
    runs = metadata.get("runs") or {}
    versions = {
        "table_schema": metadata.get("table_schema_version"),
        "run_config_hash": runs.get("config_hash"),
        "sampling_policy": SAMPLING_POLICY_VERSION,
        "manifest_schema": MANIFEST_SCHEMA_VERSION,
        "npz_meta_schema": NPZ_META_SCHEMA_VERSION,
        "frames_metadata_schema": METADATA_SCHEMA_VERSION,
        "training_manifest": MANIFEST_VERSION,
    }
    return ReproducibilityManifest(
        created_at=datetime.now(UTC),
        seed=params.seed,
        threads=params.threads,
        training_config_digest=params.digest(),
        dataset_fingerprint=actual,
        dataset_fingerprint_verified=recorded == actual,
        table_rows=len(table),
        table_columns=table.shape[1],
        synthetic_rows=int(table["synthetic"].sum()) if "synthetic" in table else 0,
        dataprocessor_version=dataprocessor_version(),
        git=git_state(project_path),
        packages=package_versions(),
        versions=versions,
    )
