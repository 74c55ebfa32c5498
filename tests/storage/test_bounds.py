"""A hung S3 endpoint (accepts connections, never answers) gives `storage_unavailable`, bounded.

Every storage call has connect/read timeouts, bounded retries and a total deadline per operation,
and a store found dead fails fast afterwards: the CLI, the worker and the pipelines end within
the 60 s the product promises (here with short bounds from the environment, and once with the
defaults).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.hung import HungServer
from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.storage.store import ResultStore, StorageLimits
from trendflow.worker.config import WorkerSettings
from trendflow.worker.execution import stage_source

SHORT = StorageLimits(connect_timeout_s=1, read_timeout_s=1, attempts=2, deadline_s=1.5, cooldown_s=30)
SHORT_ENV = {"TRENDFLOW_S3_DEADLINE_S": "2", "TRENDFLOW_S3_READ_TIMEOUT_S": "1"}
CONTRACT_S = 60.0
VIDEO = Path("tests/data/videos/carphone_pristine.mp4")


def _hung_store(server: HungServer, limits: StorageLimits = SHORT) -> ResultStore:
    options = {"key": "k", "secret": "s", "endpoint_url": server.url}
    store = ResultStore("s3://bucket/prefix", storage_options=options, limits=limits)
    # Build the S3 client now (no network): on a loaded machine loading botocore's service model
    # can outlast the short deadline, and then the call would end before it reached the endpoint.
    store.fs.connect()
    return store


OPERATIONS = {
    "read": lambda s: s.read_bytes("a/b.json"),
    "write": lambda s: s.write_bytes("a/b.json", b"{}"),
    "exists": lambda s: s.exists("a/b.json"),
    "listdir": lambda s: s.listdir("a"),
    "find": lambda s: s.find("a"),
    "size": lambda s: s.size("a/b.json"),
    "delete": lambda s: s.delete("a", recursive=True),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_every_operation_is_bounded(hung_endpoint: HungServer, operation: str) -> None:
    store = _hung_store(hung_endpoint)
    started = time.monotonic()
    with pytest.raises(TrendFlowError) as info:
        OPERATIONS[operation](store)
    assert info.value.code is ErrorCode.STORAGE_UNAVAILABLE
    assert time.monotonic() - started < CONTRACT_S
    assert hung_endpoint.accepted >= 1, "the call did reach the endpoint"


def test_dead_store_fails_fast_after_the_first_timeout(hung_endpoint: HungServer) -> None:
    store = _hung_store(hung_endpoint)
    with pytest.raises(TrendFlowError):
        store.read_bytes("x")
    accepted = hung_endpoint.accepted
    for operation in OPERATIONS.values():
        with pytest.raises(TrendFlowError) as info:
            operation(store)
        assert info.value.code is ErrorCode.STORAGE_UNAVAILABLE
    assert hung_endpoint.accepted == accepted, "no new connection while the store is known dead"


def test_limits_from_env_are_validated() -> None:
    assert StorageLimits.from_env({"TRENDFLOW_S3_DEADLINE_S": "7"}).deadline_s == 7
    for bad in ({"TRENDFLOW_S3_DEADLINE_S": "0"}, {"TRENDFLOW_S3_ATTEMPTS": "x"}):
        with pytest.raises(TrendFlowError) as info:
            StorageLimits.from_env(bad)
        assert info.value.code is ErrorCode.CONFIG_ERROR


def _cli(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "trendflow", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=180,
    )
    return proc, time.monotonic() - started


def _hung_env(server: HungServer) -> dict[str, str]:
    return {"TRENDFLOW_S3_ENDPOINT_URL": server.url, "TRENDFLOW_S3_KEY": "k", "TRENDFLOW_S3_SECRET": "s"}


def test_cli_process_ends_with_storage_unavailable(hung_endpoint: HungServer) -> None:
    proc, elapsed = _cli(
        ["process", str(VIDEO), "--store", "s3://bucket/prefix"], {**_hung_env(hung_endpoint), **SHORT_ENV}
    )
    assert proc.returncode == 1
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["error_code"] == "storage_unavailable"
    assert "Traceback" not in proc.stderr
    assert elapsed < CONTRACT_S


@pytest.mark.slow
def test_cli_process_with_default_bounds_ends_within_a_minute(hung_endpoint: HungServer) -> None:
    proc, elapsed = _cli(["process", str(VIDEO), "--store", "s3://bucket/prefix"], _hung_env(hung_endpoint))
    assert json.loads(proc.stdout.strip().splitlines()[-1])["error_code"] == "storage_unavailable"
    assert elapsed < CONTRACT_S


def test_cli_stats_ends_with_storage_unavailable(hung_endpoint: HungServer) -> None:
    proc, elapsed = _cli(
        ["stats", "--store", "s3://bucket/prefix"], {**_hung_env(hung_endpoint), **SHORT_ENV}
    )
    assert proc.returncode == 1
    assert "storage_unavailable" in proc.stderr
    assert elapsed < CONTRACT_S


def test_worker_job_and_staging_end_with_storage_unavailable(
    hung_endpoint: HungServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trendflow.batch.jobs import plan_jobs
    from trendflow.batch.video_list import VideoEntry
    from trendflow.worker.execution import execute_job

    for name, value in {**_hung_env(hung_endpoint), **SHORT_ENV}.items():
        monkeypatch.setenv(name, value)
    started = time.monotonic()
    with pytest.raises(TrendFlowError) as info:
        stage_source("s3://bucket/staged/video.mp4", tmp_path)
    assert info.value.code is ErrorCode.STORAGE_UNAVAILABLE
    assert time.monotonic() - started < CONTRACT_S

    (job,) = plan_jobs([VideoEntry(source=str(VIDEO.resolve()))], "signals")
    settings = WorkerSettings(store_root="s3://bucket/prefix", scratch_root=str(tmp_path / "scratch"))
    started = time.monotonic()
    result = execute_job(job.payload, settings)
    assert result.error_code is ErrorCode.STORAGE_UNAVAILABLE
    assert time.monotonic() - started < CONTRACT_S


def test_pipeline_node_ends_with_storage_unavailable(
    hung_endpoint: HungServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pandas as pd

    from trendflow.batch.kedro_datasets import ResultStoreDataset
    from trendflow.pipelines.dataset.nodes import build_run_features

    for name, value in {**_hung_env(hung_endpoint), **SHORT_ENV}.items():
        monkeypatch.setenv(name, value)
    snapshot1 = pd.DataFrame({"platform_id": ["youtube"], "video_id": ["abc"]})
    store = ResultStoreDataset(root="s3://bucket/prefix").load()  # the catalog's handle
    started = time.monotonic()
    with pytest.raises(TrendFlowError) as info:
        build_run_features(snapshot1, pd.DataFrame(), {}, {}, store)
    assert info.value.code is ErrorCode.STORAGE_UNAVAILABLE
    assert time.monotonic() - started < CONTRACT_S
