"""Small training tables and trained projects shared by the training/inference tests.

Tables come from the dataset build itself (SYNTHETIC corpus, known signal), cached per test
session so every test module reuses one build.
"""

from __future__ import annotations

import copy
import functools
import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[2]

# Fast settings: one thread (reproducible, no oversubscription on 2 cores), few iterations.
FAST_TRAINING: dict[str, Any] = {
    "threads": 1,
    "early_stopping_rounds": 15,
    "min_train_rows": 20,
    "min_valid_rows": 8,
    "min_test_rows": 5,
    "catboost": {"iterations": 60, "learning_rate": 0.2, "depth": 4},
    "lightgbm": {"num_boost_round": 60, "learning_rate": 0.2, "num_leaves": 15, "min_data_in_leaf": 8},
}


def dataset_params(**overrides: Any) -> dict[str, Any]:
    params = yaml.safe_load((ROOT / "conf/base/parameters_dataset.yml").read_text())["dataset"]
    params["enrichment"]["enabled"] = False
    params["run_features"]["n_jobs"] = 1
    params.update(overrides)
    return params


@functools.lru_cache(maxsize=4)
def _build(root: str, n_videos: int, n_channels: int) -> tuple[pd.DataFrame, str]:
    from trendflow.dataset.build import build_training_table
    from trendflow.dataset.snapshots import normalize_snapshots
    from trendflow.dataset.synthetic import SyntheticConfig, ensure_corpus
    from trendflow.storage.store import ResultStore

    store = ResultStore(f"{root}/store")
    raw, _info = ensure_corpus(store, SyntheticConfig(n_videos=n_videos, n_channels=n_channels))
    snapshots, _ = normalize_snapshots(raw, "synthetic")
    table, metadata = build_training_table(snapshots, store, dataset_params())
    Path(root, "metadata.json").write_text(json.dumps(metadata))
    snapshots.to_parquet(f"{root}/snapshots.parquet")
    return table, root


def synthetic_table(
    tmp_root: Path, n_videos: int = 240, n_channels: int = 30
) -> tuple[pd.DataFrame, dict, Path]:
    """(table, dataset metadata, folder holding `store/` and `snapshots.parquet`)."""
    table, root = _build(str(tmp_root / f"syn-{n_videos}-{n_channels}"), n_videos, n_channels)
    metadata = json.loads(Path(root, "metadata.json").read_text())
    return table.copy(), metadata, Path(root)


def training_params(**overrides: Any) -> dict[str, Any]:
    params = copy.deepcopy(FAST_TRAINING)
    params.update(overrides)
    return params


# -- a Kedro project copy ------------------------------------------------------------------------
def make_project(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "pyproject.toml", path / "pyproject.toml")
    shutil.copytree(
        ROOT / "conf", path / "conf", ignore=shutil.ignore_patterns("credentials*"), dirs_exist_ok=True
    )
    (path / "src").mkdir(exist_ok=True)  # the package itself is installed
    (path / "data").mkdir(exist_ok=True)
    return path


def end_mlflow_runs() -> None:
    import mlflow

    while mlflow.active_run() is not None:
        mlflow.end_run()


def run_pipelines(project: Path, names: list[str], params: dict[str, Any], env: str | None = None) -> None:
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    end_mlflow_runs()
    try:
        for name in names:
            with KedroSession.create(project_path=project, runtime_params=params, env=env) as session:
                session.run(pipeline_names=[name])
    finally:
        end_mlflow_runs()


PROJECT_PARAMS: dict[str, Any] = {
    "dataset": {
        "synthetic": {"n_videos": 200, "n_channels": 24, "sample_snapshots": None},
        "run_features": {"n_jobs": 1},
        "enrichment": {"enabled": False},
    },
    # catboost (native), lightgbm_sh (on the Szabo-Huberman prior) and their blend (a pyfunc in MLflow)
    "training": {
        **FAST_TRAINING,
        "targets": ["views", "likes"],
        "horizons": ["7d", "14d"],
        "algorithms": ["catboost", "lightgbm_sh", "blend"],
    },
    "inference": {"from_table": {"limit": 2}},
}


@functools.lru_cache(maxsize=1)
def trained_project(path: str) -> Path:
    """A project copy where dataset -> training -> inference ran once (cwd must be `path`)."""
    project = make_project(Path(path))
    params = copy.deepcopy(PROJECT_PARAMS)
    params["result_store"] = str(project / "data/02_intermediate/result_store")
    run_pipelines(project, ["dataset", "training", "inference"], params)
    return project
