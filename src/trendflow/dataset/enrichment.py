"""Channel enrichment: channel_id per video, in this order of sources:

1. the snapshot source (`channel_id` column, first non-null value of the video);
2. the run: `manifest.source["channel_id"]` (or `uploader_id`), written by the downloader from
   yt-dlp's info dict;
3. the YouTube Data API v3 (`videos.list`, platform `youtube` only), through the local cached
   index, so a video is asked at most once.

Columns: `channel_id`, `channel_id__present`, `channel_id__source` (snapshot | run | youtube_api)
and `channel_id__missing_reason` (e.g. `not_youtube`, `api_disabled`, `no_api_key`,
`api_video_not_found`, `api_quota_exceeded`, `api_request_rejected`, `api_unavailable`,
`api_malformed_response`, `api_not_found`, `api_no_channel`). The API can also fill
`published_at` and `duration_sec` of the videos it was asked about, where the snapshot source
lacks them (static facts).
Channel statistics from channels.list are the channel's numbers at build time, not at
snapshot1: they are used as features only with `use_api_channel_statistics: true`.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from trendflow.dataset.snapshots import to_utc
from trendflow.dataset.youtube_api import (
    ApiCacheIndex,
    YouTubeApiClient,
    api_key_from,
    lookup_channels,
    lookup_videos,
)

log = logging.getLogger(__name__)


def make_client(params: dict[str, Any], credentials: dict[str, Any] | None) -> YouTubeApiClient | None:
    key = api_key_from(credentials)
    if not key:
        return None
    return YouTubeApiClient(
        api_key=key,
        base_url=params.get("base_url", "https://www.googleapis.com/youtube/v3"),
        timeout_sec=float(params.get("timeout_sec", 10)),
        max_attempts=int(params.get("max_attempts", 5)),
        backoff_initial_sec=float(params.get("backoff_initial_sec", 1.0)),
        backoff_max_sec=float(params.get("backoff_max_sec", 60.0)),
    )


def enrich_channels(
    s1: pd.DataFrame,
    run_channel: pd.Series | None,
    params: dict[str, Any] | None = None,
    credentials: dict[str, Any] | None = None,
    client: YouTubeApiClient | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Returns `s1` with channel columns set (and published_at/duration filled from the API)."""
    params = params or {}
    out = s1.copy()
    n = len(out)
    channel = out["channel_id"].astype("string").to_numpy(dtype=object)
    channel = np.array([None if (c is pd.NA or c is None or c == "") else c for c in channel], dtype=object)
    source = np.array(["snapshot" if c is not None else None for c in channel], dtype=object)
    reason = np.full(n, None, dtype=object)
    if run_channel is not None:
        rc = run_channel.reindex(out.index).astype("string").to_numpy(dtype=object)
        for i in range(n):
            if channel[i] is None and rc[i] is not pd.NA and rc[i]:
                channel[i] = rc[i]
                source[i] = "run"

    platform = out["platform_id"].astype(str).to_numpy()
    need_api = [i for i in range(n) if channel[i] is None and platform[i] == "youtube"]
    for i in range(n):
        if channel[i] is None and platform[i] != "youtube":
            reason[i] = "not_youtube"
    info: dict[str, Any] = {"api_calls": 0, "api_asked_videos": 0}
    enabled = params.get("enabled", "auto")
    if need_api:
        if enabled is False:
            for i in need_api:
                reason[i] = "api_disabled"
        else:
            cache = ApiCacheIndex(params.get("cache_path", "data/02_intermediate/youtube_api_cache.jsonl"))
            client = client if client is not None else make_client(params, credentials)
            ids = [str(out["video_id"].iat[i]) for i in need_api]
            result = lookup_videos(ids, cache, client)
            info["api_calls"] = result.calls
            info["api_asked_videos"] = len([v for v in ids if v not in result.failed])
            for i in need_api:
                vid = str(out["video_id"].iat[i])
                rec = result.videos.get(vid)
                if rec is None:
                    reason[i] = result.failed.get(vid, "api_unavailable")
                elif rec.get("status") == "not_found":
                    reason[i] = "api_video_not_found"
                elif rec.get("channel_id"):
                    channel[i] = rec["channel_id"]
                    source[i] = "youtube_api"
                else:
                    reason[i] = "api_no_channel"
                if rec and rec.get("status") == "found":
                    _fill_static(out, i, rec)
            if params.get("use_api_channel_statistics", False) and client is not None:
                chans = sorted({c for c in channel if c is not None and str(c).startswith("UC")})
                stats = lookup_channels(chans, cache, client)
                _fill_channel_stats(out, channel, stats)
    for i in range(n):
        if channel[i] is None and reason[i] is None:
            reason[i] = "not_in_source"
    out["channel_id"] = pd.array(channel, dtype="string")
    out["channel_id__present"] = np.array([c is not None for c in channel], dtype=bool)
    out["channel_id__source"] = pd.array(source, dtype="string")
    out["channel_id__missing_reason"] = pd.array(reason, dtype="string")
    counts = pd.Series(source, dtype=object).fillna("missing").value_counts()
    info["channel_sources"] = {k: int(v) for k, v in sorted(counts.items())}
    info["missing_reasons"] = {
        k: int(v) for k, v in sorted(pd.Series(reason, dtype=object).dropna().value_counts().items())
    }
    if info["missing_reasons"]:
        log.warning(
            "channel_id missing for %d of %d videos: %s",
            int((~out["channel_id__present"]).sum()),
            n,
            info["missing_reasons"],
        )
    return out, info


def _fill_static(out: pd.DataFrame, i: int, rec: dict[str, Any]) -> None:
    if rec.get("published_at") and pd.isna(out["published_at"].iat[i]):
        out.loc[out.index[i], "published_at"] = to_utc(pd.Series([rec["published_at"]])).iat[0]
    if rec.get("duration_sec") is not None:
        if "duration_sec" not in out.columns:
            out["duration_sec"] = np.nan
        if pd.isna(out["duration_sec"].iat[i]):
            out.loc[out.index[i], "duration_sec"] = float(rec["duration_sec"])


def _fill_channel_stats(out: pd.DataFrame, channel: np.ndarray, stats: dict[str, dict[str, Any]]) -> None:
    for col, key in (
        ("channel_subscriber_count", "subscriber_count"),
        ("channel_video_count", "video_count"),
        ("channel_view_count", "view_count"),
    ):
        if col not in out.columns:
            out[col] = np.nan
        values = out[col].astype("float64").to_numpy(copy=True)
        for i, c in enumerate(channel):
            rec = stats.get(c) if c is not None else None
            if rec and np.isnan(values[i]) and rec.get(key) is not None:
                values[i] = float(rec[key])
        out[col] = values
