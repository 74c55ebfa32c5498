"""The processing video list taken from snapshots: distinct videos, watch URLs, runs already made."""

from __future__ import annotations

import pandas as pd
import pytest

from trendflow.batch.kedro_datasets import ResultStoreDataset
from trendflow.batch.snapshot_videos import distinct_videos, source_of, videos_from_snapshots
from trendflow.contracts.errors import TrendFlowError
from trendflow.dataset.kedro_datasets import SnapshotSourceDataset
from trendflow.dataset.synthetic import SyntheticConfig, ensure_corpus
from trendflow.pipelines.processing.nodes import (
    build_runs_index,
    plan_processing_jobs,
    select_processing_videos,
)
from trendflow.storage.store import ResultStore
from trendflow.worker.execution import profile_config_hash


def snapshots(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["platform_id", "video_id", "snapshot_at"])
    frame["snapshot_at"] = pd.to_datetime(frame["snapshot_at"], utc=True)
    return frame


def test_distinct_videos_newest_first_and_watch_urls() -> None:
    frame = snapshots(
        [
            ("youtube", "dQw4w9WgXcQ", "2024-01-01"),
            ("youtube", "dQw4w9WgXcQ", "2024-01-05"),
            ("youtube", "9bZkp7q19f0", "2024-02-01"),
            ("local", "sha256-abc", "2024-03-01"),
        ]
    )
    videos = distinct_videos(frame)
    assert list(videos["video_id"]) == ["sha256-abc", "9bZkp7q19f0", "dQw4w9WgXcQ"]
    assert source_of("youtube", "dQw4w9WgXcQ", None) == "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    assert source_of("youtube", "not-an-11-char-id", None) is None
    assert source_of("local", "x", " /videos/x.mp4 ") == "/videos/x.mp4"


def test_videos_with_a_successful_run_are_not_queued_again(tmp_path) -> None:
    store = ResultStore(str(tmp_path / "store"))
    cfg = SyntheticConfig(n_videos=6, n_channels=2, frac_no_run=0.0, frac_failed_run=0.0)
    corpus, _ = ensure_corpus(store, cfg)  # real manifests of successful runs for cfg.config_hash
    frame = corpus[["platform_id", "video_id", "snapshot_at"]].copy()
    frame["video_url"] = "http://127.0.0.1:9/" + frame["video_id"] + ".mp4"
    extra = snapshots([("youtube", "9bZkp7q19f0", "2024-01-02"), ("web", "page", "2024-01-03")])
    frame = pd.concat([frame, extra.assign(video_url=None)], ignore_index=True)
    n_done = corpus["video_id"].nunique()

    selected = videos_from_snapshots(frame, store, cfg.config_hash)
    assert [r["source"] for r in selected.records] == ["https://www.youtube.com/watch?v=9bZkp7q19f0"]
    assert len(selected.already_processed) == n_done and selected.unsupported[0]["video_id"] == "page"
    assert len(videos_from_snapshots(frame, store, cfg.config_hash, force=True).records) == n_done + 1
    other = videos_from_snapshots(frame, store, "0" * 64, max_videos=2)  # another profile: all queued
    assert len(other.records) == 2 and other.over_limit == n_done - 1


def test_select_plan_and_index_from_a_snapshot_source(tmp_path) -> None:
    path = tmp_path / "snaps.parquet"
    frame = snapshots([("youtube", "9bZkp7q19f0", "2024-01-02"), ("youtube", "dQw4w9WgXcQ", "2024-01-01")])
    frame.assign(views=1, likes=0, comments=0).to_parquet(path)
    handle = SnapshotSourceDataset(kind="canonical", filepath=str(path)).load()
    params = {"profile": "signals", "video_list": "snapshots", "max_videos": 1, "stage_inputs": "never"}
    store = ResultStoreDataset(root=str(tmp_path / "store")).load()
    videos = select_processing_videos(
        None, handle, None, None, params, {"snapshot_source": "canonical"}, store
    )
    assert videos["counts"] == {
        "queued": 1, "already_processed": 0, "unsupported": 0, "over_limit": 1, "source": "canonical",
    }  # fmt: skip
    planned = plan_processing_jobs(videos, params, store)
    assert planned[0]["payload"]["video_source"] == "https://www.youtube.com/watch?v=9bZkp7q19f0"
    assert planned[0]["payload"]["config_hash"] == profile_config_hash("signals")
    index = build_runs_index(planned, [])
    assert list(index["status"]) == ["pending"] and "error_reason" in index.columns

    with pytest.raises(TrendFlowError, match="SYNTHETIC videos have nothing to download"):
        select_processing_videos(None, handle, None, None, params, {"snapshot_source": "synthetic"}, store)
    with pytest.raises(TrendFlowError, match=r"processing\.video_list must be one of"):
        select_processing_videos(None, handle, None, None, {**params, "video_list": "x"}, {}, store)
