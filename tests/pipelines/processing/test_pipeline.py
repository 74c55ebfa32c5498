"""The `processing` pipeline through Kedro: embedded defaults (local store) and `--env minio` (S3)."""

from __future__ import annotations

import http.server
import json
import shutil
import threading
import uuid
from pathlib import Path

import pandas as pd
import pytest

from tests.fixtures.queue import RedisServer
from trendflow.batch.kedro_datasets import ResultStoreDataset
from trendflow.pipelines.processing.nodes import build_runs_index, plan_processing_jobs
from trendflow.pipelines.processing.pipeline import create_pipeline

PROJECT = Path(__file__).resolve().parents[3]


def test_pipeline_shape() -> None:
    pipeline = create_pipeline()
    assert [n.name for n in pipeline.nodes] == [
        "select_processing_videos", "plan_processing_jobs", "dispatch_processing_jobs",
        "follow_processing_jobs", "build_runs_index",
    ]  # fmt: skip
    assert pipeline.inputs() == {
        "processing_video_list", "snapshots_canonical", "snapshots_trending", "snapshots_huggingface",
        "params:processing", "params:dataset", "result_store",
    }  # fmt: skip
    assert pipeline.outputs() == {"runs_index"}


def test_planning_and_index_without_a_queue(tiny_videos: dict[str, Path], tmp_path: Path) -> None:
    """JSON input, a bad row, and an index built from planning errors alone."""
    params = {
        "profile": "signals",
        "video_list_base_dir": str(tiny_videos["valid_a"].parent),
        "stage_inputs": "never",
    }
    planned = plan_processing_jobs(
        {"videos": ["valid_a.mp4", {"source": "absent.mp4"}, "valid_a.mp4"]},
        params,
        ResultStoreDataset(root=str(tmp_path / "store")).load(),
    )
    assert len(planned) == 2  # the duplicate entry is one job
    index = build_runs_index(planned, [])
    assert list(index["status"]) == ["error", "pending"] or list(index["status"]) == ["pending", "error"]
    assert set(index["error_code"].dropna()) == {"source_not_found"}
    assert index["retry_count"].dtype == "int64"


@pytest.fixture
def kedro_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer, tiny_videos: dict[str, Path]
) -> Path:
    """A copy of the project's configuration in a temporary folder (the cwd), with a small video list."""
    project = tmp_path / "project"
    shutil.copytree(
        PROJECT / "conf", project / "conf", ignore=shutil.ignore_patterns("credentials*", "local")
    )
    (project / "conf" / "local").mkdir()
    shutil.copy(PROJECT / "pyproject.toml", project / "pyproject.toml")
    (project / "src").mkdir()  # bootstrap wants a source folder; the code is the installed package
    samples = project / "data" / "01_raw" / "samples"
    samples.mkdir(parents=True)
    for name in ("valid_a", "valid_b", "broken"):
        shutil.copy(tiny_videos[name], samples / tiny_videos[name].name)
    (samples / "processing_videos.csv").write_text(
        "source,platform_id,video_id,metadata\nvalid_a.mp4,,,\nvalid_b.mp4,local,clip_b,\nbroken.mp4,,,\n"
    )
    shutil.copy(
        PROJECT / "conf" / "minio" / "credentials.yml", project / "conf" / "minio" / "credentials.yml"
    )
    monkeypatch.chdir(project)
    monkeypatch.setenv("TRENDFLOW_REDIS_URL", redis_server.url())
    monkeypatch.setenv("TRENDFLOW_QUEUE", f"kedro-{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("TRENDFLOW_SCRATCH", str(tmp_path / "scratch"))
    return project


def run_processing(
    project: Path,
    env: str | None = None,
    pipelines: tuple[str, ...] = ("processing",),
    extra_runtime: dict | None = None,
    **params: object,
) -> None:
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    runtime = {
        "processing": {"profile": "signals", "local_workers": 2, "poll_s": 0.2, "timeout_s": 300, **params}
    }
    runtime.update(extra_runtime or {})
    with KedroSession.create(project_path=project, env=env, runtime_params=runtime) as session:
        session.run(pipeline_names=pipelines)


def check_index(frame: pd.DataFrame) -> None:
    assert len(frame) == 3
    by_id = frame.set_index("video_id")
    assert by_id.loc["clip_b", "status"] == "success"
    assert sorted(frame["status"]) == ["error", "success", "success"]
    assert list(frame.loc[frame["status"] == "error", "error_code"]) == ["invalid_media"]
    assert (frame["retry_count"] == 0).all()
    assert frame.loc[frame["status"] == "success", "manifest_uri"].notna().all()
    assert frame["finished_at"].notna().all() and frame["duration_sec"].notna().all()


def test_kedro_run_on_the_embedded_defaults(kedro_project: Path) -> None:
    run_processing(kedro_project)  # no worker consumes the queue: the pipeline starts two
    frame = pd.read_parquet(kedro_project / "data" / "03_primary" / "runs_index.parquet")
    check_index(frame)
    manifest = Path(frame.loc[frame["video_id"] == "clip_b", "manifest_uri"].iloc[0])
    assert manifest.is_file() and manifest.is_relative_to(kedro_project / "data" / "02_intermediate")


def test_kedro_run_with_env_minio(
    kedro_project: Path, monkeypatch: pytest.MonkeyPatch, s3_options: dict
) -> None:
    import s3fs

    monkeypatch.setenv("TRENDFLOW_S3_ENDPOINT_URL", s3_options["endpoint_url"])
    monkeypatch.setenv("TRENDFLOW_S3_KEY", s3_options["key"])
    monkeypatch.setenv("TRENDFLOW_S3_SECRET", s3_options["secret"])
    fs = s3fs.S3FileSystem(**s3_options, skip_instance_cache=True)
    if not fs.exists("trendflow"):
        fs.mkdir("trendflow")
    run_processing(kedro_project, env="minio")
    assert not (kedro_project / "data" / "03_primary" / "runs_index.parquet").exists()
    with fs.open("trendflow/03_primary/runs_index.parquet", "rb") as handle:
        frame = pd.read_parquet(handle)
    check_index(frame)
    manifest_uri = frame.loc[frame["video_id"] == "clip_b", "manifest_uri"].iloc[0]
    assert manifest_uri.startswith("s3://trendflow/result_store/local/clip_b/")
    assert fs.exists(manifest_uri)
    # Local inputs were staged into the shared store, so any worker could read them.
    assert fs.exists("trendflow/result_store/_staging/local/clip_b/valid_b.mp4")


class _Unavailable(http.server.BaseHTTPRequestHandler):
    """Answers 451 (Unavailable For Legal Reasons) to everything: a geo-blocked video."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(451)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_HEAD = do_GET


def test_kedro_run_from_snapshots_to_the_table(kedro_project: Path) -> None:
    """processing.video_list=snapshots + dataset: one video processed, one refused by its server
    (source_unavailable/geo_blocked), one without a URL; the table explains each missing run."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Unavailable)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    samples = kedro_project / "data" / "01_raw" / "samples"
    rows = []
    for video_id, url in [
        ("clip_b", str(samples / "valid_b.mp4")),
        ("blocked", f"http://127.0.0.1:{server.server_address[1]}/blocked.mp4"),
        ("no_url", None),
    ]:
        for day, views in ((1, 10), (15, 100), (22, 150)):
            rows.append(
                {"platform_id": "local", "video_id": video_id, "snapshot_at": f"2024-05-{day:02d}T00:00:00Z",
                 "views": views, "likes": 1, "comments": 0, "video_url": url}
            )  # fmt: skip
    pd.DataFrame(rows).to_parquet(kedro_project / "data" / "01_raw" / "snapshots.parquet")
    try:
        run_processing(
            kedro_project,
            pipelines=("processing", "dataset"),
            extra_runtime={"dataset": {"snapshot_source": "canonical"}},
            video_list="snapshots",
        )
    finally:
        server.shutdown()
        server.server_close()
    index = pd.read_parquet(kedro_project / "data" / "03_primary" / "runs_index.parquet").set_index(
        "video_id"
    )
    assert sorted(index.index) == ["blocked", "clip_b"]  # no_url cannot be queued
    assert index.loc["clip_b", "status"] == "success"
    assert tuple(index.loc["blocked", ["status", "error_code", "error_reason"]]) == (
        "error", "source_unavailable", "geo_blocked",
    )  # fmt: skip
    # the refused video has an error manifest saying why (its run never started)
    manifest = json.loads(Path(index.loc["blocked", "manifest_uri"]).read_text())
    assert (manifest["status"], manifest["error_code"], manifest["error_reason"]) == (
        "error", "source_unavailable", "geo_blocked",
    )  # fmt: skip
    assert manifest["components"] == []
    table = pd.read_parquet(kedro_project / "data" / "05_model_input" / "training_table.parquet")
    reasons = dict(zip(table["video_id"], table["run__missing_reason"], strict=True))
    assert pd.isna(reasons["clip_b"]) and table.set_index("video_id").loc["clip_b", "run__present"]
    assert reasons["blocked"] == "processing_error:source_unavailable:geo_blocked"
    assert reasons["no_url"] == "no_run"
    metadata = json.loads((kedro_project / "data" / "05_model_input" / "dataset_metadata.json").read_text())
    assert metadata["runs"]["processing"]["status"] == {"error": 1, "success": 1}
