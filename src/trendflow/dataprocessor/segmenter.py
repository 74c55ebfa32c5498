"""The segmenter: probe, enforce the input contract, plan, decode once, extract audio (SPEC 4-5).

`segment()` is the only step that reads the media. It decides everything components see:
the union of sampled frames (RGB uint8, display-oriented, short side <= the profile's limit),
each component's `frame_indices`, and the mono audio track; all of it is written to
`frames_dir` with `metadata.json` last, so a reader never sees a half-written segmenter output.
"""

from __future__ import annotations

import math
import time
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.identity import RunIdentity, file_sha256
from trendflow.contracts.metadata import (
    AudioTrack,
    ComponentSampling,
    DecodeStats,
    FramesMetadata,
    SourceFacts,
)
from trendflow.dataprocessor.audio_extract import AudioExtraction
from trendflow.dataprocessor.decode import (
    IO_TIMEOUT_SEC,
    NONREF_CODECS,
    DecodeOutcome,
    decode_pass,
    decode_passes_started,
    output_geometry,
    select_video_stream,
)
from trendflow.dataprocessor.graph import AnalysisSettings, Profile
from trendflow.dataprocessor.sampling import SamplingPlan, plan_sampling

if TYPE_CHECKING:
    from trendflow.dataprocessor.sources import ResolvedSource

__all__ = [
    "FRAMES_FILE",
    "METADATA_FILE",
    "SamplingPlan",
    "check_input_contract",
    "decode_passes_started",
    "plan_sampling",
    "probe",
    "segment",
]

FRAMES_FILE = "frames.npy"
METADATA_FILE = "metadata.json"
PROBE_TIMEOUT_SEC = 60.0
_PROBE_PACKETS = 240  # packets demuxed to detect variable frame rate (no decoding)
_FIRST_FRAME_PACKETS = 600  # packets a decodable stream must produce its first frame within
_VFR_SPREAD = 1.5  # 95th / 5th percentile of frame intervals above which the rate is variable
_REORDER_TAIL = 16  # presentation times at the end of the scan window that may lack B-frames
_MIN_DECODED_SHARE = 0.5  # below this share of targets decodable, the media is invalid
# Damaged-media thresholds (docs/segmenter.md, "Damaged media policy"). With decode errors, a
# target whose nearest frame is off the grid stands in for a lost frame, so it counts as lost.
MAX_LOST_SHARE = 0.5  # lost targets (missing, or off-grid in a damaged stream) above: invalid_media
MAX_PACKET_ERROR_SHARE = 0.5  # rejected packets / (decoded frames + rejected) above: invalid_media
WARN_LOST_SHARE = 0.1  # above (and not invalid): a run-level warning in the manifest
WARN_PACKET_ERROR_SHARE = 0.05
MIN_AUDIO_SHARE = 0.5  # decoded audio shorter than this share of the video: a run-level warning
RUN_WARNING_PREFIX = "media damaged: "  # segmenter warnings the run lifts into manifest.warnings


def _invalid(path: Path, why: str) -> TrendFlowError:
    return TrendFlowError(ErrorCode.INVALID_MEDIA, f"{path.name}: {why}", path=str(path))


def _rotation_cw(stream: av.video.stream.VideoStream, first_frame: av.VideoFrame | None) -> int:
    """Clockwise display rotation, from the display matrix (FFmpeg attaches it to frames) or the
    legacy `rotate` tag. Odd angles are rounded to the nearest quarter turn."""
    ccw = first_frame.rotation if first_frame is not None else 0
    if not ccw and "rotate" in stream.metadata:
        try:
            return round(float(stream.metadata["rotate"]) / 90) * 90 % 360
        except ValueError:
            return 0
    return round(-ccw / 90) * 90 % 360


def _scan_video(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, path: Path, deadline: float
) -> tuple[av.VideoFrame, list[float], int]:
    """Demux the first packets (their timestamps give the frame-rate pattern) and decode until the
    first frame: a stream with no decodable frame is invalid media."""
    first: av.VideoFrame | None = None
    times: list[float] = []
    errors = 0
    packets = 0
    try:
        for packet in container.demux(stream):
            packets += 1
            if time.monotonic() > deadline:
                raise _invalid(path, f"probing ran past {PROBE_TIMEOUT_SEC:.0f}s")
            if packet.pts is not None and packet.time_base is not None:
                times.append(float(packet.pts * packet.time_base))
            if first is None:
                try:
                    frames = stream.codec_context.decode(packet)
                except av.FFmpegError:
                    errors += 1
                    frames = []
                first = frames[0] if frames else None
            if (first is not None and len(times) >= _PROBE_PACKETS) or (
                first is None and packets > _FIRST_FRAME_PACKETS
            ):
                break
    except av.FFmpegError as exc:
        if first is None:
            raise _invalid(path, f"the video stream cannot be read ({exc})") from exc
    if first is None:
        raise _invalid(path, f"no decodable video frame ({errors} packet(s) rejected by the decoder)")
    return first, times, errors


def _is_variable_rate(stream: av.video.stream.VideoStream, packet_times: list[float]) -> bool:
    avg, base = stream.average_rate, stream.base_rate
    if avg and base and abs(float(avg) - float(base)) / float(base) > 0.01:
        return True
    # Packets arrive in decode order: the last few presentation times of the window may still be
    # missing their B-frames, so the tail is left out; percentiles ignore a few lost frames.
    times = np.sort(np.asarray(packet_times, dtype=np.float64))[:-_REORDER_TAIL]
    intervals = np.diff(times)
    intervals = intervals[intervals > 0]
    if intervals.size < 8:
        return False
    low, high = np.percentile(intervals, [5, 95])
    return bool(high / low > _VFR_SPREAD)


def _duration(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return None


def _duration_by_demux(path: Path, deadline: float) -> float | None:
    """Containers written as a stream (e.g. a browser's WebM recording) have no duration header:
    read every packet's timestamp (demux only, no decoding) and take the last frame's end."""
    end: float | None = None
    try:
        with av.open(str(path), timeout=(IO_TIMEOUT_SEC, IO_TIMEOUT_SEC), metadata_errors="replace") as c:
            stream = select_video_stream(c)
            if stream is None:
                return None
            start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
            for packet in c.demux(stream):
                if time.monotonic() > deadline:
                    raise _invalid(path, f"probing ran past {PROBE_TIMEOUT_SEC:.0f}s")
                if packet.pts is not None and packet.time_base is not None:
                    last = float((packet.pts + (packet.duration or 0)) * packet.time_base) - start
                    end = last if end is None else max(end, last)
    except av.FFmpegError:
        return end
    return end


def _pixel_aspect(sar: Fraction | None) -> float:
    # 0/1 or a missing value means "unknown": square pixels.
    return round(float(sar), 6) if sar and 0.1 < sar < 10 else 1.0


def probe(path: Path, sha256: str | None = None) -> SourceFacts:
    """Facts about `path` from its headers, a few demuxed packets and one decoded frame.

    Raises `source_not_found` for a missing file and `invalid_media` for an empty file, a file
    that is not media, media without a video stream (cover art does not count) or a video
    stream that yields no frame. I/O has a timeout, so a stalled file system cannot hang it.
    `sha256` skips re-hashing when the caller already hashed the file.
    """
    path = Path(path)
    if not path.is_file():
        raise TrendFlowError(ErrorCode.SOURCE_NOT_FOUND, f"no such file: {path}")
    size = path.stat().st_size
    if size == 0:
        raise _invalid(path, "the file is empty (0 bytes)")
    deadline = time.monotonic() + PROBE_TIMEOUT_SEC
    try:
        container = av.open(str(path), timeout=(IO_TIMEOUT_SEC, IO_TIMEOUT_SEC), metadata_errors="replace")
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise _invalid(path, f"not a readable media file ({exc})") from exc
    with container:
        stream = select_video_stream(container)
        if stream is None:
            raise _invalid(path, "no video stream")
        audio = container.streams.audio[0] if container.streams.audio else None
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        stream.thread_type = "SLICE"  # one frame only: frame threads would only add latency
        first, packet_times, _ = _scan_video(container, stream, path, deadline)
        if not rate or float(rate) <= 0:
            raise _invalid(path, "the video stream has no frame rate")
        facts = dict(
            container=container.format.name,
            video_codec=stream.codec_context.codec.canonical_name,
            audio_codec=audio.codec_context.codec.canonical_name if audio is not None else None,
            duration_sec=_duration(container, stream),
            fps=round(float(rate), 6),
            variable_frame_rate=_is_variable_rate(stream, packet_times),
            width=stream.codec_context.width or first.width,
            height=stream.codec_context.height or first.height,
            rotation=_rotation_cw(stream, first),
            pixel_aspect=_pixel_aspect(stream.sample_aspect_ratio),
            has_audio=audio is not None,
            audio_sample_rate=audio.codec_context.sample_rate if audio is not None else None,
            audio_channels=audio.codec_context.channels if audio is not None else None,
        )
    duration = facts["duration_sec"]
    if duration is None or not math.isfinite(duration) or duration <= 0:
        duration = _duration_by_demux(path, deadline)
        if duration is None or duration <= 0:
            raise _invalid(path, "cannot tell how long the video is (no duration, no timestamps)")
    facts["duration_sec"] = round(duration, 6)
    return SourceFacts(**facts, bytes=size, sha256=sha256 or file_sha256(path))


def check_input_contract(facts: SourceFacts, analysis: AnalysisSettings) -> None:
    """SPEC 4, decided from the probe before any decoding: 5 s .. 20 min (profile-settable)."""
    if facts.duration_sec < analysis.min_duration_sec:
        raise TrendFlowError(
            ErrorCode.VIDEO_TOO_SHORT,
            f"the video lasts {facts.duration_sec:.2f}s; the minimum is {analysis.min_duration_sec:g}s",
        )
    if facts.duration_sec > analysis.max_duration_sec:
        raise TrendFlowError(
            ErrorCode.VIDEO_TOO_LONG,
            f"the video lasts {facts.duration_sec:.0f}s; the maximum is {analysis.max_duration_sec:g}s",
        )


def _skip_frame_mode(facts: SourceFacts, plan: SamplingPlan) -> str | None:
    """NONREF only where the nearest kept frame stays within half an analysis frame: constant
    rate, a codec whose non-reference frames are B-frames, and a union at most 1/4 of the rate."""
    sparse = plan.analysis_fps * 4 <= facts.fps
    return (
        "NONREF" if sparse and not facts.variable_frame_rate and facts.video_codec in NONREF_CODECS else None
    )


def _decode(
    path: Path, facts: SourceFacts, plan: SamplingPlan, frames_file: Path, max_short_side: int
) -> DecodeOutcome:
    geometry = output_geometry(facts.width, facts.height, facts.rotation, max_short_side, facts.pixel_aspect)
    deadline = time.monotonic() + max(120.0, 2.0 * facts.duration_sec)
    common = dict(
        media=path,
        targets_sec=plan.target_times_sec,
        geometry=geometry,
        frames_file=frames_file,
        analysis_fps=plan.analysis_fps,
        source_fps=facts.fps,
        deadline=deadline,
    )
    if not plan.target_times_sec:  # no component looks at frames: nothing to decode
        width, height = geometry.display_size
        np.save(frames_file, np.empty((0, height, width, 3), dtype=np.uint8))
        return DecodeOutcome(frames_file, [], [], DecodeStats(passes=0))
    skip = _skip_frame_mode(facts, plan)
    outcome = decode_pass(**common, skip_frame=skip)
    if outcome.skip_frame_lost_precision:
        # Rare (unusual GOP structures): exactness beats speed, so decode every frame.
        redo = decode_pass(**common, skip_frame=None)
        redo.stats.passes = 2
        return redo
    return outcome


def _component_indices(plan_indices: list[int], target_to_union: list[int | None], pair: bool) -> list[int]:
    """Map plan targets to stored frames; drop targets (or whole pairs) that were not decodable."""
    step = 2 if pair else 1
    out: list[int] = []
    for i in range(0, len(plan_indices), step):
        mapped = [target_to_union[j] for j in plan_indices[i : i + step]]
        if all(m is not None for m in mapped):
            out.extend(m for m in mapped if m is not None)
    return out


def segment(
    source: ResolvedSource, identity: RunIdentity, profile: Profile, frames_dir: Path
) -> FramesMetadata:
    """Probe + contract check + plan + one decode pass + audio; writes `frames_dir/metadata.json`."""
    frames_dir = Path(frames_dir)
    facts = probe(source.path)
    check_input_contract(facts, profile.analysis)
    plan = plan_sampling(facts.duration_sec, facts.fps, profile)
    frames_dir.mkdir(parents=True, exist_ok=True)
    analysis = profile.analysis
    audio_job = None
    if facts.has_audio:
        audio_job = AudioExtraction(
            source.path,
            frames_dir,
            analysis.audio_sample_rate,
            analysis.audio_window_sec,
            timeout_sec=max(120.0, facts.duration_sec),
        ).start()
    try:
        outcome = _decode(source.path, facts, plan, frames_dir / FRAMES_FILE, analysis.max_short_side)
        video_warnings = _decode_warnings(outcome, plan, source.path)  # raises when too damaged
    except BaseException:
        if audio_job is not None:
            audio_job.cancel()
        raise
    if audio_job is not None:
        audio, warnings = audio_job.finish()
        warnings += _audio_damage(audio, facts.duration_sec)
    else:
        audio, warnings = None, ["the video has no audio track: audio=None, audio components report empty"]
    warnings += video_warnings

    geometry = output_geometry(
        facts.width, facts.height, facts.rotation, analysis.max_short_side, facts.pixel_aspect
    )
    width, height = geometry.display_size
    components = {
        name: ComponentSampling(
            frame_indices=_component_indices(cp.indices, outcome.target_to_union, cp.unit == "frame_pair"),
            unit=cp.unit,
            budget=cp.budget,
        )
        for name, cp in plan.components.items()
    }
    metadata = FramesMetadata(
        run=identity,
        source=facts,
        analysis_fps=round(plan.analysis_fps, 6),
        analysis_width=width,
        analysis_height=height,
        frames_file=FRAMES_FILE,
        union_timestamps_sec=[round(t, 6) for t in outcome.union_times_sec],
        components=components,
        audio=audio,
        sampling_policy_version=identity.sampling_policy_version,
        decode=outcome.stats,
        warnings=warnings,
    )
    tmp = frames_dir / (METADATA_FILE + ".tmp")
    tmp.write_text(metadata.model_dump_json(indent=2))
    tmp.replace(frames_dir / METADATA_FILE)
    return metadata


def damage_shares(stats: DecodeStats, wanted: int) -> tuple[float, float]:
    """(share of targets lost, share of packets rejected) of one decode pass."""
    damaged = stats.decode_errors + stats.corrupt_frames > 0
    lost = stats.targets_missing + (stats.targets_off_grid if damaged else 0)
    lost_share = lost / wanted if wanted else 0.0
    seen = stats.frames_decoded + stats.decode_errors
    return lost_share, (stats.decode_errors / seen if seen else 0.0)


def _audio_damage(audio: AudioTrack | None, duration_sec: float) -> list[str]:
    if audio is None:
        return [f"{RUN_WARNING_PREFIX}the audio track could not be decoded; audio components report empty"]
    if duration_sec > 0 and audio.duration_sec < MIN_AUDIO_SHARE * duration_sec:
        return [
            f"{RUN_WARNING_PREFIX}only {audio.duration_sec:.1f}s of audio decodable in a "
            f"{duration_sec:.1f}s video"
        ]
    return []


def _decode_warnings(outcome: DecodeOutcome, plan: SamplingPlan, path: Path) -> list[str]:
    """Damaged-stream policy: skip what cannot be decoded, fail when too little is left."""
    stats = outcome.stats
    wanted = plan.union_size
    lost_share, error_share = damage_shares(stats, wanted)
    too_damaged = lost_share > MAX_LOST_SHARE or error_share > MAX_PACKET_ERROR_SHARE
    if wanted and (not outcome.union_times_sec or too_damaged):
        (outcome.frames_file).unlink(missing_ok=True)
        raise _invalid(
            path,
            f"{lost_share:.0%} of {wanted} sampled frames lost and {error_share:.0%} of packets rejected "
            f"({stats.decode_errors} damaged packet(s)); the stream is too damaged to analyse "
            f"(limits {MAX_LOST_SHARE:.0%} and {MAX_PACKET_ERROR_SHARE:.0%})",
        )
    warnings = []
    if lost_share > WARN_LOST_SHARE or error_share > WARN_PACKET_ERROR_SHARE:
        warnings.append(
            f"{RUN_WARNING_PREFIX}{lost_share:.0%} of sampled frames lost or replaced by a distant frame, "
            f"{error_share:.0%} of video packets rejected; features describe what survived"
        )
    if stats.decode_errors:
        warnings.append(f"video: {stats.decode_errors} damaged packet(s) skipped")
    if stats.corrupt_frames:
        warnings.append(f"video: {stats.corrupt_frames} decoded frame(s) flagged corrupt (concealed errors)")
    if stats.targets_missing:
        warnings.append(
            f"video: {stats.targets_missing} of {wanted} sampled frames lie past the decodable end; dropped"
        )
    if stats.targets_off_grid:
        warnings.append(
            f"video: {stats.targets_off_grid} sampled frame(s) are over half an analysis frame from their "
            f"target (largest gap {stats.max_target_error_sec:.3f}s): variable frame rate or lost frames"
        )
    if stats.passes > 1:
        warnings.append("video: skip_frame=NONREF lost precision on this stream; decoded every frame instead")
    return warnings
