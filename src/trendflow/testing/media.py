"""Generated test videos: ffmpeg's lavfi sources (testsrc2 picture, sine tone), with timeouts.

Tests, benchmarks and the scale test need videos of a chosen length, size, frame rate, codec,
rotation or frame-rate pattern; generating them keeps the repository small and every case
reproducible. Each function writes one file, returns its path, and raises `MediaToolError`
(with ffmpeg's stderr) instead of hanging: every subprocess has a timeout.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

# Encoder settings per codec name: what makes a small, fast, widely decodable file.
_CODEC_ARGS: dict[str, list[str]] = {
    "libx264": ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"],
    "libx265": [
        "-c:v",
        "libx265",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-x265-params",
        "log-level=error",
    ],
    "mpeg4": ["-c:v", "mpeg4", "-q:v", "5", "-pix_fmt", "yuv420p"],
    "mjpeg": ["-c:v", "mjpeg", "-q:v", "5", "-pix_fmt", "yuvj420p"],
    "libvpx-vp9": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-pix_fmt", "yuv420p"],
}
_AUDIO_ARGS: dict[str, list[str]] = {
    ".mp4": ["-c:a", "aac", "-b:a", "96k"],
    ".mov": ["-c:a", "aac", "-b:a", "96k"],
    ".mkv": ["-c:a", "aac", "-b:a", "96k"],
    ".webm": ["-c:a", "libopus", "-b:a", "64k"],
    ".avi": ["-c:a", "libmp3lame", "-b:a", "96k"],
}


class MediaToolError(RuntimeError):
    """ffmpeg failed or ran past its timeout while generating test media."""


def ffmpeg_binary() -> str:
    binary = shutil.which("ffmpeg")
    if binary is None:
        raise MediaToolError("ffmpeg is not installed (Debian: apt-get install ffmpeg)")
    return binary


def run_ffmpeg(args: list[str], timeout_sec: float) -> None:
    cmd = [ffmpeg_binary(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout_sec, check=False)
    except subprocess.TimeoutExpired as exc:
        raise MediaToolError(f"ffmpeg ran past {timeout_sec}s: {' '.join(cmd)}") from exc
    if proc.returncode != 0:
        raise MediaToolError(
            f"ffmpeg failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-2000:]}"
        )


def make_video(
    path: str | Path,
    duration: float = 6.0,
    width: int = 320,
    height: int = 240,
    fps: float = 25.0,
    audio: bool = True,
    rotate: int | None = None,
    codec: str = "libx264",
    audio_rate: int = 44100,
    gop: int | None = None,
    extra_video_args: list[str] | None = None,
    timeout_sec: float = 300.0,
) -> Path:
    """A testsrc2 picture (moving, asymmetric: orientation is visible) plus a 440 Hz sine tone.

    `rotate` is the clockwise display rotation a phone would record (the classic `rotate` tag:
    90 means "turn the coded picture 90 degrees clockwise to display it"); it is written as a
    display matrix, which is how current muxers store it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if codec not in _CODEC_ARGS:
        raise ValueError(f"unknown codec {codec!r}; known: {sorted(_CODEC_ARGS)}")
    target = path if not rotate else path.with_name(path.stem + ".norot" + path.suffix)
    args = ["-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={fps}:duration={duration}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={audio_rate}:duration={duration}"]
    args += _CODEC_ARGS[codec] + (extra_video_args or [])
    if gop:
        args += ["-g", str(gop)]
    if audio:
        args += [*_AUDIO_ARGS.get(path.suffix.lower(), ["-c:a", "aac"]), "-shortest"]
    run_ffmpeg([*args, str(target)], timeout_sec)
    if rotate:
        set_display_rotation(target, path, rotate)
        target.unlink()
    return path


def set_display_rotation(src: str | Path, dst: str | Path, rotate_cw: int) -> Path:
    """Remux `src` into `dst` (stream copy) with a display matrix rotating it `rotate_cw` clockwise.

    Debian's ffmpeg 5.1 ignores `-metadata:s:v rotate=` when muxing; PyAV writes the matrix.
    """
    import av

    if rotate_cw % 90:
        raise ValueError("rotation must be a multiple of 90 degrees")
    with av.open(str(src)) as source, av.open(str(dst), "w") as out:
        mapping = {}
        for stream in source.streams:
            if stream.type not in ("video", "audio"):
                continue
            mapping[stream.index] = out.add_stream_from_template(stream)
            if stream.type == "video":
                # PyAV's angle is counter-clockwise, the phone's `rotate` tag clockwise.
                mapping[stream.index].set_display_rotation(-rotate_cw % 360)
        for packet in source.demux():
            if packet.dts is None or packet.stream.index not in mapping:
                continue
            packet.stream = mapping[packet.stream.index]
            out.mux(packet)
    return Path(dst)


def make_vfr_video(
    path: str | Path,
    duration: float = 8.0,
    width: int = 320,
    height: int = 240,
    fast_fps: int = 30,
    slow_every: int = 5,
    fast_until_sec: float = 3.0,
    audio: bool = True,
    timeout_sec: float = 120.0,
) -> Path:
    """Variable frame rate: `fast_fps` until `fast_until_sec`, then every `slow_every`-th frame.

    The kept frames keep their original timestamps (`-fps_mode vfr`), as a phone or a screen
    recorder writes them, so the stream's frame durations change half-way.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    select = f"select='lt(t\\,{fast_until_sec})+not(mod(n\\,{slow_every}))'"
    args = ["-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={fast_fps}:duration={duration}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=330:sample_rate=44100:duration={duration}"]
    args += ["-vf", select, "-fps_mode", "vfr", *_CODEC_ARGS["libx264"]]
    if audio:
        args += ["-c:a", "aac", "-shortest"]
    run_ffmpeg([*args, str(path)], timeout_sec)
    return path


def make_long_cheap_video(path: str | Path, duration: float, timeout_sec: float = 300.0) -> Path:
    """A long video that costs little to make and to probe: 64x64 at 1 fps, no audio."""
    return make_video(
        path,
        duration=duration,
        width=64,
        height=64,
        fps=1,
        audio=False,
        gop=600,
        extra_video_args=["-preset", "ultrafast", "-tune", "zerolatency"],
        timeout_sec=timeout_sec,
    )


def truncate_copy(src: str | Path, dst: str | Path, keep_fraction: float) -> Path:
    """The first `keep_fraction` of the bytes of `src`: a download that stopped half-way."""
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: max(0, int(len(data) * keep_fraction))])
    return Path(dst)


def faststart_copy(src: str | Path, dst: str | Path, timeout_sec: float = 60.0) -> Path:
    """A stream copy with the index (moov) in front, so a truncated copy still opens."""
    run_ffmpeg(["-i", str(src), "-c", "copy", "-movflags", "+faststart", str(dst)], timeout_sec)
    return Path(dst)


# Luma 16 + 2N codes the frame number N (limited-range gray): frames decode to RGB 2N * 255/219,
# two luma steps apart so that encoder and YUV->RGB rounding never blur neighbours.
FRAME_INDEX_RGB_STEP = 2 * 255 / 219


def make_frame_index_video(
    path: str | Path,
    frames: int = 108,
    fps: float = 20.0,
    width: int = 64,
    height: int = 48,
    bframes: int = 3,
    x264_params: str | None = None,
    rotate: int | None = None,
    timeout_sec: float = 120.0,
) -> Path:
    """Frame N is a flat gray of luma 16 + 2N (N < 110): any decoded frame tells its own number,
    so a test can check that a stored frame is the one its timestamp says. H.264 near-lossless
    with B-frames, so skip_frame="NONREF" has frames to skip."""
    if frames > 110:
        raise ValueError("at most 110 frames: luma 16 + 2N must stay within 16..235")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    target = path if not rotate else path.with_name(path.stem + ".norot" + path.suffix)
    source = f"nullsrc=s={width}x{height}:r={fps}:d={frames / fps},geq=lum='16+2*N':cb=128:cr=128"
    args = ["-f", "lavfi", "-i", source, "-frames:v", str(frames)]
    args += ["-c:v", "libx264", "-qp", "2", "-bf", str(bframes), "-preset", "veryfast", "-pix_fmt", "yuv420p"]
    if x264_params:  # e.g. "b-pyramid=none:b-adapt=0": long runs of non-reference B-frames
        args += ["-x264-params", x264_params]
    run_ffmpeg([*args, str(target)], timeout_sec)
    if rotate:
        set_display_rotation(target, path, rotate)
        target.unlink()
    return path


def frame_index_of(rgb_frame: object) -> int:
    """The frame number a frame of `make_frame_index_video` shows."""
    import numpy as np

    return round(float(np.mean(rgb_frame)) / FRAME_INDEX_RGB_STEP)


def make_color_video(
    path: str | Path,
    color: str = "red",
    duration: float = 6.0,
    size: str = "96x64",
    timeout_sec: float = 60.0,
) -> Path:
    """A flat colour (any ffmpeg colour name): proves the stored channel order is RGB."""
    args = ["-f", "lavfi", "-i", f"color=c={color}:s={size}:r=10:d={duration}", *_CODEC_ARGS["libx264"]]
    run_ffmpeg([*args, str(path)], timeout_sec)
    return Path(path)


def make_audio_only(path: str | Path, duration: float = 6.0, timeout_sec: float = 60.0) -> Path:
    """A sine tone with no video stream (e.g. .m4a): not a video."""
    args = ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={duration}", "-c:a", "aac"]
    run_ffmpeg([*args, str(path)], timeout_sec)
    return Path(path)


def make_streamed_webm(path: str | Path, duration: float = 7.0, timeout_sec: float = 120.0) -> Path:
    """A WebM written to a pipe, as a browser's MediaRecorder writes it: no duration in its header."""
    cmd = [ffmpeg_binary(), "-nostdin", "-hide_banner", "-loglevel", "error", "-f", "lavfi",
           "-i", f"testsrc2=size=160x120:rate=25:duration={duration}", *_CODEC_ARGS["libvpx-vp9"],
           "-f", "webm", "-"]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout_sec, check=False)
    except subprocess.TimeoutExpired as exc:
        raise MediaToolError(f"ffmpeg ran past {timeout_sec}s: {' '.join(cmd)}") from exc
    if proc.returncode != 0:
        raise MediaToolError(
            f"ffmpeg failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-2000:]}"
        )
    Path(path).write_bytes(proc.stdout)
    return Path(path)
