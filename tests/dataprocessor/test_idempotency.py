"""Idempotency (SPEC 3): the same (platform_id, video_id, config_hash) is a cache hit unless forced."""

from __future__ import annotations

from pathlib import Path

import pytest

import tests.dataprocessor.resume_components  # noqa: F401  (registers the test components)
from tests.dataprocessor.resume_components import write_test_graph
from trendflow.dataprocessor.run import ProcessRequest, process_video
from trendflow.dataprocessor.state import GlobalStateManager, RunStateManager, read_journal
from trendflow.storage.layout import RunLayout
from trendflow.storage.store import ResultStore
from trendflow.testing.media import make_video


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("media")
    return {
        "video": make_video(base / "clip.mp4", duration=6.0, width=160, height=120, fps=12),
        "graph": write_test_graph(base / "graph.yaml"),
    }


def _request(media: dict[str, Path], store: ResultStore, **extra: object) -> ProcessRequest:
    return ProcessRequest(
        source=str(media["video"]), store=store, profile="crash_test", graph_path=media["graph"], **extra
    )


def test_second_request_is_a_cache_hit_journaled_in_the_cached_run(
    media: dict[str, Path], tmp_path: Path
) -> None:
    store = ResultStore(str(tmp_path / "store"))
    first = process_video(_request(media, store))
    assert first.status == "success" and not first.cache_hit
    second = process_video(_request(media, store))
    assert second.cache_hit and second.identity == first.identity and second.status == "success"
    layout = RunLayout.of(first.identity)
    events = read_journal(store, layout.run_dir).events
    assert events[-1].event == "cache_hit" and events[-1].level == 2
    state, _ = RunStateManager.recover(store, layout)
    assert state.state.cache_hits == 1
    assert len(GlobalStateManager(store).read().runs) == 1

    forced = process_video(_request(media, store, force=True))
    assert forced.status == "success" and not forced.cache_hit
    assert forced.identity.run_id != first.identity.run_id
    assert len(GlobalStateManager(store).read().runs) == 2


def test_a_run_with_a_missing_artifact_is_no_cache_hit(media: dict[str, Path], tmp_path: Path) -> None:
    store = ResultStore(str(tmp_path / "store"))
    first = process_video(_request(media, store))
    layout = RunLayout.of(first.identity)
    store.delete(layout.path("audio/test_audio_rms.npz"))
    again = process_video(_request(media, store))
    assert not again.cache_hit and again.status == "success"
    assert again.identity.run_id != first.identity.run_id
    assert "cache_hit" not in [e.event for e in read_journal(store, layout.run_dir).events]
    # The newer, complete run is now the one a third request gets.
    third = process_video(_request(media, store))
    assert third.cache_hit and third.identity.run_id == again.identity.run_id
