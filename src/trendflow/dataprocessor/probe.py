"""Probing a media file: its facts from the headers, a few demuxed packets and one decoded frame
(SPEC 4-5). Nothing is decoded beyond the first frame: the input contract is checked from these."""

from __future__ import annotations

import math
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.identity import file_sha256
from trendflow.contracts.metadata import SourceFacts
from trendflow.dataprocessor.damage import invalid as _invalid
from trendflow.dataprocessor.decode import IO_TIMEOUT_SEC, select_video_stream

PROBE_TIMEOUT_SEC = 60.0
_PROBE_PACKETS = 240  # packets demuxed to detect variable frame rate (no decoding)
_FIRST_FRAME_PACKETS = 600  # packets a decodable stream must produce its first frame within
_VFR_SPREAD = 1.5  # 95th / 5th percentile of frame intervals above which the rate is variable
_REORDER_TAIL = 16  # presentation times at the end of the scan window that may lack B-frames


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
