"""Mostly destroyed media is not a silent success (docs/segmenter.md, "Damaged media policy").

Real files are damaged the way a disk or a transfer damages them: the bytes of a share of the
video packets (or of every audio packet) are overwritten with noise, container and index intact.
Above the thresholds the run is `invalid_media`; below them it succeeds with a run-level warning
in manifest.json; damaged audio gets its own `empty_reason`.
"""

from __future__ import annotations

import random
from pathlib import Path

import av
import pytest

from trendflow.contracts.manifest import Manifest
from trendflow.dataprocessor.run import ProcessRequest, RunOutcome, process_video
from trendflow.dataprocessor.segmenter import RUN_WARNING_PREFIX
from trendflow.storage.store import ResultStore
from trendflow.testing.media import make_video


@pytest.fixture(scope="module")
def clean_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("damaged")
    return make_video(folder / "clean.mp4", duration=8.0, width=160, height=120, fps=12, gop=12)


def overwrite_packets(source: Path, target: Path, kind: str, share: float, seed: int = 7) -> Path:
    """Noise over the bytes of a contiguous middle run of `share` of the `kind` packets."""
    data = bytearray(source.read_bytes())
    with av.open(str(source)) as container:
        packets = [(p.pos, p.size) for p in container.demux() if p.stream.type == kind and p.pos and p.size]
    count = round(len(packets) * share)
    start = (len(packets) - count) // 2
    rng = random.Random(seed)
    for pos, size in packets[start : start + count]:
        data[pos : pos + size] = bytes(rng.randrange(256) for _ in range(size))
    target.write_bytes(bytes(data))
    return target


def _run(video: Path, store: ResultStore) -> tuple[RunOutcome, Manifest | None]:
    outcome = process_video(ProcessRequest(source=str(video), store=store, profile="signals", force=True))
    manifest = None
    if outcome.identity is not None and outcome.manifest_uri:
        manifest = Manifest.model_validate_json(
            store.read_bytes(
                f"{outcome.identity.platform_id}/"
                f"{outcome.identity.video_id}/"
                f"{outcome.identity.run_id}/manifest.json"
            )
        )
    return outcome, manifest


def _run_warnings(manifest: Manifest | None) -> list[str]:
    assert manifest is not None
    return [w for w in manifest.warnings if w.startswith(RUN_WARNING_PREFIX)]


def test_clean_file_has_no_damage_warning(clean_video: Path, tmp_path: Path) -> None:
    outcome, manifest = _run(clean_video, ResultStore(str(tmp_path)))
    assert outcome.status == "success"
    assert _run_warnings(manifest) == []


@pytest.mark.parametrize("share", [0.7, 0.9])
def test_mostly_destroyed_video_is_invalid_media(clean_video: Path, tmp_path: Path, share: float) -> None:
    damaged = overwrite_packets(clean_video, tmp_path / f"video-{share}.mp4", "video", share)
    outcome, _ = _run(damaged, ResultStore(str(tmp_path / "store")))
    assert outcome.status == "error" and outcome.error_code == "invalid_media", outcome.summary()
    assert "too damaged" in (outcome.error or "")


@pytest.mark.parametrize("share", [0.2, 0.3])
def test_partly_damaged_video_succeeds_with_a_run_warning(
    clean_video: Path, tmp_path: Path, share: float
) -> None:
    damaged = overwrite_packets(clean_video, tmp_path / f"video-{share}.mp4", "video", share)
    outcome, manifest = _run(damaged, ResultStore(str(tmp_path / "store")))
    assert outcome.status == "success", outcome.summary()
    (warning,) = _run_warnings(manifest)
    assert "sampled frames lost" in warning


def test_damaged_audio_has_its_own_empty_reason(clean_video: Path, tmp_path: Path) -> None:
    damaged = overwrite_packets(clean_video, tmp_path / "audio.mp4", "audio", 1.0)
    outcome, manifest = _run(damaged, ResultStore(str(tmp_path / "store")))
    assert outcome.status == "success", outcome.summary()
    assert manifest is not None
    loudness = next(c for c in manifest.components if c.name == "loudness")
    assert (loudness.status, loudness.empty_reason) == ("empty", "audio_undecodable")
    assert any("audio track could not be decoded" in w for w in _run_warnings(manifest))


def test_video_without_audio_stays_no_audio_track(tmp_path: Path) -> None:
    silent = make_video(tmp_path / "silent.mp4", duration=6.0, width=160, height=120, fps=12, audio=False)
    outcome, manifest = _run(silent, ResultStore(str(tmp_path / "store")))
    assert outcome.status == "success" and manifest is not None
    loudness = next(c for c in manifest.components if c.name == "loudness")
    assert loudness.empty_reason == "no_audio_track"
    assert _run_warnings(manifest) == []
