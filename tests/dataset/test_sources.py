"""Snapshot sources: canonical files, the trending CSV importer, the Hugging Face source."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trendflow.contracts.errors import TrendFlowError
from trendflow.dataset.kedro_datasets import HFDiskDataset, SnapshotSourceDataset
from trendflow.dataset.snapshots import normalize_snapshots
from trendflow.dataset.trending import import_trending, parse_csv_text

DATA = Path(__file__).resolve().parents[1] / "data" / "trending"


def canonical_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "platform_id": ["youtube"] * 5 + ["local"],
            "video_id": ["abc", "abc", "abc", "#NAME?", "abc", "sha256-1"],
            "snapshot_at": [
                "2024-01-01T00:00:00Z",
                "2024-01-02T00:00:00Z",
                "2024-01-02T00:00:00Z",
                "2024-01-01",
                "2024-01-02T00:00:00+00:00",
                "2024-01-03 12:00",
            ],
            "views": [10, 20, 25, 1, 20, 5],
            "likes": [1, 2, 3, 0, 2, -1],
            "comments": [0, 1, 1, 0, 1, None],
            "tags": [["a", "b"], None, None, None, None, "x|y"],
        }
    )


def test_normalize_drops_bad_ids_and_duplicates():
    df, report = normalize_snapshots(canonical_frame(), "test")
    assert report["dropped_invalid_video_id"] == 1
    assert report["dropped_exact_duplicates"] == 1
    assert report["dropped_conflicting_duplicates"] == 1
    abc = df[df.video_id == "abc"]
    assert abc["views"].tolist() == [10.0, 25.0]  # max_views wins a conflict
    assert str(df["snapshot_at"].dtype) == "datetime64[ns, UTC]"
    assert df.loc[df.video_id == "sha256-1", "likes"].isna().all()  # negative counter -> unknown
    assert abc["tags"].iat[0] == "a|b"
    assert list(df[["platform_id", "video_id", "snapshot_at"]].itertuples(index=False)) == sorted(
        df[["platform_id", "video_id", "snapshot_at"]].itertuples(index=False)
    )


def test_normalize_requires_columns():
    with pytest.raises(TrendFlowError, match="lack required columns"):
        normalize_snapshots(pd.DataFrame({"platform_id": ["youtube"], "video_id": ["a"]}), "x")


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_canonical_file_source(tmp_path, suffix):
    path = tmp_path / f"snaps.{suffix}"
    ds = SnapshotSourceDataset(kind="canonical", filepath=str(path))
    assert not ds.exists()
    frame = canonical_frame().drop(columns="tags")
    ds.save(frame)
    handle = ds.load()
    df, report = handle.read()
    assert report["rows_out"] == 3 and set(df.video_id) == {"abc", "sha256-1"}
    assert len(handle.fingerprint()) == 64


def test_missing_source_is_a_typed_error(tmp_path):
    handle = SnapshotSourceDataset(kind="canonical", filepath=str(tmp_path / "nope.parquet")).load()
    with pytest.raises(TrendFlowError, match="not found"):
        handle.read()


def test_parse_csv_drops_a_truncated_last_row():
    text = 'a,b\n"1","x"\n"2","y, cut off'
    header, rows, report = parse_csv_text(text)
    assert header == ["a", "b"] and rows == [["1", "x"]] and report["truncated_last_row"] == 1
    header, rows, report = parse_csv_text("a,b\n1,x\n2,y\n")
    assert len(rows) == 2 and report["truncated_last_row"] == 0


def test_trending_daily_format_several_countries(caplog):
    with caplog.at_level(logging.WARNING):
        df, report = import_trending(str(DATA / "*_youtube_trending_data.csv"))
    assert report["countries"] == ["GB", "US"]
    assert report["truncated_last_rows"] == 2  # both trimmed copies end mid-row, like the originals
    assert report["videos_in_several_countries"] > 0
    assert "truncated_last_rows" in caplog.text and "videos_in_several_countries" in caplog.text
    assert df.duplicated(["platform_id", "video_id", "snapshot_at"]).sum() == 0
    assert (df["platform_id"] == "youtube").all()
    assert df["channel_id"].notna().all() and df["published_at"].notna().all()
    assert (df["snapshot_at"].dt.hour == 0).all()
    # one video, several trending days -> several snapshots
    assert df.groupby("video_id").size().max() >= 3


def test_trending_old_format_with_defects(caplog):
    with caplog.at_level(logging.WARNING):
        df, report = import_trending([str(DATA / "USvideos.csv"), str(DATA / "GBvideos.csv")])
    d = report["defects"]
    assert d["invalid_video_ids"] == 1  # '#NAME?'
    assert d["exact_duplicates"] == 1
    assert d["truncated_last_rows"] == 1
    assert d["videos_in_several_countries"] == 5
    assert report["files"]["USvideos.csv"]["format"] == "trending_v1"
    assert "invalid_video_ids" in caplog.text
    # YY.DD.MM -> 2020-08-12
    first = df[df.video_id == "3C66w5Z0ixs"].sort_values("snapshot_at")
    assert str(first["snapshot_at"].iat[0]) == "2020-08-12 00:00:00+00:00"
    assert first["tags"].iat[0].startswith("brawadis|prank")
    assert df["channel_id"].isna().all()  # the old format has no channel ids
    # ratings disabled: likes unknown (the export says 0)
    assert df["likes"].isna().sum() == 1


def test_not_a_trending_csv(tmp_path):
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(TrendFlowError, match="not a YouTube trending CSV"):
        import_trending(str(tmp_path / "x.csv"))


def test_trending_source_dataset_is_lazy_and_read_only(tmp_path):
    ds = SnapshotSourceDataset(kind="trending", filepath=str(DATA / "USvideos.csv"))
    df, _ = ds.load().read()
    assert len(df) > 10
    with pytest.raises(Exception, match="read-only"):
        ds.save(df)


def test_huggingface_source_offline(tmp_path):
    datasets = pytest.importorskip("datasets")
    raw = pd.DataFrame(
        {
            "platform": ["youtube"] * 3,
            "id": ["vidA", "vidA", "vidB"],
            "ts": ["2024-05-01T00:00:00Z", "2024-05-08T00:00:00Z", "2024-05-01T06:00:00Z"],
            "view_count": [100, 400, 7],
            "like_count": [1, 5, 0],
            "comment_count": [0, 1, 0],
            "channel": ["UCa", "UCa", None],
        }
    )
    path = tmp_path / "hf"
    datasets.DatasetDict({"train": datasets.Dataset.from_pandas(raw)}).save_to_disk(str(path))
    ds = SnapshotSourceDataset(
        kind="huggingface",
        filepath=str(path),
        column_mapping={
            "platform": "platform_id",
            "id": "video_id",
            "ts": "snapshot_at",
            "view_count": "views",
            "like_count": "likes",
            "comment_count": "comments",
            "channel": "channel_id",
        },
    )
    df, report = ds.load().read()
    assert report["rows_out"] == 3
    assert df.loc[df.video_id == "vidA", "views"].tolist() == [100.0, 400.0]
    assert df["channel_id"].tolist()[:2] == ["UCa", "UCa"]

    # HFDiskDataset round trip of a plain Dataset
    plain = tmp_path / "plain"
    HFDiskDataset(str(plain)).save(raw)
    back = HFDiskDataset(str(plain)).load()
    assert back["view_count"].tolist() == [100, 400, 7]
    assert np.isnan(np.nan)
