"""Mass-download settings and the classification of yt-dlp failures (offline: loopback servers only)."""

from __future__ import annotations

import http.server
import json
import random
import shutil
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from tests.fixtures.media import VIDEOS
from trendflow.batch.report import status_counts, summary_table
from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.dataprocessor.download import (
    DownloadOptions,
    classify_message,
    download_slot,
    live_status_error,
    parse_rate,
)
from trendflow.dataprocessor.sources import _download_error, resolve_source
from trendflow.worker.retry import RetryPolicy

MESSAGES = json.loads((Path(__file__).parents[1] / "data" / "ytdlp" / "error_messages.json").read_text())


@pytest.mark.parametrize("case", MESSAGES, ids=lambda c: f"{c['reason']}:{c['message'][30:60]}")
def test_recorded_ytdlp_messages_are_classified(case: dict) -> None:
    from yt_dlp.utils import DownloadError, ExtractorError

    assert classify_message(case["message"]) == (ErrorCode(case["error_code"]), case["reason"])
    # the way yt-dlp raises them: DownloadError carrying the extractor's ExtractorError
    cause = ExtractorError(case["message"].split(": ", 2)[-1], expected=True)
    err = _download_error(DownloadError(case["message"], exc_info=(ExtractorError, cause, None)), "URI")
    assert (err.code, err.reason) == (ErrorCode(case["error_code"]), case["reason"])
    assert err.message.startswith(f"URI: {case['reason']}: ")
    assert err.transient == (case["reason"] in ("rate_limited", "bot_check"))


def test_every_reason_is_covered_by_a_recorded_message() -> None:
    reasons = {c["reason"] for c in MESSAGES}
    assert reasons >= {
        "rate_limited",
        "bot_check",
        "private",
        "removed",
        "age_restricted",
        "members_only",
        "geo_blocked",
        "live",
        "upcoming",
    }


def test_unknown_messages_keep_the_old_classification() -> None:
    from yt_dlp.utils import DownloadError, ExtractorError

    assert classify_message("ERROR: something odd happened") is None
    cause = ExtractorError("Unable to extract video data", expected=True)
    err = _download_error(
        DownloadError("ERROR: Unable to extract video data", (ExtractorError, cause, None)), "U"
    )
    assert err.code is ErrorCode.SOURCE_NOT_FOUND and err.reason is None


def test_live_and_upcoming_are_refused_before_downloading() -> None:
    live = live_status_error("U", {"live_status": "is_live"})
    upcoming = live_status_error("U", {"live_status": "is_upcoming"})
    assert live is not None and (live.code, live.reason) == (ErrorCode.SOURCE_UNAVAILABLE, "live")
    assert upcoming is not None and upcoming.reason == "upcoming" and not upcoming.transient
    assert live_status_error("U", {"live_status": "was_live"}) is None
    assert live_status_error("U", {"is_live": True}) is not None


# -- options -----------------------------------------------------------------------------------
def test_default_format_is_720p_plus_audio_and_never_above_1080p(tmp_path) -> None:
    options = DownloadOptions()
    assert options.format_selector() == "bv*[height<=?720]+ba/b[height<=?720]"
    assert DownloadOptions(max_height=1080).format_selector() == "bv*[height<=?1080]+ba/b[height<=?1080]"
    custom = DownloadOptions(format="bv*[vcodec^=avc1]+ba/b", max_height=480).format_selector()
    assert custom == "bv*[vcodec^=avc1][height<=?480]+ba/b[height<=?480]"
    with pytest.raises(TrendFlowError, match="max_height") as err:
        DownloadOptions.from_env({"TRENDFLOW_YTDLP_MAX_HEIGHT": "1440"})
    assert err.value.code is ErrorCode.CONFIG_ERROR


def test_options_from_environment(tmp_path) -> None:
    cookies = tmp_path / "cookies.txt"
    cookies.write_text("# Netscape HTTP Cookie File\n")
    env = {
        "TRENDFLOW_YTDLP_COOKIES": str(cookies),
        "TRENDFLOW_YTDLP_PROXY": "http://user:pw@proxy.example:3128",
        "TRENDFLOW_YTDLP_RATE_LIMIT": "2M",
        "TRENDFLOW_YTDLP_SLEEP_S": "3",
        "TRENDFLOW_YTDLP_MAX_SLEEP_S": "9",
        "TRENDFLOW_YTDLP_MAX_CONCURRENT": "3",
    }
    options = DownloadOptions.from_env(env)
    params = options.ytdlp_params()
    assert params["cookiefile"] == str(cookies) and params["ratelimit"] == 2 * 1024**2
    assert (params["sleep_interval"], params["max_sleep_interval"]) == (3.0, 9.0)
    assert options.max_concurrent == 3
    assert "pw@" not in repr(options)  # the proxy may carry a password
    assert parse_rate("500K") == 500 * 1024
    with pytest.raises(TrendFlowError, match="cookies file not found"):
        DownloadOptions(cookies_file=tmp_path / "nope.txt").ytdlp_params()


def test_download_slots_cap_concurrency(tmp_path) -> None:
    options = DownloadOptions(max_concurrent=1, lock_dir=tmp_path)
    order: list[str] = []
    with download_slot(options) as slot:
        assert slot == 0

        def second() -> None:
            with download_slot(options, poll_s=0.05):
                order.append("second")

        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.3)
        order.append("first-done")
    thread.join(5)
    assert order == ["first-done", "second"]


def test_rate_limit_reasons_get_a_long_backoff() -> None:
    policy = RetryPolicy(base_s=5, max_s=300, long_s=900)
    rng = random.Random(1)
    assert 450 <= policy.delay(0, rng, reason="rate_limited") <= 900
    assert 900 <= policy.delay(1, rng, reason="bot_check") <= 1800
    assert policy.delay(0, rng, reason=None) <= 5


def test_reasons_reach_the_batch_summary() -> None:
    rows = [
        {"status": "error", "error_code": "source_unavailable", "error_reason": "private", "video_id": "a"},
        {"status": "error", "error_code": "source_unavailable", "error_reason": "removed", "video_id": "b"},
        {"status": "error", "error_code": "download_failed", "error_reason": None, "video_id": "c"},
        {"status": "success", "error_code": None, "error_reason": None, "video_id": "d"},
    ]
    for row in rows:
        row.update(platform_id="youtube", source="x", retry_count=0, run_id=None, duration_sec=None)
    counts = status_counts(rows)
    assert counts["error:source_unavailable"] == 2
    assert (
        counts["reason:source_unavailable:private"] == 1 and counts["reason:source_unavailable:removed"] == 1
    )
    cells = [str(c) for col in summary_table(rows).columns for c in col._cells]
    assert "source_unavailable (private)" in cells


# -- loopback servers ----------------------------------------------------------------------------
class _Recorder(http.server.SimpleHTTPRequestHandler):
    """Serves files; `/status/<code>` answers that HTTP status; records request headers."""

    seen: ClassVar[list[dict[str, str]]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        type(self).seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
        if self.path.startswith("/status/"):
            code = int(self.path.split("/")[2])
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def do_HEAD(self) -> None:
        self.do_GET()


class _Proxy(http.server.BaseHTTPRequestHandler):
    """A plain HTTP forward proxy: fetches the absolute URL it is asked for; records its headers."""

    used: ClassVar[list[tuple[str, str]]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        type(self).used.append((self.path, self.headers.get("Cookie", "")))
        with urllib.request.urlopen(self.path, timeout=10) as upstream:
            body = upstream.read()
            self.send_response(upstream.status)
            self.send_header("Content-Type", upstream.headers.get("Content-Type", "video/mp4"))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)


def _serve(handler) -> tuple[http.server.ThreadingHTTPServer, str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def recorder(tmp_path) -> Iterator[str]:
    root = tmp_path / "www"
    root.mkdir()
    shutil.copy(VIDEOS / "bikes.mp4", root / "bikes.mp4")
    _Recorder.seen = []
    server, url = _serve(lambda *a, **k: _Recorder(*a, directory=str(root), **k))
    yield url
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("status", "code", "reason"),
    [
        (429, ErrorCode.DOWNLOAD_FAILED, "rate_limited"),
        (451, ErrorCode.SOURCE_UNAVAILABLE, "geo_blocked"),
        (410, ErrorCode.SOURCE_UNAVAILABLE, "removed"),
    ],
)
def test_http_statuses_are_classified(recorder, tmp_path, status, code, reason) -> None:
    options = DownloadOptions(lock_dir=tmp_path / "slots")
    with pytest.raises(TrendFlowError) as err:
        resolve_source(f"{recorder}/status/{status}", tmp_path / "dl", timeout_sec=30, download=options)
    assert (err.value.code, err.value.reason) == (code, reason)


def test_cookies_and_proxy_are_used(recorder, tmp_path) -> None:
    cookies = tmp_path / "cookies.txt"
    cookies.write_text("# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\tabc123\n")
    _Proxy.used = []
    proxy, proxy_url = _serve(_Proxy)
    try:
        options = DownloadOptions(
            cookies_file=cookies, proxy=proxy_url, rate_limit="50M", lock_dir=tmp_path / "slots"
        )
        source = resolve_source(f"{recorder}/bikes.mp4", tmp_path / "dl", timeout_sec=60, download=options)
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert source.path.stat().st_size == (VIDEOS / "bikes.mp4").stat().st_size
    # every request went through the proxy, with the cookie of the cookies file
    assert _Proxy.used and all(u.startswith(recorder) for u, _ in _Proxy.used)
    assert any(u.endswith("/bikes.mp4") and "session=abc123" in c for u, c in _Proxy.used)


def test_a_download_refused_before_the_run_starts_reaches_level1_and_stats(recorder, tmp_path) -> None:
    """A queued YouTube-like job whose source answers 451: the run never starts, yet the store's
    Level 1 state, `trendflow stats` and the runs_index row all carry its code and reason."""
    from trendflow.batch.jobs import plan_jobs
    from trendflow.batch.report import index_row
    from trendflow.batch.video_list import VideoEntry
    from trendflow.dataprocessor.state.global_state import GlobalStateManager
    from trendflow.dataprocessor.stats import collect_stats, render_table
    from trendflow.storage.store import ResultStore
    from trendflow.worker.config import WorkerSettings
    from trendflow.worker.execution import execute_job

    entry = VideoEntry(source=f"{recorder}/status/451", platform_id="youtube", video_id="geo12345678")
    (job,) = plan_jobs([entry], "signals")
    settings = WorkerSettings(store_root=str(tmp_path / "store"), scratch_root=str(tmp_path / "scratch"))
    result = execute_job(job.payload, settings)
    assert (result.error_code, result.error_reason) == (ErrorCode.SOURCE_UNAVAILABLE, "geo_blocked")

    store = ResultStore(settings.store_root)
    (level1,) = GlobalStateManager(store).read().runs.values()  # merged view and checkpoint alike
    assert (level1.video_id, level1.run_id) == ("geo12345678", job.payload.run_id)
    assert (level1.status, level1.error_code, level1.error_reason) == (
        "error",
        "source_unavailable",
        "geo_blocked",
    )
    assert level1.attempt == 0 and GlobalStateManager(store).checkpoint().counts == {"error": 1}
    report = collect_stats(store)
    assert report.runs_by_status == {"error": 1} and report.runs_rejected == 1
    assert report.run_errors == {"source_unavailable:geo_blocked": 1} and report.runs_unreadable == 0
    assert "source_unavailable:geo_blocked 1" in str(render_table(report).title)
    row = index_row(job, result)
    assert (row["status"], row["error_code"], row["error_reason"]) == (
        "error",
        "source_unavailable",
        "geo_blocked",
    )
