"""The one decode pass: keep the union's frames, resized and RGB, written straight to disk.

Why it is fast (docs/segmenter.md has the measurements):
- frame threading (`thread_type="AUTO"`) with 16 frame threads by default (`threads`;
  `analysis.decode_threads`): with non-reference frames skipped, each decoded frame waits on the
  one before it, and FFmpeg's automatic count (cores + 1) leaves cores idle on that chain. On the
  10-minute 720p film, 2 cores: 14.6-15.5 s with 3 threads, 12.8-13.5 s with 6, 11.8 s with 16, at
  the same CPU time. Frame threading is bit-exact: the frames are the same at any count;
- only the chosen frames are converted (swscale: YUV -> RGB24 and the downscale in one call,
  `AREA` interpolation); every other decoded frame is dropped untouched;
- `skip_frame="NONREF"` (no non-reference B-frames) when the union is sparse next to the source
  rate (analysis fps <= source fps / 4): the nearest decoded frame is then at most two source
  frames from its target, under half an analysis frame. A safety check compares every chosen
  frame with the packets' timestamps; if skipping cost precision, the pass is redone in full;
- decoding stops after the last target.
Each settled target goes to an optional `sink` as it is decoded (the frame bus of a streaming run,
frame_stream.py) and, when a frames file is asked for, to a `.npy` written frame by frame, so a
20-minute union never sits in memory at once.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.metadata import DecodeStats
from trendflow.dataprocessor.state import faults

# Decoders whose non-reference frames are B-frames that skip_frame="NONREF" can drop.
NONREF_CODECS = frozenset({"h264", "hevc", "mpeg2video", "mpeg4", "mpeg1video"})
IO_TIMEOUT_SEC = 30.0
_MAX_DEMUX_ERRORS = 50
_pass_counter = {"started": 0}
# (target index, time from start in seconds, RGB uint8 frame): called once per target, in order.
FrameSink = Callable[[int, float, np.ndarray], None]


def select_video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream | None:
    """The first video stream that is not cover art (an attached picture is not a video)."""
    for stream in container.streams.video:
        if av.stream.Disposition.attached_pic not in stream.disposition:
            return stream
    return None


def decode_passes_started() -> int:
    """How many decode passes this process has started (tests prove a rejection decoded nothing)."""
    return _pass_counter["started"]


@dataclass(frozen=True)
class OutputGeometry:
    """Coded frame -> stored frame: resize to (resize_w, resize_h), then rotate `rotation_cw`."""

    resize_w: int
    resize_h: int
    rotation_cw: int

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) of stored frames."""
        if self.rotation_cw in (90, 270):
            return self.resize_h, self.resize_w
        return self.resize_w, self.resize_h


def output_geometry(
    width: int, height: int, rotation_cw: int, max_short_side: int, pixel_aspect: float = 1.0
) -> OutputGeometry:
    """Short side <= max_short_side (and <= 1080), never upscaled, aspect kept (square pixels)."""
    display_w = width * pixel_aspect
    limit = min(max_short_side, 1080)
    scale = min(1.0, limit / min(display_w, height))
    resize_w = max(2, round(display_w * scale))
    resize_h = max(2, round(height * scale))
    return OutputGeometry(resize_w, resize_h, rotation_cw % 360)


@dataclass
class DecodeOutcome:
    frames_file: Path | None
    union_times_sec: list[float]
    target_to_union: list[int | None]
    stats: DecodeStats
    # True when skip_frame moved a chosen frame over half an analysis frame from its target
    # although the stream had a frame close enough: the caller redoes the pass in full.
    skip_frame_lost_precision: bool = False


@dataclass
class _Picked:
    serial: int  # decode order of the frame: equal serial = same frame
    time: float
    frame: av.VideoFrame


class _NpyFrameWriter:
    """Appends (H, W, 3) uint8 frames to a `.npy` file with plain writes: the frames go to the
    page cache, not to this process's resident memory (a memmap would count them as RSS)."""

    def __init__(self, path: Path, capacity: int, height: int, width: int):
        self.path = path
        self.frame_shape = (height, width, 3)
        self.count = 0
        self._file = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._header(capacity)
        self._header_len = self._file.tell()

    def _header(self, rows: int) -> None:
        header = {"descr": "|u1", "fortran_order": False, "shape": (rows, *self.frame_shape)}
        np.lib.format.write_array_header_1_0(self._file, header)

    def append(self, rgb: np.ndarray) -> None:
        self._file.write(np.ascontiguousarray(rgb).data)
        self.count += 1

    def close(self) -> None:
        """Fix the header to the frames actually written (numpy pads headers for this)."""
        self._file.seek(0)
        self._header(self.count)
        if self._file.tell() != self._header_len:  # never with numpy's padding; stay correct anyway
            self._file.close()
            _rewrite(self.path, self._header_len, self.count, self.frame_shape)
            return
        self._file.truncate(self._header_len + self.count * int(np.prod(self.frame_shape)))
        self._file.close()

    def abort(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


def _rewrite(path: Path, offset: int, rows: int, frame_shape: tuple[int, int, int]) -> None:
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=offset, shape=(rows, *frame_shape))
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, np.asarray(data))
    del data
    tmp.replace(path)


class _RgbConverter:
    """Decoded frame -> stored RGB: downscale in YUV (cheap, SIMD), then YUV -> RGB at the small
    size; measured 4x faster than swscale's one-step scale+convert to rgb24 (docs/segmenter.md)."""

    def __init__(self, geometry: OutputGeometry):
        self.geometry = geometry
        self.scaler = VideoReformatter()
        self.to_rgb = VideoReformatter()

    def __call__(self, frame: av.VideoFrame) -> np.ndarray:
        g = self.geometry
        name = frame.format.name
        if (frame.width, frame.height) == (g.resize_w, g.resize_h):
            small = frame
        elif name.startswith(("yuv", "nv")) and not name.startswith("yuva"):
            # Keep 4:2:0 (full or limited range as decoded); other YUV layouts go to yuv420p.
            planar = name if name in ("yuv420p", "yuvj420p") else "yuv420p"
            small = self.scaler.reformat(frame, g.resize_w, g.resize_h, planar, interpolation="AREA")
        else:
            small = self.scaler.reformat(frame, g.resize_w, g.resize_h, "rgb24", interpolation="AREA")
        rgb = self.to_rgb.reformat(small, format="rgb24").to_ndarray()
        if g.rotation_cw:
            rgb = np.rot90(rgb, k=-(g.rotation_cw // 90))  # rot90 turns counter-clockwise
        return rgb


class _UnionWriter:
    """Assigns targets to decoded frames (nearest wins) and writes each chosen frame once."""

    def __init__(
        self,
        targets: list[float],
        geometry: OutputGeometry,
        path: Path | None,
        tolerance: float,
        sink: FrameSink | None = None,
    ):
        self.targets = targets
        self.tolerance = tolerance
        width, height = geometry.display_size
        self.out = _NpyFrameWriter(path, len(targets), height, width) if path is not None else None
        self.sink = sink
        self.last_rgb: np.ndarray | None = None
        self.convert = _RgbConverter(geometry)
        self.next_target = 0
        self.target_to_union: list[int | None] = [None] * len(targets)
        self.union_times: list[float] = []
        self.last_serial = -1
        self.errors: list[float] = []

    @property
    def done(self) -> bool:
        return self.next_target >= len(self.targets)

    def _store(self, picked: _Picked) -> int:
        if picked.serial != self.last_serial:
            self.last_rgb = self.convert(picked.frame)
            if self.out is not None:
                self.out.append(self.last_rgb)
            self.union_times.append(picked.time)
            self.last_serial = picked.serial
            faults.crash_point("mid_decode", len(self.union_times))
        return len(self.union_times) - 1

    def _assign(self, picked: _Picked) -> None:
        j = self.next_target
        self.target_to_union[j] = self._store(picked)
        self.errors.append(abs(picked.time - self.targets[j]))
        self.next_target += 1
        if self.sink is not None and self.last_rgb is not None:
            self.sink(j, picked.time, self.last_rgb)

    def offer(self, previous: _Picked | None, current: _Picked) -> None:
        """A new decoded frame: settle every target it reaches (the nearer of it and its predecessor)."""
        while not self.done and current.time >= self.targets[self.next_target] - 1e-6:
            target = self.targets[self.next_target]
            use_previous = previous is not None and target - previous.time <= current.time - target
            self._assign(previous if use_previous and previous is not None else current)

    def finish(self, last: _Picked | None) -> int:
        """End of stream: targets within tolerance of the last frame take it, the rest are missing."""
        missing = 0
        while not self.done:
            if last is not None and self.targets[self.next_target] - last.time <= self.tolerance:
                self._assign(last)
            else:
                missing += 1
                self.errors.append(0.0)
                self.next_target += 1
        if self.out is not None:
            self.out.close()
        return missing

    def abort(self) -> None:
        if self.out is not None:
            self.out.abort()


def _frame_time(frame: av.VideoFrame, serial: int, fps: float) -> float:
    return float(frame.time) if frame.time is not None else serial / fps


@dataclass
class _PassCounters:
    decoded: int = 0
    decode_errors: int = 0
    demux_errors: int = 0
    corrupt: int = 0
    start: float | None = None
    packet_times: list[float] = field(default_factory=list)


def _feed(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    writer: _UnionWriter,
    source_fps: float,
    deadline: float,
    media: Path,
) -> tuple[_PassCounters, _Picked | None]:
    """Demux and decode until every target is settled or the stream ends. Damaged packets are
    skipped and counted; a demuxer error resumes reading after the damaged bytes."""
    n = _PassCounters()
    n.start = float(stream.start_time * stream.time_base) if stream.start_time is not None else None
    previous: _Picked | None = None
    packets = container.demux(stream)
    while not writer.done:
        if time.monotonic() > deadline:
            raise TrendFlowError(ErrorCode.TIMEOUT, f"decoding {media.name} ran past its time limit")
        try:
            packet = next(packets)
        except StopIteration:
            break
        except av.FFmpegError:
            n.demux_errors += 1
            if n.demux_errors > _MAX_DEMUX_ERRORS:
                break
            packets = container.demux(stream)
            continue
        if packet.pts is not None and packet.time_base is not None:
            n.packet_times.append(float(packet.pts * packet.time_base))
        try:
            frames = stream.codec_context.decode(packet)  # the final empty packet flushes
        except av.FFmpegError:
            n.decode_errors += 1
            continue
        for frame in frames:
            t = _frame_time(frame, n.decoded, source_fps)
            if n.start is None:
                n.start = t
            n.decoded += 1
            n.corrupt += bool(frame.is_corrupt)
            current = _Picked(n.decoded, t - n.start, frame)
            writer.offer(previous, current)
            previous = current
    return n, previous


def decode_pass(
    media: Path,
    targets_sec: list[float],
    geometry: OutputGeometry,
    frames_file: Path | None,
    analysis_fps: float,
    source_fps: float,
    skip_frame: str | None,
    deadline: float,
    threads: int = 0,
    sink: FrameSink | None = None,
) -> DecodeOutcome:
    """Decode `media` once, keeping the frame nearest to each target time (seconds from start):
    written to `frames_file` (when given) and handed to `sink` (when given) as it is decoded."""
    _pass_counter["started"] += 1
    tolerance = 0.5 / analysis_fps + 1e-3
    writer = _UnionWriter(targets_sec, geometry, frames_file, tolerance, sink)
    try:
        with av.open(
            str(media), timeout=(IO_TIMEOUT_SEC, IO_TIMEOUT_SEC), metadata_errors="replace"
        ) as container:
            stream = select_video_stream(container)
            if stream is None:
                raise TrendFlowError(ErrorCode.INVALID_MEDIA, f"{media.name}: no video stream")
            stream.thread_type = "AUTO"  # frame + slice threads
            stream.codec_context.thread_count = threads  # 0: FFmpeg's choice (cores + 1)
            if skip_frame:
                stream.codec_context.skip_frame = skip_frame
            n, last = _feed(container, stream, writer, source_fps, deadline, media)
        missing = writer.finish(last)
    except BaseException:
        writer.abort()
        raise
    off_grid, needs_full_decode = 0, False
    packet_times = sorted(t - (n.start or 0.0) for t in n.packet_times)
    for j, err in enumerate(writer.errors):
        if err > tolerance and writer.target_to_union[j] is not None:
            off_grid += 1
            needs_full_decode |= bool(skip_frame) and _nearest_gap(packet_times, targets_sec[j]) <= tolerance
    stats = DecodeStats(
        passes=1,
        skip_frame=skip_frame or "DEFAULT",
        frames_decoded=n.decoded,
        decode_errors=n.decode_errors + n.demux_errors,
        corrupt_frames=n.corrupt,
        targets_missing=missing,
        targets_off_grid=off_grid,
        max_target_error_sec=round(max(writer.errors, default=0.0), 6),
    )
    return DecodeOutcome(frames_file, writer.union_times, writer.target_to_union, stats, needs_full_decode)


def _nearest_gap(sorted_times: list[float], target: float) -> float:
    """Distance from `target` to the nearest packet time (a frame that exists in the stream)."""
    if not sorted_times:
        return float("inf")
    i = bisect.bisect_left(sorted_times, target)
    near = sorted_times[max(0, i - 1) : i + 1]
    return min(abs(t - target) for t in near)
