"""Mass download settings for yt-dlp and the classification of its failures.

`DownloadOptions` is what a worker uses for every URL: a format cap (default: the best video of at
most 720p plus the best audio; never above 1080p), a cookies file, a proxy, a rate limit, a sleep
before each download and a cap on concurrent downloads per worker host. Workers read it from
`TRENDFLOW_YTDLP_*` variables (all workers of a deployment share them), so it never travels in a
job payload; the proxy (which may hold a password) and the cookies are never logged.

`classify_message` maps yt-dlp's error text onto the taxonomy with a `reason`:

- transient, with a long backoff: `rate_limited` (HTTP 429, YouTube's session rate limit) and
  `bot_check` ("Sign in to confirm you're not a bot");
- permanent `source_unavailable`: `private`, `removed`, `age_restricted`, `members_only`,
  `paid`, `geo_blocked`, `live`, `upcoming`, `drm`, `unavailable`.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trendflow.contracts.errors import ErrorCode, TrendFlowError

logger = logging.getLogger(__name__)

MAX_HEIGHT_CAP = 1080  # SPEC 4: the product analyses at most 1080p
# Reasons whose retry waits `long_backoff_s` instead of the normal exponential backoff.
LONG_BACKOFF_REASONS = frozenset({"rate_limited", "bot_check"})

ENV_FIELDS: dict[str, str] = {
    "TRENDFLOW_YTDLP_MAX_HEIGHT": "max_height",
    "TRENDFLOW_YTDLP_FORMAT": "format",
    "TRENDFLOW_YTDLP_COOKIES": "cookies_file",
    "TRENDFLOW_YTDLP_PROXY": "proxy",
    "TRENDFLOW_YTDLP_RATE_LIMIT": "rate_limit",
    "TRENDFLOW_YTDLP_SLEEP_S": "sleep_s",
    "TRENDFLOW_YTDLP_MAX_SLEEP_S": "max_sleep_s",
    "TRENDFLOW_YTDLP_MAX_CONCURRENT": "max_concurrent",
    "TRENDFLOW_YTDLP_SOCKET_TIMEOUT_S": "socket_timeout_s",
    "TRENDFLOW_YTDLP_LONG_BACKOFF_S": "long_backoff_s",
    "TRENDFLOW_YTDLP_LOCK_DIR": "lock_dir",
}


class DownloadOptions(BaseModel):
    """yt-dlp settings of one worker host (`DownloadOptions.from_env()`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_height: int = Field(720, ge=144, le=MAX_HEIGHT_CAP, description="Format cap in pixels.")
    format: str | None = Field(
        None, description="A yt-dlp format selector replacing the default; still capped at max_height."
    )
    cookies_file: Path | None = Field(None, description="Netscape cookies.txt (for age/bot checks).")
    proxy: str | None = Field(None, repr=False, description="http(s)/socks proxy URL; never logged.")
    rate_limit: str | None = Field(
        None, pattern=r"^\d+(\.\d+)?[KMG]?$", description="Bytes per second, e.g. 2M; null: none."
    )
    sleep_s: float = Field(0.0, ge=0, description="Sleep before each download (yt-dlp sleep_interval).")
    max_sleep_s: float | None = Field(None, ge=0, description="Random sleep in [sleep_s, max_sleep_s].")
    max_concurrent: int = Field(2, ge=1, le=64, description="Concurrent downloads per worker host.")
    socket_timeout_s: float = Field(30.0, gt=0)
    long_backoff_s: float = Field(900.0, gt=0, description="Retry delay after rate_limited / bot_check.")
    lock_dir: Path | None = Field(None, description="Where the concurrency slots live (default: tmp).")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> DownloadOptions:
        env = os.environ if env is None else env
        values: dict[str, Any] = {f: env[n] for n, f in ENV_FIELDS.items() if env.get(n)}
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            fields = ", ".join(".".join(map(str, e["loc"])) + f": {e['msg']}" for e in exc.errors())
            raise TrendFlowError(
                ErrorCode.CONFIG_ERROR, f"invalid TRENDFLOW_YTDLP_* settings: {fields}"
            ) from exc

    def format_selector(self) -> str:
        """Best video <= max_height + best audio, else the best single file <= max_height.

        `<=?` lets formats of unknown height (direct file URLs) through; a user's own `format` is
        ANDed with the cap by wrapping every alternative in a height filter."""
        cap = f"[height<=?{self.max_height}]"
        if self.format:
            return "/".join(_capped(alternative, cap) for alternative in self.format.split("/"))
        return f"bv*{cap}+ba/b{cap}"

    def ytdlp_params(self) -> dict[str, Any]:
        """The YoutubeDL options these settings stand for."""
        params: dict[str, Any] = {
            "format": self.format_selector(),
            "merge_output_format": "mp4",
            "socket_timeout": self.socket_timeout_s,
        }
        if self.cookies_file is not None:
            if not self.cookies_file.is_file():
                raise TrendFlowError(ErrorCode.CONFIG_ERROR, f"cookies file not found: {self.cookies_file}")
            params["cookiefile"] = str(self.cookies_file)
        if self.proxy:
            params["proxy"] = self.proxy
        if self.rate_limit:
            params["ratelimit"] = parse_rate(self.rate_limit)
        if self.sleep_s > 0:
            params["sleep_interval"] = self.sleep_s
            if self.max_sleep_s is not None and self.max_sleep_s > self.sleep_s:
                params["max_sleep_interval"] = self.max_sleep_s
        return params


def _capped(alternative: str, cap: str) -> str:
    """Add the height cap to each format of a selector alternative (`bv*+ba` -> `bv*[..]+ba`)."""
    parts = alternative.split("+")
    return "+".join(p if p.startswith(("ba", "bestaudio", "wa", "worstaudio")) else p + cap for p in parts)


def parse_rate(text: str) -> int:
    """`2M` -> 2 * 1024**2 bytes per second (yt-dlp's --limit-rate units)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMG]?)", text.strip())
    if not match:
        raise TrendFlowError(ErrorCode.CONFIG_ERROR, f"invalid rate limit {text!r}: use e.g. 500K or 2M")
    return int(float(match.group(1)) * 1024 ** " KMG".index(match.group(2) or " "))


@contextlib.contextmanager
def download_slot(options: DownloadOptions, poll_s: float = 0.2) -> Iterator[int]:
    """Hold one of `max_concurrent` slots of this host (flock on a slot file) while downloading.

    Every process of every worker on the host shares the slot files, so the cap holds across
    Celery pool processes; a process that dies releases its lock with its file descriptor."""
    root = options.lock_dir or Path(os.environ.get("TMPDIR", "/tmp")) / "trendflow-download-slots"
    root.mkdir(parents=True, exist_ok=True)
    waited = False
    while True:
        for slot in range(options.max_concurrent):
            handle = open(root / f"slot-{slot}.lock", "a+")  # noqa: SIM115 - held while downloading
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                continue
            try:
                yield slot
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
                handle.close()
            return
        if not waited:
            logger.info("all %d download slots busy; waiting", options.max_concurrent)
            waited = True
        time.sleep(poll_s)


# -- classification of yt-dlp messages -------------------------------------------------------------
# (reason, code, pattern). First match wins: specific texts before the generic "Video unavailable".
_RULES: list[tuple[str, ErrorCode, re.Pattern[str]]] = [
    (reason, code, re.compile(pattern, re.I))
    for reason, code, pattern in [
        ("bot_check", ErrorCode.DOWNLOAD_FAILED, r"confirm (you.?re|that you are) not a bot|captcha"),
        (
            "rate_limited",
            ErrorCode.DOWNLOAD_FAILED,
            r"HTTP Error 429|Too Many Requests|rate-limited|rate limit|try again later",
        ),
        (
            "age_restricted",
            ErrorCode.SOURCE_UNAVAILABLE,
            r"confirm your age|age-restricted|inappropriate for some",
        ),
        ("members_only", ErrorCode.SOURCE_UNAVAILABLE, r"members-only|channel's members|members only"),
        ("paid", ErrorCode.SOURCE_UNAVAILABLE, r"requires payment|rental|purchase this video"),
        ("private", ErrorCode.SOURCE_UNAVAILABLE, r"private video|this video is private"),
        (
            "geo_blocked",
            ErrorCode.SOURCE_UNAVAILABLE,
            r"not (made this video )?available in your country|geo.?restrict|HTTP Error 451",
        ),
        (
            "upcoming",
            ErrorCode.SOURCE_UNAVAILABLE,
            r"live event will begin|premieres? in|is_upcoming|upcoming",
        ),
        ("live", ErrorCode.SOURCE_UNAVAILABLE, r"is live now|live stream|livestream|is_live"),
        ("drm", ErrorCode.SOURCE_UNAVAILABLE, r"DRM protected"),
        (
            "removed",
            ErrorCode.SOURCE_UNAVAILABLE,
            r"removed|terminated|no longer available|copyright claim|HTTP Error 410",
        ),
        ("unavailable", ErrorCode.SOURCE_UNAVAILABLE, r"video unavailable|this video is unavailable"),
    ]
]


def classify_message(message: str) -> tuple[ErrorCode, str] | None:
    """(code, reason) for a recognised yt-dlp error message, else None."""
    for reason, code, pattern in _RULES:
        if pattern.search(message):
            return code, reason
    return None


def unavailable_error(uri: str, message: str) -> TrendFlowError | None:
    """A typed error with `reason` for a recognised message (used by sources._download_error)."""
    classified = classify_message(message)
    if classified is None:
        return None
    code, reason = classified
    return TrendFlowError(code, f"{uri}: {reason}: {_short(message)}", reason=reason)


def live_status_error(uri: str, info: dict[str, Any]) -> TrendFlowError | None:
    """Live streams and scheduled premieres cannot be analysed (yet): permanent, with a reason."""
    status = info.get("live_status") or ("is_live" if info.get("is_live") else None)
    if status == "is_live":
        return TrendFlowError(
            ErrorCode.SOURCE_UNAVAILABLE, f"{uri}: live: the video is a live stream", reason="live"
        )
    if status == "is_upcoming":
        return TrendFlowError(
            ErrorCode.SOURCE_UNAVAILABLE,
            f"{uri}: upcoming: the live event or premiere has not started",
            reason="upcoming",
        )
    return None


def _short(message: str, limit: int = 300) -> str:
    message = re.sub(r"\s+", " ", message.removeprefix("ERROR: ")).strip()
    return message if len(message) <= limit else message[: limit - 3] + "..."
