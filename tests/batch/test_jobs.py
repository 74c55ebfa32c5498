"""Planning jobs: identity before dispatch, staging to a shared store, planning errors."""

import json
from pathlib import Path

import pytest

from trendflow.batch.jobs import identify, plan_jobs, youtube_id
from trendflow.batch.video_list import VideoEntry
from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.identity import local_video_id
from trendflow.storage.store import ResultStore


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=3", "dQw4w9WgXcQ"),
        ("https://youtu.be/dQw4w9WgXcQ?si=x", "dQw4w9WgXcQ"),
        ("https://www.youtube.com/shorts/abcDEF12345", "abcDEF12345"),
        ("https://vimeo.com/123", None),
        ("https://www.youtube.com/feed/trending", None),
    ],
)
def test_youtube_ids(url: str, expected: str | None) -> None:
    assert youtube_id(url) == expected


def test_identity_precedence(tmp_path: Path, tiny_videos: dict[str, Path]) -> None:
    video = str(tiny_videos["valid_a"])
    assert identify(VideoEntry(source=video), None) == ("local", local_video_id(video))
    assert identify(VideoEntry(source=video, video_id="mine"), None) == ("local", "mine")
    sidecar = {"platform_id": "youtube", "video_id": "dQw4w9WgXcQ", "title": "t"}
    assert identify(VideoEntry(source=video), sidecar) == ("youtube", "dQw4w9WgXcQ")
    ytdlp = {"extractor_key": "Youtube", "id": "abcDEF12345"}
    assert identify(VideoEntry(source=video), ytdlp) == ("youtube", "abcDEF12345")
    assert identify(VideoEntry(source="https://youtu.be/dQw4w9WgXcQ"), None) == ("youtube", "dQw4w9WgXcQ")


def test_identity_errors(tmp_path: Path) -> None:
    with pytest.raises(TrendFlowError) as info:
        identify(VideoEntry(source=str(tmp_path / "absent.mp4")), None)
    assert info.value.code is ErrorCode.SOURCE_NOT_FOUND
    with pytest.raises(TrendFlowError) as info:
        identify(VideoEntry(source="https://example.com/video.mp4"), None)
    assert info.value.code is ErrorCode.INVALID_REQUEST
    with pytest.raises(TrendFlowError) as info:
        identify(VideoEntry(source="https://example.com/v.mp4", platform_id="web", video_id="../x"), None)
    assert info.value.code is ErrorCode.INVALID_REQUEST


def test_plan_jobs_dedupes_stages_and_reports_errors(
    tmp_path: Path, tiny_videos: dict[str, Path], store: ResultStore
) -> None:
    sidecar = tmp_path / "a.json"
    sidecar.write_text(json.dumps({"title": "A title", "tags": ["x"]}))
    entries = [
        VideoEntry(source=str(tiny_videos["valid_a"]), metadata=str(sidecar)),
        VideoEntry(source=str(tiny_videos["valid_a"])),  # the same video again: one job
        VideoEntry(source=str(tiny_videos["valid_b"])),
        VideoEntry(source=str(tmp_path / "absent.mp4")),
        VideoEntry(source=str(tiny_videos["valid_c"]), metadata=str(tmp_path / "no-sidecar.json")),
    ]
    planned = plan_jobs(entries, "signals", staging_store=store, batch_id="b1")
    assert len(planned) == 4
    ok = [p for p in planned if p.payload is not None]
    errors = {p.error.error_code for p in planned if p.error is not None}
    assert errors == {ErrorCode.SOURCE_NOT_FOUND, ErrorCode.INVALID_REQUEST}
    assert len(ok) == 2 and len({p.payload.run_id for p in ok}) == 2
    first = ok[0].payload
    assert first.metadata == {"title": "A title", "tags": ["x"]}
    assert first.profile == "signals" and first.batch_id == "b1"
    assert first.video_source == store.uri(f"_staging/local/{first.video_id}/valid_a.mp4")
    assert (
        store.read_bytes(f"_staging/local/{first.video_id}/valid_a.mp4")
        == tiny_videos["valid_a"].read_bytes()
    )
    # Without a staging store the payload names the local file itself.
    local = plan_jobs(entries[:1], "signals")
    assert local[0].payload.video_source == str(tiny_videos["valid_a"])
