"""Sources: local files with sidecars, and URLs through yt-dlp against real loopback servers."""

from __future__ import annotations

import http.server
import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.fixtures.media import VIDEOS, make_identity
from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.identity import validate_video_id
from trendflow.dataprocessor.segmenter import segment
from trendflow.dataprocessor.sources import info_from_ytdlp, redact_url, resolve_source, ytdlp_identity

YTDLP_INFO = Path(__file__).resolve().parents[1] / "data" / "ytdlp" / "youtube_info.json"


def expect_error(code: ErrorCode, *args, **kwargs) -> TrendFlowError:
    with pytest.raises(TrendFlowError) as err:
        resolve_source(*args, **kwargs)
    assert err.value.code is code, err.value
    return err.value


# -- local files --------------------------------------------------------------------------------


def test_local_file_without_sidecar(tmp_path) -> None:
    source = resolve_source(str(VIDEOS / "bikes.mp4"), tmp_path)
    assert source.kind == "local" and source.platform_id == "local" and source.video_id is None
    assert source.path == (VIDEOS / "bikes.mp4").resolve() and not source.downloaded
    assert source.info.title is None and source.info.tags == []


def test_missing_local_file_is_source_not_found(tmp_path) -> None:
    expect_error(ErrorCode.SOURCE_NOT_FOUND, str(tmp_path / "missing.mp4"), tmp_path)
    expect_error(ErrorCode.SOURCE_NOT_FOUND, str(tmp_path), tmp_path)  # a folder is not a video


def test_empty_source_is_invalid_request(tmp_path) -> None:
    expect_error(ErrorCode.INVALID_REQUEST, "  ", tmp_path)


def _sidecar(tmp_path: Path, content: object) -> Path:
    path = tmp_path / "meta.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


def test_sidecar_fills_source_info(tmp_path) -> None:
    sidecar = _sidecar(
        tmp_path,
        {
            "title": "Кормушка",
            "description": "DIY",
            "tags": ["diy", "birds"],
            "published_at": "2024-06-21T13:40:00+03:00",
            "channel_id": "UC123",
        },
    )
    source = resolve_source(str(VIDEOS / "bikes.mp4"), tmp_path, metadata_file=sidecar)
    info = source.info
    assert (info.title, info.description, info.tags, info.channel_id) == (
        "Кормушка",
        "DIY",
        ["diy", "birds"],
        "UC123",
    )
    assert info.published_at == datetime(2024, 6, 21, 10, 40, tzinfo=UTC)
    assert source.platform_id == "local" and source.video_id is None


def test_naive_published_at_is_taken_as_utc(tmp_path) -> None:
    sidecar = _sidecar(tmp_path, {"published_at": "2024-06-21T10:40:00"})
    info = resolve_source(str(VIDEOS / "bikes.mp4"), tmp_path, metadata_file=sidecar).info
    assert info.published_at == datetime(2024, 6, 21, 10, 40, tzinfo=UTC)


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[1, 2]",
        {"title": "x", "unexpected": 1},
        {"tags": "not-a-list"},
        {"published_at": "yesterday"},
        {"video_id": "../../etc"},
        {"video_id": "ok", "platform_id": "You Tube"},
    ],
    ids=["bad-json", "not-object", "extra-field", "tags-type", "bad-date", "path-id", "bad-platform"],
)
def test_bad_sidecar_is_invalid_request(tmp_path, content) -> None:
    expect_error(
        ErrorCode.INVALID_REQUEST,
        str(VIDEOS / "bikes.mp4"),
        tmp_path,
        metadata_file=_sidecar(tmp_path, content),
    )


def test_missing_sidecar_is_invalid_request(tmp_path) -> None:
    expect_error(
        ErrorCode.INVALID_REQUEST, str(VIDEOS / "bikes.mp4"), tmp_path, metadata_file=tmp_path / "none.json"
    )


def test_path_like_video_id_is_rejected() -> None:
    with pytest.raises(TrendFlowError) as err:
        validate_video_id("../../etc")
    assert err.value.code is ErrorCode.INVALID_REQUEST


def test_sidecar_can_attribute_a_local_copy_to_its_platform_id(tmp_path) -> None:
    sidecar = _sidecar(tmp_path, {"video_id": "Tf7xQ2kLm9A", "platform_id": "youtube", "title": "t"})
    source = resolve_source(str(VIDEOS / "bikes.mp4"), tmp_path, metadata_file=sidecar)
    assert (source.platform_id, source.video_id, source.kind) == ("youtube", "Tf7xQ2kLm9A", "local")


# -- yt-dlp info mapping ------------------------------------------------------------------------


def test_ytdlp_info_json_maps_onto_source_info() -> None:
    info = json.loads(YTDLP_INFO.read_text(encoding="utf-8"))
    mapped = info_from_ytdlp(info)
    assert mapped.title.startswith("Сборка кормушки") and "plywood" in mapped.description
    assert mapped.tags == ["кормушка", "diy", "bird feeder", "woodworking", "фанера"]
    assert mapped.published_at == datetime(2024, 6, 21, 10, 40, tzinfo=UTC)  # timestamp 1718966400
    assert (mapped.channel_id, mapped.channel_title) == ("UCq3xLk9mZpR2vT8wYbN4hJg", "Мастерская Ивана")
    assert (mapped.category, mapped.duration_sec, mapped.language) == ("Howto & Style", 612.0, "ru")
    assert mapped.extractor == "Youtube" and mapped.webpage_url.endswith("watch?v=Tf7xQ2kLm9A")
    assert ytdlp_identity(info) == ("youtube", "Tf7xQ2kLm9A")


def test_ytdlp_mapping_edge_cases() -> None:
    # upload_date only; unsafe id from a named extractor -> no id (the content hash is used).
    info = {"id": "../x", "extractor_key": "Vimeo", "upload_date": "20240102", "tags": None}
    mapped = info_from_ytdlp(info)
    assert mapped.published_at == datetime(2024, 1, 2, tzinfo=UTC) and mapped.tags == []
    assert ytdlp_identity(info) == ("vimeo", None)
    # The generic extractor's "timestamp" is the HTTP Last-Modified header: not a publish time.
    generic = {"id": "clip", "extractor_key": "Generic", "timestamp": 1718966400}
    assert info_from_ytdlp(generic).published_at is None
    assert ytdlp_identity(generic) == ("web", None)


def test_ytdlp_info_json_as_a_sidecar(tmp_path) -> None:
    source = resolve_source(str(VIDEOS / "bikes.mp4"), tmp_path, metadata_file=YTDLP_INFO)
    assert (source.platform_id, source.video_id) == ("youtube", "Tf7xQ2kLm9A")
    assert source.info.channel_id == "UCq3xLk9mZpR2vT8wYbN4hJg"


def test_redact_url_removes_credentials_and_secrets() -> None:
    url = "https://user:pw@cdn.example.com:8443/v/clip.mp4?id=7&token=abc&X-Amz-Signature=zz#t=3"
    assert (
        redact_url(url)
        == "https://cdn.example.com:8443/v/clip.mp4?id=7&token=REDACTED&X-Amz-Signature=REDACTED"
    )


# -- URLs against real loopback servers ----------------------------------------------------------


def test_url_is_downloaded_with_ytdlp(media_http_server, tmp_path) -> None:
    source = resolve_source(f"{media_http_server}/bikes.mp4?token=s3cr3t", tmp_path / "dl", timeout_sec=60)
    assert source.kind == "url" and source.downloaded
    assert (
        source.path.parent == tmp_path / "dl"
        and source.path.read_bytes() == (VIDEOS / "bikes.mp4").read_bytes()
    )
    assert source.uri == f"{media_http_server}/bikes.mp4?token=REDACTED"
    assert (source.platform_id, source.video_id) == ("web", None)
    assert source.info.title == "bikes" and source.info.extractor == "Generic"
    assert source.info.published_at is None


def test_downloaded_url_segments_like_a_local_file(media_http_server, signals_profile, tmp_path) -> None:
    source = resolve_source(f"{media_http_server}/bikes.mp4", tmp_path / "dl", timeout_sec=60)
    meta = segment(source, make_identity(signals_profile), signals_profile, tmp_path / "frames_dir")
    assert (meta.source.width, meta.source.height) == (640, 272) and len(meta.union_timestamps_sec) == 40


def test_url_404_is_source_not_found(media_http_server, tmp_path) -> None:
    err = expect_error(
        ErrorCode.SOURCE_NOT_FOUND, f"{media_http_server}/missing.mp4", tmp_path, timeout_sec=30
    )
    assert not err.transient and "404" in err.message


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_port_is_transient_download_failed(tmp_path) -> None:
    err = expect_error(
        ErrorCode.DOWNLOAD_FAILED, f"http://127.0.0.1:{_free_port()}/v.mp4", tmp_path, timeout_sec=10
    )
    assert err.transient


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers: a stalled server."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/v.mp4"
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    listener.close()


def test_stalled_server_fails_instead_of_hanging(silent_server, tmp_path) -> None:
    start = time.monotonic()
    err = expect_error(ErrorCode.DOWNLOAD_FAILED, silent_server, tmp_path, timeout_sec=1)
    assert err.transient
    assert time.monotonic() - start < 60  # bounded by the socket timeout and yt-dlp's retries


class _TrickleHandler(http.server.BaseHTTPRequestHandler):
    """Serves a large .mp4 one small chunk at a time: alive, but far too slow."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self._headers()

    def _headers(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(50_000_000))
        self.end_headers()

    def do_GET(self) -> None:
        self._headers()
        data = (VIDEOS / "bikes.mp4").read_bytes()
        try:
            for start in range(0, 50_000_000, 4096):
                self.wfile.write(data[start % len(data) : start % len(data) + 4096] or b"\0" * 4096)
                self.wfile.flush()
                time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def trickle_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TrickleHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/big.mp4"
    server.shutdown()
    server.server_close()


def test_slow_download_stops_at_the_time_limit(trickle_server, tmp_path) -> None:
    err = expect_error(ErrorCode.DOWNLOAD_FAILED, trickle_server, tmp_path / "dl", timeout_sec=3)
    assert "time limit" in err.message


def test_only_http_urls_and_no_sidecar_for_urls(tmp_path, media_http_server) -> None:
    expect_error(ErrorCode.INVALID_REQUEST, "ftp://example.com/v.mp4", tmp_path)
    sidecar = _sidecar(tmp_path, {"title": "t"})
    expect_error(ErrorCode.INVALID_REQUEST, f"{media_http_server}/bikes.mp4", tmp_path, metadata_file=sidecar)


def test_scratch_dir_holds_only_the_download(media_http_server, tmp_path) -> None:
    scratch = tmp_path / "dl"
    resolve_source(f"{media_http_server}/bikes.mp4", scratch, timeout_sec=60)
    assert [p.name for p in scratch.iterdir()] == ["bikes.mp4"]
    shutil.rmtree(scratch)
