"""`kedro run --pipelines=dataset` end to end, in a copy of the project (KedroSession API)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("KEDRO_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.delenv("YOUTUBE_API_KEY", raising=False)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(ROOT / "conf", tmp_path / "conf", ignore=shutil.ignore_patterns("credentials*"))
    shutil.copytree(ROOT / "data" / "01_raw" / "samples", tmp_path / "data" / "01_raw" / "samples")
    (tmp_path / "src").mkdir()  # the package itself is installed
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_dataset(project: Path, params: dict) -> None:
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    _end_mlflow_runs()
    try:
        with KedroSession.create(project_path=project, runtime_params=params) as session:
            session.run(pipeline_names=["dataset"])
    finally:
        _end_mlflow_runs()


def _end_mlflow_runs() -> None:
    # kedro-mlflow's hook can leave its run active in this process; one test's run must not
    # swallow the next session's parameters.
    try:
        import mlflow
    except ImportError:  # pragma: no cover
        return
    while mlflow.active_run() is not None:
        mlflow.end_run()


def test_dataset_pipeline_synthetic_is_deterministic(project):
    params = {
        "dataset": {"synthetic": {"n_videos": 60, "n_channels": 8, "sample_snapshots": None}},
        "result_store": str(project / "data" / "02_intermediate" / "result_store"),
    }
    table_path = project / "data" / "05_model_input" / "training_table.parquet"
    meta_path = project / "data" / "05_model_input" / "dataset_metadata.json"
    run_dataset(project, params)
    first = table_path.read_bytes()
    meta = json.loads(meta_path.read_text())
    assert hashlib.sha256(first).hexdigest() == meta["dataset_fingerprint"]
    assert meta["rows"] == 60 and meta["synthetic"] is True
    assert meta["sources"]["kind"] == "synthetic" and meta["sources"]["snapshots_fingerprint"]
    assert set(meta["splits"]) == {"split_time", "split_channel"}
    table = pd.read_parquet(table_path)
    assert {"split_time", "split_channel", "video_age_hours_at_snapshot1", "target__views__21d"} <= set(
        table.columns
    )
    run_dataset(project, params)  # same inputs -> byte-identical file
    assert table_path.read_bytes() == first


def test_dataset_pipeline_on_real_trending_sample(project):
    params = {
        "dataset": {
            "snapshot_source": "trending",
            "horizons": [
                {"name": "1d", "tolerance": "6h", "required": True},
                {"name": "2d", "tolerance": "6h"},
                {"name": "3d", "tolerance": "6h"},
            ],
            "enrichment": {"enabled": False},
        },
        "result_store": str(project / "store"),
    }
    run_dataset(project, params)
    meta = json.loads((project / "data" / "05_model_input" / "dataset_metadata.json").read_text())
    assert meta["synthetic"] is False and meta["sources"]["kind"] == "trending"
    assert meta["snapshots"]["defects"]["truncated_last_rows"] == 3
    assert meta["target_coverage"]["1d"]["views"]["rows_with_target"] > 0
    assert meta["runs"]["counts"].get("videos_with_run", 0) == 0  # no runs for these videos
    table = pd.read_parquet(project / "data" / "05_model_input" / "training_table.parquet")
    assert (table["run__missing_reason"] == "no_run").all() and table["channel_id__present"].all()
    assert os.path.exists(project / "data" / "03_primary" / "snapshots.parquet")


def test_dataset_pipeline_joins_the_bundled_sample_video(project):
    """The demo's table: the SYNTHETIC corpus plus the sample video's snapshot curve."""
    params = {
        "dataset": {"synthetic": {"n_videos": 60, "n_channels": 8}},
        "result_store": str(project / "data" / "02_intermediate" / "result_store-samples"),
    }
    run_dataset(project, params)
    meta = json.loads((project / "data" / "05_model_input" / "dataset_metadata.json").read_text())
    table = pd.read_parquet(project / "data" / "05_model_input" / "training_table.parquet")
    assert meta["rows"] == 61 and meta["synthetic_rows"] == 60
    sample = table[table["video_id"] == "bbb_trailer"]
    assert sample["platform_id"].tolist() == ["local"]
    assert bool(sample["target__views__21d__mask"].iloc[0])
