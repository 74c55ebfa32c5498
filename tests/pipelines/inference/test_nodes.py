"""The inference pipeline's request selection and its wiring to the catalog."""

from pathlib import Path

import pandas as pd
import pytest
import yaml

from trendflow.contracts.errors import TrendFlowError
from trendflow.pipelines.inference import create_pipeline
from trendflow.pipelines.inference.nodes import select_requests

ROOT = Path(__file__).resolve().parents[3]
T0 = pd.Timestamp("2026-01-01T00:00:00Z")


def _table():
    return pd.DataFrame(
        {
            "platform_id": ["synthetic"] * 3,
            "video_id": ["a", "b", "c"],
            "run_id": ["r1", None, "r3"],
            "run__present": [True, False, True],
            "split_time": ["test", "test", "train"],
        }
    )


def _snapshots():
    return pd.DataFrame(
        {
            "platform_id": ["synthetic"] * 4,
            "video_id": ["a", "a", "b", "c"],
            "snapshot_at": [T0 + pd.Timedelta(days=1), T0, T0, T0],
            "views": [500.0, 100.0, 10.0, 5.0],
            "likes": [50.0, 10.0, 1.0, pd.NA],
            "comments": [5.0, 1.0, 0.0, 0.0],
            "published_at": [T0 - pd.Timedelta(hours=5)] * 4,
            "title": ["t", "t", "u", "v"],
            "tags": ["x|y", "x|y", None, None],
        }
    )


def test_default_requests_sample_the_split_rows_with_a_run_and_use_snapshot1():
    requests = select_requests({"from_table": {"split": "test", "limit": 5}}, _table(), _snapshots())
    assert [(r["video_id"], r["run_dir"]) for r in requests] == [("a", "synthetic/a/r1")]
    facts = requests[0]["facts"]
    assert facts["views"] == 100.0 and facts["likes"] == 10.0  # the FIRST snapshot, not a later one
    assert facts["tags"] == ["x", "y"] and facts["snapshot_at"].startswith("2026-01-01T00:00:00")


def test_listed_videos_override_snapshot_facts():
    params = {
        "videos": [
            {"platform_id": "synthetic", "video_id": "c", "likes": 3, "views": 9},
            {
                "platform_id": "youtube",
                "video_id": "newvideo123",
                "views": 1,
                "likes": 0,
                "snapshot_at": "2026-02-01T00:00:00Z",
                "published_at": "2026-01-31T00:00:00Z",
            },
        ]
    }
    requests = select_requests(params, _table(), _snapshots())
    assert requests[0]["facts"]["likes"] == 3 and requests[0]["facts"]["views"] == 9
    assert requests[0]["run_dir"] is None  # the newest successful run is looked up at prediction time
    assert requests[1]["facts"]["published_at"].startswith("2026-01-31")


def test_nothing_to_predict_is_an_error():
    with pytest.raises(TrendFlowError):
        select_requests({"from_table": {"split": "valid"}}, _table(), _snapshots())


def test_pipeline_inputs_are_in_the_catalog():
    catalog = {}
    for path in (ROOT / "conf/base").glob("catalog*.yml"):
        catalog.update(yaml.safe_load(path.read_text()) or {})
    for name in create_pipeline().inputs():
        assert name.startswith("params:") or name in catalog, name
    assert catalog["forecast_models@loader"]["source"] == "registry"
