"""YouTube Data API v3 client (videos.list, channels.list) with a local cached index.

- Batches of at most 50 ids per call (the API's limit for `id=`), 1 quota unit per call.
- The API key travels in the `X-Goog-Api-Key` header, never in a URL, so it cannot reach a log
  line, an exception message or the cache. It comes from `YOUTUBE_API_KEY` or from the Kedro
  credentials entry `youtube_api` (`api_key:`) in conf/local/credentials.yml.
- Transient failures (5xx, 429, 403 rateLimitExceeded/userRateLimitExceeded, connection errors,
  timeouts, a malformed JSON body) are retried with exponential backoff (tenacity).
- 403 quotaExceeded/dailyLimitExceeded stops all further calls for this build (`QuotaExceeded`);
  the videos not asked yet get the reason `api_quota_exceeded` and are asked on the next build.
- 400/401/other 403 (bad key, API disabled) stop the enrichment with `api_request_rejected`.
- 404 marks the batch `api_not_found` (not cached: a 404 on videos.list means a wrong URL).
- A video id absent from a 200 response does not exist (deleted/private): it is cached as
  `not_found`, so it is never asked for again; found videos are cached with their channel.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://www.googleapis.com/youtube/v3"
MAX_IDS_PER_CALL = 50
_QUOTA_REASONS = {"quotaExceeded", "dailyLimitExceeded"}
_RATE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded"}


class ApiError(Exception):
    reason = "api_error"


class QuotaExceeded(ApiError):
    reason = "api_quota_exceeded"


class RequestRejected(ApiError):
    reason = "api_request_rejected"


class NotFound(ApiError):
    reason = "api_not_found"


class TransientApiError(ApiError):
    reason = "api_unavailable"


class MalformedResponse(TransientApiError):
    reason = "api_malformed_response"


def api_key_from(credentials: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> str | None:
    env = os.environ if env is None else env
    if env.get("YOUTUBE_API_KEY"):
        return env["YOUTUBE_API_KEY"]
    if credentials and credentials.get("api_key"):
        return str(credentials["api_key"])
    return None


def _error_reasons(payload: Any) -> set[str]:
    try:
        return {str(e.get("reason")) for e in payload["error"].get("errors", [])}
    except (KeyError, TypeError, AttributeError):
        return set()


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


@dataclass
class YouTubeApiClient:
    api_key: str
    base_url: str = DEFAULT_BASE_URL
    timeout_sec: float = 10.0
    max_attempts: int = 5
    backoff_initial_sec: float = 1.0
    backoff_max_sec: float = 60.0
    session: requests.Session = field(default_factory=requests.Session)
    calls: int = 0

    def __repr__(self) -> str:  # never print the key
        return f"YouTubeApiClient(base_url={self.base_url!r}, calls={self.calls})"

    def _get_once(self, endpoint: str, params: dict[str, str]) -> dict[str, Any]:
        url = f"{self.base_url.rstrip('/')}/{endpoint}"
        self.calls += 1
        try:
            resp = self.session.get(
                url, params=params, headers={"X-Goog-Api-Key": self.api_key}, timeout=self.timeout_sec
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TransientApiError(f"{endpoint}: {type(exc).__name__}") from None
        try:
            payload = resp.json()
        except ValueError:
            payload = None
        if resp.status_code == 200:
            if not isinstance(payload, dict) or not isinstance(payload.get("items", []), list):
                raise MalformedResponse(f"{endpoint}: HTTP 200 with a body that is not a list response")
            return payload
        reasons = _error_reasons(payload)
        detail = f"{endpoint}: HTTP {resp.status_code} {sorted(reasons) or ''}".strip()
        if resp.status_code == 403 and reasons & _QUOTA_REASONS:
            raise QuotaExceeded(detail)
        if resp.status_code == 429 or (resp.status_code == 403 and reasons & _RATE_REASONS):
            raise TransientApiError(detail)
        if resp.status_code >= 500:
            raise TransientApiError(detail)
        if resp.status_code == 404:
            raise NotFound(detail)
        raise RequestRejected(detail)

    def get(self, endpoint: str, params: dict[str, str]) -> dict[str, Any]:
        retrying = Retrying(
            retry=retry_if_exception_type(TransientApiError),
            stop=stop_after_attempt(self.max_attempts),
            wait=wait_exponential(multiplier=self.backoff_initial_sec, max=self.backoff_max_sec),
            before_sleep=lambda state: log.warning(
                "YouTube API %s: %s; retry %d of %d",
                endpoint,
                state.outcome.exception() if state.outcome else "?",
                state.attempt_number,
                self.max_attempts - 1,
            ),
            reraise=True,
        )
        try:
            return retrying(self._get_once, endpoint, params)
        except RetryError as exc:  # pragma: no cover - reraise=True re-raises the last error
            raise TransientApiError(str(exc)) from None

    def videos_list(
        self, ids: Iterable[str], part: str = "snippet,contentDetails"
    ) -> Iterator[tuple[list[str], dict[str, dict[str, Any]]]]:
        """Yield (asked ids, {id: item}) per batch of <= 50 ids; raises on fatal errors."""
        for batch in _chunks(list(ids), MAX_IDS_PER_CALL):
            payload = self.get("videos", {"part": part, "id": ",".join(batch), "maxResults": "50"})
            yield batch, {str(item.get("id")): item for item in payload.get("items", [])}

    def channels_list(
        self, ids: Iterable[str], part: str = "statistics"
    ) -> Iterator[tuple[list[str], dict[str, dict[str, Any]]]]:
        for batch in _chunks(list(ids), MAX_IDS_PER_CALL):
            payload = self.get("channels", {"part": part, "id": ",".join(batch), "maxResults": "50"})
            yield batch, {str(item.get("id")): item for item in payload.get("items", [])}


# -- cached index ------------------------------------------------------------------------------
def _num(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def parse_iso8601_duration(text: str | None) -> float | None:
    """'PT21M7S' -> 1267.0 seconds; None when absent or unparsable."""
    if not text or not text.startswith("P"):
        return None
    import re

    m = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?", text)
    if not m:
        return None
    d, h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    return d * 86400 + h * 3600 + mi * 60 + s


def video_record(item: dict[str, Any]) -> dict[str, Any]:
    """The facts kept from a videos.list item: ids and static facts, never raw text."""
    snippet = item.get("snippet") or {}
    details = item.get("contentDetails") or {}
    return {
        "status": "found",
        "channel_id": snippet.get("channelId"),
        "published_at": snippet.get("publishedAt"),
        "category_id": snippet.get("categoryId"),
        "default_language": snippet.get("defaultLanguage") or snippet.get("defaultAudioLanguage"),
        "duration_sec": parse_iso8601_duration(details.get("duration")),
    }


def channel_record(item: dict[str, Any]) -> dict[str, Any]:
    stats = item.get("statistics") or {}
    hidden = bool(stats.get("hiddenSubscriberCount"))
    return {
        "status": "found",
        "subscriber_count": None if hidden else _num(stats.get("subscriberCount")),
        "video_count": _num(stats.get("videoCount")),
        "view_count": _num(stats.get("viewCount")),
    }


class ApiCacheIndex:
    """Append-only JSON Lines index of API answers: `{kind, id, ...record, fetched_at}`.

    One line per answer; a later line for the same (kind, id) wins. Kept locally (it is a
    cache, not an artifact). `forget(video_id)` supports delete requests (SPEC 13).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], dict[str, Any]] = {}
        if self.path.exists():
            with open(self.path, encoding="utf-8") as handle:
                for line_no, line in enumerate(handle, 1):
                    line = line.strip()
                    if not line:
                        continue
                    try:
                        entry = json.loads(line)
                        self._entries[(entry["kind"], entry["id"])] = entry
                    except (ValueError, KeyError):
                        log.warning("API cache %s: skipped unreadable line %d", self.path, line_no)

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        return self._entries.get((kind, key))

    def __contains__(self, item: tuple[str, str]) -> bool:
        return item in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def put_many(self, kind: str, records: dict[str, dict[str, Any]]) -> None:
        if not records:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with self._lock, open(self.path, "a", encoding="utf-8") as handle:
            for key in sorted(records):
                entry = {"kind": kind, "id": key, **records[key], "fetched_at": now}
                self._entries[(kind, key)] = entry
                handle.write(json.dumps(entry, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def forget(self, video_id: str) -> None:
        """Remove every cached answer about a video (rewrites the file atomically)."""
        with self._lock:
            self._entries.pop(("video", video_id), None)
            tmp = self.path.with_suffix(self.path.suffix + ".tmp")
            with open(tmp, "w", encoding="utf-8") as handle:
                for entry in self._entries.values():
                    handle.write(json.dumps(entry, sort_keys=True) + "\n")
            os.replace(tmp, self.path)


@dataclass
class LookupResult:
    videos: dict[str, dict[str, Any]]  # id -> cached record (found / not_found)
    failed: dict[str, str]  # id -> reason for ids that could not be asked this time
    calls: int


def lookup_videos(
    ids: Iterable[str],
    cache: ApiCacheIndex,
    client: YouTubeApiClient | None,
    part: str = "snippet,contentDetails",
) -> LookupResult:
    """Answer every id from the cache, asking the API (50 per call) only for ids never asked."""
    wanted = sorted(set(ids))
    todo = [v for v in wanted if ("video", v) not in cache]
    failed: dict[str, str] = {}
    calls_before = client.calls if client else 0
    if todo and client is None:
        failed.update({v: "no_api_key" for v in todo})
    elif todo:
        asked: set[str] = set()
        try:
            for batch, items in client.videos_list(todo, part=part):
                records = {
                    v: video_record(items[v]) if v in items else {"status": "not_found"} for v in batch
                }
                cache.put_many("video", records)
                asked.update(batch)
        except QuotaExceeded as exc:
            log.warning(
                "YouTube API quota exhausted (%s): %d video(s) left for the next build",
                exc,
                len(todo) - len(asked),
            )
            failed.update({v: exc.reason for v in todo if v not in asked})
        except ApiError as exc:
            log.warning("YouTube API enrichment stopped: %s (%s)", exc.reason, exc)
            failed.update({v: exc.reason for v in todo if v not in asked})
    videos = {v: cache.get("video", v) for v in wanted if ("video", v) in cache}
    return LookupResult(videos, failed, (client.calls if client else 0) - calls_before)


def lookup_channels(
    ids: Iterable[str], cache: ApiCacheIndex, client: YouTubeApiClient | None
) -> dict[str, dict[str, Any]]:
    wanted = sorted(set(ids))
    todo = [c for c in wanted if ("channel", c) not in cache]
    if todo and client is not None:
        try:
            for batch, items in client.channels_list(todo):
                cache.put_many(
                    "channel",
                    {c: channel_record(items[c]) if c in items else {"status": "not_found"} for c in batch},
                )
        except ApiError as exc:
            log.warning("YouTube API channel statistics stopped: %s (%s)", exc.reason, exc)
    return {c: cache.get("channel", c) for c in wanted if ("channel", c) in cache}
