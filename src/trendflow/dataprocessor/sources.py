"""Where a video comes from: a local file (with an optional metadata sidecar) or a URL (yt-dlp).

`resolve_source()` turns what the user gave into a local file to analyse plus what is known
about the video (`SourceInfo`: title, tags, channel, publish time...). Raw text stays in memory:
the orchestrator never writes it to NPZ (SPEC 13). Errors map onto the taxonomy: a missing file
or a 404 is `source_not_found` (permanent), a network failure or a stalled server is
`download_failed` (transient: the queue retries it), a bad sidecar is `invalid_request`. What the
platform refuses (private, removed, age-restricted, members-only, geo-blocked, live, upcoming) is
`source_unavailable` with a `reason`; rate limits and bot checks are `download_failed` with a reason
that earns a long backoff (`trendflow.dataprocessor.download`).
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.identity import VIDEO_ID_PATTERN, validate_platform_id, validate_video_id
from trendflow.dataprocessor.download import (
    DownloadOptions,
    download_slot,
    live_status_error,
    unavailable_error,
)

MAX_SIDECAR_BYTES = 5 * 1024 * 1024
_SECRET_PARAM = re.compile(
    r"(token|sig|signature|key|auth|pass|secret|session|credential|policy|expires|^x-amz-|^x-goog-)", re.I
)
_VIDEO_ID_RE = re.compile(VIDEO_ID_PATTERN)


class SourceInfo(BaseModel):
    """What is known about the video besides its pixels. Raw text: memory only, never NPZ."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = None
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    published_at: datetime | None = Field(None, description="UTC; naive input is taken as UTC.")
    channel_id: str | None = None
    channel_title: str | None = None
    category: str | None = None
    duration_sec: float | None = Field(None, ge=0)
    webpage_url: str | None = None
    extractor: str | None = None
    language: str | None = None

    @field_validator("published_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class SourceSidecar(SourceInfo):
    """A local file's metadata JSON. `video_id`/`platform_id` attribute a local copy to its
    platform video (e.g. a downloaded YouTube video), so snapshots join on the real id."""

    video_id: str | None = None
    platform_id: str | None = None


class ResolvedSource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: Path = Field(description="The local file to analyse.")
    kind: Literal["local", "url"]
    uri: str = Field(description="What the user gave; URLs without credentials or secret query values.")
    platform_id: str
    video_id: str | None = Field(
        None, description="The platform's id when known; None -> the orchestrator uses the content hash."
    )
    info: SourceInfo
    downloaded: bool = False


def is_url(source: str) -> bool:
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", source))


def redact_url(url: str) -> str:
    """Drop user:password@ and the values of query parameters that look like secrets."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    query = [
        (k, "REDACTED" if _SECRET_PARAM.search(k) else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query), ""))


def _published_at(info: dict[str, Any]) -> datetime | None:
    """yt-dlp's `release_timestamp`/`timestamp` (UNIX seconds) or `upload_date` (YYYYMMDD), UTC."""
    for key in ("release_timestamp", "timestamp"):
        if isinstance(info.get(key), int | float):
            return datetime.fromtimestamp(info[key], UTC)
    raw = info.get("release_date") or info.get("upload_date")
    if isinstance(raw, str) and re.fullmatch(r"\d{8}", raw):
        return datetime.strptime(raw, "%Y%m%d").replace(tzinfo=UTC)
    return None


def _platform_of(info: dict[str, Any]) -> str:
    key = str(info.get("extractor_key") or info.get("extractor") or "generic").lower()
    if key.startswith("youtube"):
        return "youtube"
    if key == "generic" or not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", key):
        return "web"
    return key


def ytdlp_identity(info: dict[str, Any]) -> tuple[str, str | None]:
    """(platform_id, video_id). Generic pages get no id (the URL's file name is not a stable id),
    nor do ids that would be unsafe in a path: the orchestrator then uses the content hash."""
    platform = _platform_of(info)
    raw_id = str(info.get("id") or "")
    video_id = raw_id if platform != "web" and _VIDEO_ID_RE.match(raw_id) else None
    return platform, video_id


def info_from_ytdlp(info: dict[str, Any]) -> SourceInfo:
    """Map a yt-dlp info dict (documented fields of `--dump-json`) onto SourceInfo."""
    generic = _platform_of(info) == "web"
    categories = info.get("categories") or []
    tags = [str(t) for t in info.get("tags") or [] if t]
    duration = info.get("duration")
    return SourceInfo(
        title=info.get("title"),
        description=info.get("description"),
        tags=tags,
        # The generic extractor reports the HTTP Last-Modified header: not a publication time.
        published_at=None if generic else _published_at(info),
        channel_id=info.get("channel_id"),
        channel_title=info.get("channel") or info.get("uploader"),
        category=str(categories[0]) if categories else None,
        duration_sec=float(duration) if isinstance(duration, int | float) and duration >= 0 else None,
        webpage_url=redact_url(info["webpage_url"]) if info.get("webpage_url") else None,
        extractor=info.get("extractor_key") or info.get("extractor"),
        language=info.get("language"),
    )


def _read_sidecar(metadata_file: Path) -> tuple[SourceInfo, str, str | None]:
    """(info, platform_id, video_id) from a sidecar: our SourceSidecar JSON, or a yt-dlp info JSON
    (`--write-info-json`) next to a downloaded file."""

    def bad(why: str) -> TrendFlowError:
        return TrendFlowError(ErrorCode.INVALID_REQUEST, f"metadata sidecar {metadata_file}: {why}")

    if not metadata_file.is_file():
        raise bad("no such file")
    if metadata_file.stat().st_size > MAX_SIDECAR_BYTES:
        raise bad(f"larger than {MAX_SIDECAR_BYTES} bytes")
    try:
        raw = json.loads(metadata_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad(f"not valid UTF-8 JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise bad("must be a JSON object")
    if "extractor_key" in raw or "extractor" in raw:
        platform_id, video_id = ytdlp_identity(raw)
        return info_from_ytdlp(raw), platform_id, video_id
    try:
        sidecar = SourceSidecar.model_validate(raw)
    except ValidationError as exc:
        raise bad(f"invalid fields: {exc.errors(include_url=False)}") from exc
    video_id = validate_video_id(sidecar.video_id) if sidecar.video_id is not None else None
    platform_id = validate_platform_id(sidecar.platform_id) if sidecar.platform_id else "local"
    info = SourceInfo.model_validate(sidecar.model_dump(exclude={"video_id", "platform_id"}))
    return info, platform_id, video_id


def _resolve_local(source: str, metadata_file: Path | None) -> ResolvedSource:
    path = Path(source).expanduser()
    if not path.is_file():
        raise TrendFlowError(ErrorCode.SOURCE_NOT_FOUND, f"no such video file: {source}")
    info, platform_id, video_id = (
        _read_sidecar(Path(metadata_file)) if metadata_file is not None else (SourceInfo(), "local", None)
    )
    return ResolvedSource(
        path=path.resolve(),
        kind="local",
        uri=str(path),
        platform_id=platform_id,
        video_id=video_id,
        info=info,
        downloaded=False,
    )


class _Deadline(Exception):
    """Raised from yt-dlp's progress hook when the whole download runs past its budget."""


class _QuietLogger:
    """yt-dlp prints to stderr unless given a logger; keep its messages for error reports."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def debug(self, msg: str) -> None:
        pass

    def info(self, msg: str) -> None:
        pass

    def warning(self, msg: str) -> None:
        self.messages.append(msg)

    def error(self, msg: str) -> None:
        self.messages.append(msg)


def _download_error(exc: BaseException, uri: str) -> TrendFlowError:
    """Classify a yt-dlp failure: gone/unsupported -> permanent, network -> transient."""
    from yt_dlp.networking.exceptions import HTTPError, TransportError
    from yt_dlp.utils import ExtractorError, UnsupportedError

    chain: list[BaseException] = []
    node: BaseException | None = exc
    while node is not None and node not in chain and len(chain) < 8:
        chain.append(node)
        exc_info = getattr(node, "exc_info", None)
        node = (exc_info[1] if exc_info else None) or getattr(node, "cause", None) or node.__cause__
    message = str(exc).removeprefix("ERROR: ")
    for item in chain:
        if isinstance(item, _Deadline):
            return TrendFlowError(ErrorCode.DOWNLOAD_FAILED, f"download of {uri} ran past its time limit")
        if isinstance(item, HTTPError):
            if item.status == 429:
                return TrendFlowError(
                    ErrorCode.DOWNLOAD_FAILED, f"{uri}: HTTP 429", status=429, reason="rate_limited"
                )
            if item.status == 451:
                return TrendFlowError(
                    ErrorCode.SOURCE_UNAVAILABLE, f"{uri}: HTTP 451", status=451, reason="geo_blocked"
                )
            if item.status == 410:
                return TrendFlowError(
                    ErrorCode.SOURCE_UNAVAILABLE, f"{uri}: HTTP 410", status=410, reason="removed"
                )
            if item.status in (404, 401):
                return TrendFlowError(
                    ErrorCode.SOURCE_NOT_FOUND, f"{uri}: HTTP {item.status}", status=item.status
                )
            return TrendFlowError(ErrorCode.DOWNLOAD_FAILED, f"{uri}: HTTP {item.status}", status=item.status)
        if isinstance(item, TransportError | TimeoutError | ConnectionError):
            return TrendFlowError(ErrorCode.DOWNLOAD_FAILED, f"{uri}: network error: {message}")
        if isinstance(item, UnsupportedError):
            return TrendFlowError(ErrorCode.SOURCE_NOT_FOUND, f"{uri}: no video found at this URL")
    # The site answered and said no (private, removed, age-restricted, ...) or asks us to slow down.
    classified = unavailable_error(uri, message)
    if classified is not None:
        return classified
    for item in chain:
        if isinstance(item, ExtractorError) and item.expected:
            return TrendFlowError(ErrorCode.SOURCE_NOT_FOUND, f"{uri}: {message}")
    return TrendFlowError(ErrorCode.DOWNLOAD_FAILED, f"{uri}: {message}")


def _resolve_url(
    source: str,
    scratch_dir: Path,
    timeout_sec: float,
    max_duration_sec: float | None,
    download: DownloadOptions | None = None,
) -> ResolvedSource:
    import yt_dlp

    uri = redact_url(source)
    scheme = urlsplit(source).scheme.lower()
    if scheme not in ("http", "https"):
        raise TrendFlowError(
            ErrorCode.INVALID_REQUEST, f"unsupported URL scheme {scheme!r}: use http(s) or a path"
        )
    scratch_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_sec

    def on_progress(_: dict[str, Any]) -> None:
        if time.monotonic() > deadline:
            raise _Deadline()

    logger = _QuietLogger()
    download = download or DownloadOptions.from_env()
    options = {
        **download.ytdlp_params(),
        "outtmpl": {"default": str(scratch_dir / "%(id).64B.%(ext)s")},
        "restrictfilenames": True,
        "noplaylist": True,
        "socket_timeout": min(download.socket_timeout_s, timeout_sec),
        "retries": 2,
        "fragment_retries": 2,
        "extractor_retries": 1,
        "cachedir": False,
        "noprogress": True,
        "quiet": True,
        "no_warnings": True,
        "logger": logger,
        "progress_hooks": [on_progress],
        "overwrites": True,
    }
    try:
        with download_slot(download), yt_dlp.YoutubeDL(options) as ydl:
            info = ydl.extract_info(source, download=False)
            if info is None:
                raise TrendFlowError(ErrorCode.SOURCE_NOT_FOUND, f"{uri}: nothing to download")
            if info.get("_type") in ("playlist", "multi_video"):
                raise TrendFlowError(ErrorCode.INVALID_REQUEST, f"{uri} is a playlist; give one video's URL")
            live = live_status_error(uri, info)
            if live is not None:
                raise live
            duration = info.get("duration")
            if (
                max_duration_sec is not None
                and isinstance(duration, int | float)
                and duration > max_duration_sec
            ):
                raise TrendFlowError(
                    ErrorCode.VIDEO_TOO_LONG,
                    f"{uri} lasts {duration:.0f}s; the maximum is {max_duration_sec:g}s",
                )
            info = ydl.process_ie_result(info, download=True)
    except TrendFlowError:
        raise
    except Exception as exc:  # yt-dlp raises many types; all are classified, none escape untyped
        raise _download_error(exc, uri) from exc
    downloads = info.get("requested_downloads") or []
    path = Path(downloads[0]["filepath"]) if downloads and downloads[0].get("filepath") else None
    if path is None or not path.is_file():
        raise TrendFlowError(ErrorCode.DOWNLOAD_FAILED, f"{uri}: yt-dlp reported no downloaded file")
    platform_id, video_id = ytdlp_identity(info)
    return ResolvedSource(
        path=path,
        kind="url",
        uri=uri,
        platform_id=platform_id,
        video_id=video_id,
        info=info_from_ytdlp(info),
        downloaded=True,
    )


def resolve_source(
    source: str,
    scratch_dir: Path,
    metadata_file: Path | None = None,
    timeout_sec: float = 600,
    max_duration_sec: float | None = None,
    download: DownloadOptions | None = None,
) -> ResolvedSource:
    """A local path or an http(s) URL -> a local file plus its metadata.

    URLs are downloaded into `scratch_dir` (the caller deletes it after the run). With
    `max_duration_sec`, a URL whose reported duration is longer fails as `video_too_long`
    before anything is downloaded.
    """
    if not isinstance(source, str) or not source.strip():
        raise TrendFlowError(ErrorCode.INVALID_REQUEST, "the video source is empty")
    source = source.strip()
    if is_url(source):
        if metadata_file is not None:
            raise TrendFlowError(ErrorCode.INVALID_REQUEST, "a metadata sidecar is for local files only")
        return _resolve_url(source, Path(scratch_dir), timeout_sec, max_duration_sec, download)
    return _resolve_local(source, metadata_file)
