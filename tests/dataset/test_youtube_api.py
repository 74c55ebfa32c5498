"""The YouTube Data API client against a real local HTTP server replaying recorded responses."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from tests.dataset.youtube_server import YouTubeReplayServer, load
from trendflow.dataset.enrichment import enrich_channels
from trendflow.dataset.youtube_api import (
    ApiCacheIndex,
    QuotaExceeded,
    YouTubeApiClient,
    api_key_from,
    lookup_channels,
    lookup_videos,
    parse_iso8601_duration,
)

KEY = "test-key-never-logged-0123456789"
REAL_VIDEO = "D-lhorsDlUQ"  # in videos__video_api_response.json
REAL_CHANNEL = "UC_x5XG1OV2P6uZZ5FSM9Ttw"


@pytest.fixture
def server():
    with YouTubeReplayServer() as srv:
        yield srv


def client_for(server: YouTubeReplayServer, **kw) -> YouTubeApiClient:
    kw.setdefault("backoff_initial_sec", 0.01)
    kw.setdefault("backoff_max_sec", 0.02)
    kw.setdefault("max_attempts", 3)
    return YouTubeApiClient(api_key=KEY, base_url=server.base_url, timeout_sec=5, **kw)


def test_found_and_not_found_are_cached_and_never_asked_twice(server, tmp_path):
    cache = ApiCacheIndex(tmp_path / "cache.jsonl")
    client = client_for(server)
    result = lookup_videos([REAL_VIDEO, "unknownVid1"], cache, client)
    assert result.failed == {}
    assert result.videos[REAL_VIDEO]["channel_id"] == REAL_CHANNEL
    assert result.videos[REAL_VIDEO]["duration_sec"] == 21 * 60 + 7
    assert result.videos["unknownVid1"]["status"] == "not_found"
    assert len(server.requests) == 1
    assert server.requests[0]["api_key_header"] == KEY
    assert "key" not in server.requests[0]["query"]  # the key never travels in the URL

    # a fresh index on the same file: nothing is asked again
    again = lookup_videos([REAL_VIDEO, "unknownVid1"], ApiCacheIndex(tmp_path / "cache.jsonl"), client)
    assert again.calls == 0 and len(server.requests) == 1
    assert again.videos[REAL_VIDEO]["channel_id"] == REAL_CHANNEL


def test_batches_of_at_most_50_ids(server, tmp_path):
    ids = [REAL_VIDEO] + [f"vid{i:08d}" for i in range(119)]
    result = lookup_videos(ids, ApiCacheIndex(tmp_path / "c.jsonl"), client_for(server))
    sizes = [len(r["ids"]) for r in server.requests]
    assert sizes == [50, 50, 20]
    assert sorted(i for r in server.requests for i in r["ids"]) == sorted(ids)
    assert len(result.videos) == 120


def test_quota_exceeded_stops_and_is_not_cached(server, tmp_path, caplog):
    server.script = [(403, load("errors__quota_exceeded_403.json"))]
    cache = ApiCacheIndex(tmp_path / "c.jsonl")
    ids = [f"vid{i:08d}" for i in range(60)]
    with caplog.at_level(logging.WARNING):
        result = lookup_videos(ids, cache, client_for(server))
    assert len(server.requests) == 1  # no retry, no second batch
    assert set(result.failed.values()) == {"api_quota_exceeded"} and len(result.failed) == 60
    assert len(cache) == 0
    assert KEY not in caplog.text
    # next build: the quota is back, the same ids are asked
    result = lookup_videos(ids, cache, client_for(server))
    assert result.failed == {} and len(server.requests) == 3


def test_quota_error_raises_typed_error(server):
    server.script = [(403, load("errors__quota_exceeded_403.json"))]
    with pytest.raises(QuotaExceeded):
        list(client_for(server).videos_list(["abc"]))


def test_rate_limit_and_server_errors_are_retried_with_backoff(server, tmp_path):
    server.script = [(403, load("errors__rate_limit_exceeded_403.json")), (503, b"{}")]
    result = lookup_videos([REAL_VIDEO], ApiCacheIndex(tmp_path / "c.jsonl"), client_for(server))
    assert len(server.requests) == 3
    assert result.videos[REAL_VIDEO]["channel_id"] == REAL_CHANNEL


def test_malformed_json_is_retried_then_reported(server, tmp_path):
    bad = load("malformed__videos_truncated.json")
    server.script = [(200, bad)]  # once: the retry succeeds
    result = lookup_videos([REAL_VIDEO], ApiCacheIndex(tmp_path / "a.jsonl"), client_for(server))
    assert result.videos[REAL_VIDEO]["status"] == "found"

    server.script = [(200, bad)] * 3  # every attempt: the batch is reported, not cached
    cache = ApiCacheIndex(tmp_path / "b.jsonl")
    result = lookup_videos(["otherVid01"], cache, client_for(server))
    assert result.failed == {"otherVid01": "api_malformed_response"}
    assert len(cache) == 0


def test_404_and_rejected_requests(server, tmp_path):
    server.script = [(404, load("errors__not_found_404.json"))]
    result = lookup_videos(["abc"], ApiCacheIndex(tmp_path / "a.jsonl"), client_for(server))
    assert result.failed == {"abc": "api_not_found"}
    assert len(server.requests) == 1  # not retried

    for payload, status in (
        ("errors__key_invalid_400.json", 400),
        ("errors__permission_denied_403.json", 403),
    ):
        server.script = [(status, load(payload))]
        result = lookup_videos(["xyz"], ApiCacheIndex(tmp_path / f"{status}.jsonl"), client_for(server))
        assert result.failed == {"xyz": "api_request_rejected"}


def test_channels_list_statistics(server, tmp_path):
    stats = lookup_channels([REAL_CHANNEL, "UCnope"], ApiCacheIndex(tmp_path / "c.jsonl"), client_for(server))
    assert stats[REAL_CHANNEL]["subscriber_count"] == 1927873.0
    assert stats["UCnope"]["status"] == "not_found"


def test_no_key_means_no_call_and_a_reason(tmp_path, monkeypatch):
    monkeypatch.delenv("YOUTUBE_API_KEY", raising=False)
    assert api_key_from(None) is None
    assert api_key_from({"api_key": "k"}) == "k"
    result = lookup_videos(["abc"], ApiCacheIndex(tmp_path / "c.jsonl"), None)
    assert result.failed == {"abc": "no_api_key"}


def test_client_repr_hides_the_key():
    assert KEY not in repr(YouTubeApiClient(api_key=KEY))


def test_iso8601_durations():
    assert parse_iso8601_duration("PT21M7S") == 1267
    assert parse_iso8601_duration("P1DT1H") == 90000
    assert parse_iso8601_duration("bogus") is None


def test_enrichment_uses_snapshot_then_run_then_api(server, tmp_path, monkeypatch):
    monkeypatch.setenv("YOUTUBE_API_KEY", KEY)
    s1 = pd.DataFrame(
        {
            "platform_id": ["youtube", "youtube", "youtube", "youtube", "local"],
            "video_id": ["fromSnapshot", "fromRun0001", REAL_VIDEO, "goneVideo01", "localvid"],
            "channel_id": pd.array(["UCsnap", None, None, None, None], dtype="string"),
            "published_at": pd.to_datetime(["2020-01-01", None, None, None, None], utc=True),
        }
    )
    run_channel = pd.Series([None, "UCrun", None, None, None], dtype="string")
    params = {
        "cache_path": str(tmp_path / "cache.jsonl"),
        "base_url": server.base_url,
        "backoff_initial_sec": 0.01,
    }
    out, info = enrich_channels(s1, run_channel, params)
    assert out["channel_id"].tolist()[:3] == ["UCsnap", "UCrun", REAL_CHANNEL]
    assert out["channel_id__source"].tolist()[:3] == ["snapshot", "run", "youtube_api"]
    assert out["channel_id__missing_reason"].tolist()[3:] == ["api_video_not_found", "not_youtube"]
    assert out["channel_id__present"].tolist() == [True, True, True, False, False]
    assert str(out["published_at"].iat[2]) == "2019-03-21 20:37:49+00:00"  # filled from the API
    assert len(server.requests) == 1 and server.requests[0]["ids"] == sorted([REAL_VIDEO, "goneVideo01"])
    assert info["api_calls"] == 1

    # disabled: no call, a reason
    out, _ = enrich_channels(s1, run_channel, {**params, "enabled": False})
    assert out["channel_id__missing_reason"].iat[2] == "api_disabled"
    assert len(server.requests) == 1
