"""Video lists: CSV and JSON, relative paths, strict columns."""

import json
from pathlib import Path

import pandas as pd
import pytest

from trendflow.batch.video_list import entries_from_records, read_video_list
from trendflow.contracts.errors import ErrorCode, TrendFlowError


def test_csv_with_optional_columns_and_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "lists").mkdir()
    path = tmp_path / "lists" / "videos.csv"
    path.write_text(
        "source,platform_id,video_id,metadata\n"
        "clips/a.mp4,,,\n"
        "/abs/b.mp4,youtube,dQw4w9WgXcQ,b.json\n"
        "https://youtu.be/dQw4w9WgXcQ,,,\n"
    )
    entries = read_video_list(path)
    assert [e.line for e in entries] == [1, 2, 3]
    assert entries[0].source == str((tmp_path / "lists" / "clips" / "a.mp4").resolve())
    assert entries[0].platform_id is None and entries[0].metadata is None
    assert entries[1].source == "/abs/b.mp4" and entries[1].metadata == str(
        (tmp_path / "lists" / "b.json").resolve()
    )
    assert entries[2].source == "https://youtu.be/dQw4w9WgXcQ"


def test_json_list_forms(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    path.write_text(
        json.dumps({"videos": ["a.mp4", {"source": "b.mp4", "video_id": "b1", "metadata_file": "b.json"}]})
    )
    entries = read_video_list(path)
    assert [e.source for e in entries] == [str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4")]
    assert entries[1].video_id == "b1" and entries[1].metadata == str(tmp_path / "b.json")


def test_dataframe_rows_with_nan_cells() -> None:
    frame = pd.DataFrame({"source": ["/x.mp4", "/y.mp4"], "video_id": [None, "y"]})
    entries = entries_from_records(frame.to_dict(orient="records"))
    assert entries[0].video_id is None and entries[1].video_id == "y"


@pytest.mark.parametrize(
    ("content", "suffix"),
    [
        ("source,colour\na.mp4,red\n", ".csv"),
        ("source\n\n", ".csv"),
        ('{"not": "a list"}', ".json"),
        ("{broken", ".json"),
        ("a.mp4", ".yaml"),
    ],
)
def test_bad_lists_are_invalid_request(tmp_path: Path, content: str, suffix: str) -> None:
    path = tmp_path / f"list{suffix}"
    path.write_text(content)
    entries = None
    with pytest.raises(TrendFlowError) as info:
        entries = read_video_list(path)
        if not entries:  # an empty list is not an error by itself
            raise TrendFlowError(ErrorCode.INVALID_REQUEST, "empty")
    assert info.value.code is ErrorCode.INVALID_REQUEST


def test_missing_list_is_source_not_found(tmp_path: Path) -> None:
    with pytest.raises(TrendFlowError) as info:
        read_video_list(tmp_path / "absent.csv")
    assert info.value.code is ErrorCode.SOURCE_NOT_FOUND
