"""Audio track extraction: an `ffmpeg` subprocess that runs while the video is being decoded.

The audio decode (mono, one fixed rate, float32) is a separate process so it overlaps the
video decode on another core; it has a timeout and can be cancelled. A file whose audio track
cannot be decoded still yields a valid run: `audio=None` plus a warning (SPEC 4: missing audio
is a normal input).
"""

from __future__ import annotations

import math
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import psutil

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.metadata import AudioSegment, AudioTrack
from trendflow.dataprocessor.state import faults

AUDIO_FILE = "audio.npy"
_MAX_LOGGED_ERRORS = 3


def audio_segments(duration_sec: float, window_sec: float) -> list[AudioSegment]:
    """Fixed windows `[k*w, min((k+1)*w, duration))`; the last one may be shorter."""
    count = math.ceil(duration_sec / window_sec - 1e-9) if duration_sec > 0 else 0
    return [
        AudioSegment(
            start_sec=round(k * window_sec, 6), end_sec=round(min((k + 1) * window_sec, duration_sec), 6)
        )
        for k in range(count)
    ]


class AudioExtraction:
    """`start()` launches ffmpeg; `finish()` waits (bounded) and writes `audio.npy`."""

    def __init__(
        self, media: Path, frames_dir: Path, sample_rate: int, window_sec: float, timeout_sec: float
    ):
        self.media = media
        self.frames_dir = frames_dir
        self.sample_rate = sample_rate
        self.window_sec = window_sec
        self.timeout_sec = timeout_sec
        self._raw = frames_dir / "audio.f32le"
        self._log = frames_dir / "audio.ffmpeg.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._started = 0.0

    def start(self) -> AudioExtraction:
        binary = shutil.which("ffmpeg")
        if binary is None:
            raise TrendFlowError(
                ErrorCode.DEPENDENCY_MISSING, "ffmpeg is not installed; the segmenter needs it for audio"
            )
        cmd = [
            binary,
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-threads",
            "1",
            "-i",
            str(self.media),
            "-map",
            "0:a:0",
            "-vn",
            "-sn",
            "-dn",
            "-ac",
            "1",
            "-ar",
            str(self.sample_rate),
            "-f",
            "f32le",
            "-c:a",
            "pcm_f32le",
            str(self._raw),
        ]
        with open(self._log, "wb") as log:
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log
            )
        self._started = time.monotonic()
        faults.crash_point("mid_audio_extract", "started")
        return self

    def cancel(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=10)
        self._cleanup()

    def _cleanup(self) -> None:
        self._raw.unlink(missing_ok=True)
        self._log.unlink(missing_ok=True)

    def finish(self) -> tuple[AudioTrack | None, list[str]]:
        """The track (or None) and warnings. Raises `timeout` when ffmpeg runs past its limit."""
        assert self._proc is not None, "start() first"
        remaining = max(1.0, self.timeout_sec - (time.monotonic() - self._started))
        try:
            returncode = self._proc.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            self.cancel()
            raise TrendFlowError(
                ErrorCode.TIMEOUT, f"audio extraction ran past {self.timeout_sec:.0f}s: {self.media.name}"
            ) from None
        errors = [line for line in self._log.read_text(errors="replace").splitlines() if line.strip()]
        warnings: list[str] = []
        samples = np.fromfile(self._raw, dtype="<f4") if self._raw.exists() else np.zeros(0, np.float32)
        self._cleanup()
        if returncode == -signal.SIGKILL:
            # The kernel's OOM killer (or an operator) killed ffmpeg: not a property of the media.
            raise TrendFlowError(
                ErrorCode.OUT_OF_MEMORY,
                f"audio extraction was killed (SIGKILL) at {psutil.virtual_memory().percent:.0f}% "
                "system memory in use",
            )
        if returncode != 0 or samples.size == 0:
            detail = "; ".join(errors[-_MAX_LOGGED_ERRORS:]) or f"ffmpeg exit code {returncode}"
            return None, [f"audio track could not be decoded, audio=None ({detail})"]
        if errors:
            warnings.append(
                f"audio: {len(errors)} decode error line(s) skipped by ffmpeg, e.g. {errors[0][:200]}"
            )
        if not np.isfinite(samples).all():
            # A damaged packet can decode to inf/NaN; downstream statistics must not see them.
            bad = int((~np.isfinite(samples)).sum())
            samples = np.nan_to_num(samples, nan=0.0, posinf=0.0, neginf=0.0)
            warnings.append(f"audio: {bad} non-finite sample(s) replaced by silence")
        np.save(self.frames_dir / AUDIO_FILE, samples.astype(np.float32, copy=False))
        duration = samples.size / self.sample_rate
        track = AudioTrack(
            path=AUDIO_FILE,
            sample_rate=self.sample_rate,
            num_samples=int(samples.size),
            duration_sec=duration,
            segments=audio_segments(duration, self.window_sec),
        )
        return track, warnings
