"""The segmenter on real and generated media: probe, input contract, one decode pass, audio.

Every bad input of issue 2 has a test here: it gets its SPEC error code or a valid result.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.fixtures.media import GeneratedMedia, make_identity
from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.metadata import FramesMetadata, SourceFacts
from trendflow.dataprocessor.frame_store import FrameStore
from trendflow.dataprocessor.graph import AnalysisSettings, ComponentGraph, Profile
from trendflow.dataprocessor.segmenter import (
    FRAMES_FILE,
    METADATA_FILE,
    check_input_contract,
    decode_passes_started,
    probe,
    segment,
)
from trendflow.dataprocessor.sources import resolve_source
from trendflow.testing import media


def run_segment(path: Path, profile: Profile, tmp_path: Path) -> FramesMetadata:
    source = resolve_source(str(path), tmp_path / "scratch")
    return segment(source, make_identity(profile), profile, tmp_path / "frames_dir")


def expect_error(code: ErrorCode, fn: Any, *args: Any) -> TrendFlowError:
    with pytest.raises(TrendFlowError) as err:
        fn(*args)
    assert err.value.code is code, err.value
    return err.value


def _dense_profile(fps: float) -> Profile:
    """One frame component at `fps`: dense enough that skip_frame stays off."""
    raw = {
        "components": {
            "segmenter": {"processor": "segmenter", "unit": "video", "description": "s"},
            "dense": {
                "processor": "visual",
                "unit": "frame",
                "description": "d",
                "depends_on": ["segmenter"],
                "sampling": {"fps": fps, "max_frames": 10000},
            },
        },
        "profiles": {"p": {"description": "p", "components": {"segmenter": {}, "dense": {}}}},
    }
    return ComponentGraph.from_dict(raw).profile("p")


def ffmpeg_frame(path: Path, time_sec: float, width: int, height: int) -> np.ndarray:
    """ffmpeg's own decode of the frame at `time_sec`, autorotated and scaled: the reference."""
    out = subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-ss",
            f"{time_sec:.3f}",
            "-i",
            str(path),
            "-frames:v",
            "1",
            "-vf",
            f"scale={width}:{height}:flags=area",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return np.frombuffer(out.stdout, np.uint8).reshape(height, width, 3)


# -- valid inputs -------------------------------------------------------------------------------


def test_segment_writes_frames_audio_and_metadata(sample_video, signals_profile, tmp_path) -> None:
    meta = run_segment(sample_video("bigbuckbunny.mp4"), signals_profile, tmp_path)
    frames_dir = tmp_path / "frames_dir"
    on_disk = FramesMetadata.model_validate_json((frames_dir / METADATA_FILE).read_text())
    assert on_disk == meta
    assert meta.source.video_codec == "h264" and meta.source.has_audio and meta.color_space == "RGB"
    assert (meta.analysis_width, meta.analysis_height) == (853, 480)  # 1280x720 -> short side 480
    frames = np.load(frames_dir / FRAMES_FILE, mmap_mode="r")
    assert frames.dtype == np.uint8 and frames.shape == (len(meta.union_timestamps_sec), 480, 853, 3)
    assert meta.union_timestamps_sec == sorted(meta.union_timestamps_sec)
    assert set(meta.components) == {"frame_stats", "shot_cuts", "motion"}
    assert meta.components["motion"].unit == "frame_pair"
    assert len({tuple(c.frame_indices) for c in meta.components.values()}) == 3
    # Audio: mono float32 at the profile's rate, fixed 1 s windows over the whole track.
    audio = np.load(frames_dir / meta.audio.path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert meta.audio.sample_rate == signals_profile.analysis.audio_sample_rate
    assert meta.audio.num_samples == audio.size
    assert meta.audio.duration_sec == pytest.approx(5.31, abs=0.05)
    assert len(meta.audio.segments) == 6 and meta.audio.segments[-1].end_sec == pytest.approx(
        meta.audio.duration_sec, abs=1e-3
    )
    assert meta.warnings == [] and meta.decode.decode_errors == 0


def test_stored_frames_are_the_frames_their_timestamps_name(
    generated_media: GeneratedMedia, signals_profile, tmp_path
) -> None:
    """Each frame shows its own number: the decoded frame kept for a target is the right one."""
    path = generated_media.get("index.mp4", lambda p: media.make_frame_index_video(p, frames=108, fps=20))
    meta = run_segment(path, signals_profile, tmp_path)
    assert meta.decode.skip_frame == "NONREF"  # 4 fps union from a 20 fps source
    assert meta.decode.frames_decoded < 100  # B-frames were not decoded
    store = FrameStore(tmp_path / "frames_dir", meta)
    for i, t in enumerate(meta.union_timestamps_sec):
        assert media.frame_index_of(store.get(i)) == round(t * 20)
    # Chosen frames stay within half an analysis frame of their targets (here: within 2 frames).
    assert meta.decode.max_target_error_sec <= 0.5 / meta.analysis_fps
    assert meta.decode.targets_off_grid == 0 and meta.decode.passes == 1


def test_decoder_thread_count_changes_no_frame_and_no_config_hash(
    sample_video, signals_profile, tmp_path
) -> None:
    """`analysis.decode_threads` is speed only: one frame thread and sixteen store the same frames
    at the same times, and the profile's config_hash does not see the setting."""
    stored = []
    for threads in (1, 16):
        analysis = signals_profile.analysis.model_copy(update={"decode_threads": threads})
        profile = signals_profile.model_copy(update={"analysis": analysis})
        assert profile.canonical() == signals_profile.canonical()
        meta = run_segment(sample_video("bikes.mp4"), profile, tmp_path / str(threads))
        assert meta.decode.skip_frame == "NONREF" and meta.decode.passes == 1
        frames = np.load(tmp_path / str(threads) / "frames_dir" / FRAMES_FILE)
        stored.append((meta.union_timestamps_sec, meta.components, frames))
    (times_1, components_1, frames_1), (times_16, components_16, frames_16) = stored
    assert times_1 == times_16 and components_1 == components_16
    assert frames_1.shape[0] == len(times_1) > 0
    np.testing.assert_array_equal(frames_1, frames_16)


def test_skip_frame_that_loses_precision_falls_back_to_a_full_decode(
    generated_media: GeneratedMedia, signals_profile, tmp_path
) -> None:
    """16 non-reference B-frames in a row: skipping them would put chosen frames up to 8 frames
    (0.4 s) from their targets, over half an analysis frame (0.125 s): the pass is redone."""
    path = generated_media.get(
        "index_long_b.mp4",
        lambda p: media.make_frame_index_video(
            p, frames=108, fps=20, bframes=16, x264_params="b-pyramid=none:b-adapt=0"
        ),
    )
    meta = run_segment(path, signals_profile, tmp_path)
    assert meta.decode.passes == 2 and meta.decode.skip_frame == "DEFAULT"
    assert any("lost precision" in w for w in meta.warnings)
    assert meta.decode.max_target_error_sec <= 0.5 / meta.analysis_fps
    store = FrameStore(tmp_path / "frames_dir", meta)
    assert [media.frame_index_of(store.get(i)) for i in range(len(store))] == [
        round(t * 20) for t in meta.union_timestamps_sec
    ]


def test_dense_union_decodes_every_frame_exactly(generated_media: GeneratedMedia, tmp_path) -> None:
    path = generated_media.get("index.mp4", lambda p: media.make_frame_index_video(p, frames=108, fps=20))
    meta = run_segment(path, _dense_profile(20.0), tmp_path)
    assert meta.decode.skip_frame == "DEFAULT"
    assert len(meta.union_timestamps_sec) == 108 and meta.decode.max_target_error_sec < 1e-3
    store = FrameStore(tmp_path / "frames_dir", meta)
    assert [media.frame_index_of(f) for f in store.get_batch(range(108))] == list(range(108))


def test_channels_are_rgb(generated_media: GeneratedMedia, signals_profile, tmp_path) -> None:
    path = generated_media.get("red.mp4", lambda p: media.make_color_video(p, "red"))
    meta = run_segment(path, signals_profile, tmp_path)
    r, g, b = FrameStore(tmp_path / "frames_dir", meta).get(0).reshape(-1, 3).mean(axis=0)
    assert r > 200 and g < 60 and b < 60


@pytest.mark.parametrize("rotate", [90, 270])
def test_rotation_is_applied_like_ffmpeg_autorotate(
    generated_media: GeneratedMedia, signals_profile, tmp_path, rotate
) -> None:
    path = generated_media.video(
        f"rot{rotate}.mp4", duration=6, width=320, height=240, fps=25, audio=False, rotate=rotate
    )
    facts = probe(path)
    assert facts.rotation == rotate and (facts.width, facts.height) == (320, 240)
    meta = run_segment(path, signals_profile, tmp_path)
    assert (meta.analysis_width, meta.analysis_height) == (240, 320)  # display orientation: portrait
    store = FrameStore(tmp_path / "frames_dir", meta)
    i = len(store) // 2
    ours = store.get(i).astype(np.int16)
    reference = ffmpeg_frame(path, meta.union_timestamps_sec[i], 240, 320).astype(np.int16)
    upside_down = np.rot90(reference, 2)
    assert np.abs(ours - reference).mean() < 8
    assert np.abs(ours - upside_down).mean() > 3 * np.abs(ours - reference).mean()


def test_vertical_video_keeps_its_orientation(
    generated_media: GeneratedMedia, signals_profile, tmp_path
) -> None:
    path = generated_media.video(
        "vertical.mp4",
        duration=5.2,
        width=1080,
        height=1920,
        fps=4,
        audio=False,
        extra_video_args=["-preset", "ultrafast"],
    )
    meta = run_segment(path, signals_profile, tmp_path)
    assert (meta.analysis_width, meta.analysis_height) == (480, 853)
    assert FrameStore(tmp_path / "frames_dir", meta).get(0).shape == (853, 480, 3)


def test_4k_is_downscaled(generated_media: GeneratedMedia, signals_profile, tmp_path) -> None:
    path = generated_media.video(
        "uhd.mp4",
        duration=5.2,
        width=3840,
        height=2160,
        fps=2,
        audio=True,
        extra_video_args=["-preset", "ultrafast"],
    )
    meta = run_segment(path, signals_profile, tmp_path)
    assert (meta.source.width, meta.source.height) == (3840, 2160)
    assert (meta.analysis_width, meta.analysis_height) == (853, 480)
    assert meta.audio is not None


def test_never_upscales_and_never_above_1080(sample_video, tmp_path) -> None:
    big = (
        ComponentGraph.load()
        .profile("signals")
        .model_copy(update={"analysis": AnalysisSettings(max_short_side=1080)})
    )
    meta = run_segment(sample_video("bikes.mp4"), big, tmp_path)
    assert (meta.analysis_width, meta.analysis_height) == (640, 272)


def test_variable_frame_rate(generated_media: GeneratedMedia, signals_profile, tmp_path) -> None:
    path = generated_media.get(
        "vfr.mp4", lambda p: media.make_vfr_video(p, duration=8, fast_fps=30, slow_every=5)
    )
    facts = probe(path)
    assert facts.variable_frame_rate
    meta = run_segment(path, signals_profile, tmp_path)
    assert meta.decode.skip_frame == "DEFAULT"  # nearest-frame guarantees need every frame on VFR
    times = np.asarray(meta.union_timestamps_sec)
    assert np.all(np.diff(times) > 0) and times[-1] <= facts.duration_sec
    # After 3 s the source has a frame every 1/6 s: every target is still within half an
    # analysis frame (1/8 s) of a real frame.
    assert meta.decode.max_target_error_sec <= 0.5 / meta.analysis_fps + 1e-3


def test_audio_track_is_the_sine_it_was_made_from(
    generated_media: GeneratedMedia, signals_profile, tmp_path
) -> None:
    path = generated_media.video("tone.mp4", duration=6, width=160, height=120, fps=25, audio=True)
    meta = run_segment(path, signals_profile, tmp_path)
    audio = np.load(tmp_path / "frames_dir" / meta.audio.path)
    spectrum = np.abs(np.fft.rfft(audio[: meta.audio.sample_rate * 4]))
    peak_hz = np.argmax(spectrum) * meta.audio.sample_rate / (meta.audio.sample_rate * 4)
    assert peak_hz == pytest.approx(440, abs=2)
    assert meta.audio.duration_sec == pytest.approx(6.0, abs=0.1)


def test_stream_written_webm_without_duration_header(
    generated_media: GeneratedMedia, signals_profile, tmp_path
) -> None:
    path = generated_media.get("streamed.webm", lambda p: media.make_streamed_webm(p, duration=7.0))
    facts = probe(path)  # the header has no duration: it comes from the packets' timestamps
    assert facts.duration_sec == pytest.approx(7.0, abs=0.05) and facts.video_codec == "vp9"
    meta = run_segment(path, signals_profile, tmp_path)
    assert len(meta.union_timestamps_sec) == 28 and meta.decode.targets_missing == 0


def test_no_audio_track_gives_audio_none_and_a_warning(sample_video, signals_profile, tmp_path) -> None:
    meta = run_segment(sample_video("bikes.mp4"), signals_profile, tmp_path)
    assert meta.audio is None and not meta.source.has_audio
    assert any("no audio track" in w for w in meta.warnings)
    assert not (tmp_path / "frames_dir" / "audio.npy").exists()
    assert len(meta.union_timestamps_sec) == 40


def test_cinepak_avi_is_a_valid_input(sample_video, signals_profile, tmp_path) -> None:
    meta = run_segment(sample_video("tree.avi"), signals_profile, tmp_path)
    assert meta.source.video_codec == "cinepak" and meta.source.container == "avi"
    assert len(meta.union_timestamps_sec) > 30 and meta.audio is None
    # The AVI stores ~1 real frame in 5 (empty packets repeat the picture): nearest frames are
    # up to 1/3 s away, which the metadata says instead of hiding.
    assert meta.decode.targets_off_grid > 0 and any("half an analysis frame" in w for w in meta.warnings)


def test_damaged_megamind_is_a_valid_run(sample_video, signals_profile, tmp_path) -> None:
    """Decided: the stream's damage is in the picture, every packet decodes -> a valid run."""
    meta = run_segment(sample_video("Megamind_bugy.avi"), signals_profile, tmp_path)
    assert meta.source.video_codec == "mpeg4" and meta.source.duration_sec == pytest.approx(9.0)
    assert len(meta.union_timestamps_sec) == 36 and meta.decode.targets_missing == 0
    frames = FrameStore(tmp_path / "frames_dir", meta).get_batch(range(36))
    assert frames.std() > 10  # real pictures, not blank frames


def test_profile_without_frame_components_decodes_nothing(sample_video, tmp_path) -> None:
    raw = {
        "components": {"segmenter": {"processor": "segmenter", "unit": "video", "description": "s"}},
        "profiles": {"p": {"description": "p", "components": {"segmenter": {}}}},
    }
    profile = ComponentGraph.from_dict(raw).profile("p")
    passes = decode_passes_started()
    meta = run_segment(sample_video("bigbuckbunny.mp4"), profile, tmp_path)
    assert decode_passes_started() == passes and meta.decode.passes == 0
    assert meta.union_timestamps_sec == [] and meta.components == {} and meta.audio is not None
    assert len(FrameStore(tmp_path / "frames_dir", meta)) == 0
    assert np.load(tmp_path / "frames_dir" / FRAMES_FILE).shape == (0, 720, 1280, 3)  # default 720p limit


# -- the input contract -------------------------------------------------------------------------


def _facts(duration: float) -> SourceFacts:
    return SourceFacts(
        container="mp4",
        video_codec="h264",
        duration_sec=duration,
        fps=25,
        width=64,
        height=64,
        has_audio=False,
        bytes=1,
        sha256="0" * 64,
    )


def test_contract_bounds_come_from_the_analysis_settings() -> None:
    settings = AnalysisSettings()
    check_input_contract(_facts(5.0), settings)
    check_input_contract(_facts(1200.0), settings)
    expect_error(ErrorCode.VIDEO_TOO_SHORT, check_input_contract, _facts(4.99), settings)
    expect_error(ErrorCode.VIDEO_TOO_LONG, check_input_contract, _facts(1200.5), settings)


@pytest.mark.parametrize("name", ["carphone_pristine.mp4", "sample_1080p_1s.mp4"])
def test_short_samples_are_rejected_before_decoding(sample_video, signals_profile, tmp_path, name) -> None:
    passes = decode_passes_started()
    expect_error(ErrorCode.VIDEO_TOO_SHORT, run_segment, sample_video(name), signals_profile, tmp_path)
    assert decode_passes_started() == passes
    assert not (tmp_path / "frames_dir").exists()


def test_21_minute_video_is_rejected_from_the_probe(
    generated_media: GeneratedMedia, signals_profile, tmp_path
) -> None:
    path = generated_media.get("long.mp4", lambda p: media.make_long_cheap_video(p, duration=21 * 60))
    assert probe(path).duration_sec == pytest.approx(1260, abs=1)
    passes = decode_passes_started()
    err = expect_error(ErrorCode.VIDEO_TOO_LONG, run_segment, path, signals_profile, tmp_path)
    assert "1260" in err.message
    assert decode_passes_started() == passes  # the decode pass never started
    assert not (tmp_path / "frames_dir" / FRAMES_FILE).exists()


# -- invalid media ------------------------------------------------------------------------------


def test_zero_byte_file(signals_profile, tmp_path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    err = expect_error(ErrorCode.INVALID_MEDIA, run_segment, empty, signals_profile, tmp_path)
    assert "empty" in err.message


def test_text_file_named_mp4(signals_profile, tmp_path) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video\n" * 100)
    expect_error(ErrorCode.INVALID_MEDIA, run_segment, fake, signals_profile, tmp_path)


def test_audio_only_file_is_not_a_video(generated_media: GeneratedMedia, tmp_path) -> None:
    path = generated_media.get("tone.m4a", lambda p: media.make_audio_only(p))
    err = expect_error(ErrorCode.INVALID_MEDIA, probe, path)
    assert "no video stream" in err.message


def test_missing_file_is_source_not_found(tmp_path) -> None:
    expect_error(ErrorCode.SOURCE_NOT_FOUND, probe, tmp_path / "nope.mp4")


def _clip(generated_media: GeneratedMedia) -> Path:
    return generated_media.video("clip8s.mp4", duration=8, width=320, height=240, fps=25, audio=True)


def test_truncated_mp4_without_its_index_is_invalid(
    generated_media: GeneratedMedia, signals_profile, tmp_path
) -> None:
    # ffmpeg writes the MP4 index (moov) last: a download cut half-way has none.
    cut = media.truncate_copy(_clip(generated_media), tmp_path / "cut.mp4", 0.5)
    expect_error(ErrorCode.INVALID_MEDIA, run_segment, cut, signals_profile, tmp_path)


def test_truncated_faststart_mp4_keeps_what_decodes(
    generated_media: GeneratedMedia, signals_profile, tmp_path
) -> None:
    full = generated_media.get(
        "clip8s_faststart.mp4", lambda p: media.faststart_copy(_clip(generated_media), p)
    )
    cut = media.truncate_copy(full, tmp_path / "cut85.mp4", 0.85)
    meta = run_segment(cut, signals_profile, tmp_path)
    assert meta.decode.targets_missing > 0
    assert any("past the decodable end" in w for w in meta.warnings)
    assert meta.union_timestamps_sec[-1] < 8.0 * 0.95
    for sampling in meta.components.values():  # indices only name frames that exist
        assert max(sampling.frame_indices) < len(meta.union_timestamps_sec)


def test_mostly_missing_stream_is_invalid(generated_media: GeneratedMedia, signals_profile, tmp_path) -> None:
    full = generated_media.get(
        "clip8s_faststart.mp4", lambda p: media.faststart_copy(_clip(generated_media), p)
    )
    cut = media.truncate_copy(full, tmp_path / "cut25.mp4", 0.25)
    err = expect_error(ErrorCode.INVALID_MEDIA, run_segment, cut, signals_profile, tmp_path)
    assert "too damaged" in err.message
    assert not (tmp_path / "frames_dir" / FRAMES_FILE).exists()


def test_metadata_json_is_plain_json(sample_video, signals_profile, tmp_path) -> None:
    run_segment(sample_video("bikes.mp4"), signals_profile, tmp_path)
    raw = json.loads((tmp_path / "frames_dir" / METADATA_FILE).read_text())
    assert (
        raw["color_space"] == "RGB"
        and raw["sampling_policy_version"] == raw["run"]["sampling_policy_version"]
    )
    assert raw["components"]["shot_cuts"]["budget"] == {"fps": 4.0, "min_frames": 20, "max_frames": 4800}
