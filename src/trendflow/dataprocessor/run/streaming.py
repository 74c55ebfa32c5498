"""A streaming run: the components start while the segmenter decodes (docs/orchestrator.md).

`StreamingSegment` is what the scheduler hands `segment()` (its `StreamHooks`): when the plan is
made it subscribes the streaming components to a `FrameBus` and gives the run context a
provisional metadata (indices = the plan's targets) and the stream as `ctx.frames`; when the
audio is extracted the audio components may start. It also holds the events the scheduler waits
on and the one rule every early-started component obeys: its record waits for the segmenter's.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.metadata import FramesMetadata
from trendflow.dataprocessor.component import RunContext
from trendflow.dataprocessor.frame_store import FrameStore
from trendflow.dataprocessor.frame_stream import FrameBus, StreamFrames, StreamStopped
from trendflow.dataprocessor.graph import Profile
from trendflow.dataprocessor.run.artifacts import load_audio

_POLL_SEC = 0.1
STOPPED = "run stopped after an earlier failure"


def stream_consumers(profile: Profile, reused: set[str]) -> list[str]:
    """Components that read the frame stream: they sample frames and depend on the segmenter
    alone (one that waits for another component would block the decoder on its full queue)."""
    return [
        name
        for name in profile.order
        if name != "segmenter"
        and name not in reused
        and profile.components[name].sampling is not None
        and set(profile.components[name].depends_on) <= {"segmenter"}
    ]


class StreamingSegment:
    """The segmenter's hooks in a streaming run and the events the scheduler starts work on."""

    def __init__(
        self, ctx: RunContext, frames_dir: Path, consumers: list[str], keep_frames_file: bool, timeout: float
    ) -> None:
        self.ctx = ctx
        self.frames_dir = frames_dir
        self.consumers = consumers
        self.keep_frames_file = keep_frames_file
        self.deadline = time.monotonic() + timeout
        self.bus: FrameBus | None = None
        self.planned = threading.Event()  # frames will flow: the streaming consumers may start
        self.audio_ready = threading.Event()  # the audio components may start
        self.done = threading.Event()  # the segmenter is recorded (ok or not)
        self.failed = False
        self._dropped: set[str] = set()  # consumers that will never read (skipped before the plan)
        self._lock = threading.Lock()

    # -- StreamHooks -----------------------------------------------------------------------
    def on_plan(self, provisional: FramesMetadata) -> FrameBus | None:
        bus = FrameBus(self.deadline)
        with self._lock:
            for name in self.consumers:
                if name in provisional.components and name not in self._dropped:
                    bus.subscribe(name, provisional.components[name].frame_indices)
            self.bus = bus
        self.ctx.metadata = provisional
        self.ctx.frames = StreamFrames(bus, self.frames_dir)
        self.planned.set()
        return bus

    def on_audio(self, provisional: FramesMetadata) -> None:
        self.ctx.audio_loader = lambda: load_audio(self.frames_dir, provisional)
        self.ctx.metadata = provisional
        self.audio_ready.set()

    # -- the scheduler's side --------------------------------------------------------------
    def may_start(self, name: str, reads_frames: bool) -> bool:
        """Whether `name`, whose one unrecorded dependency is the segmenter, may start now."""
        if name in self.consumers:
            return self.planned.is_set()
        return not reads_frames and self.audio_ready.is_set()

    def segmenter_finished(self, ok: bool, metadata: FramesMetadata | None) -> None:
        """The segmenter's record is written: early components may record theirs (or stop)."""
        self.failed = not ok
        frames = self.ctx.frames
        if ok and metadata is not None and isinstance(frames, StreamFrames) and self.keep_frames_file:
            frames.store = FrameStore(self.frames_dir, metadata)
        if self.bus is not None:
            if ok:
                self.bus.finish()
            else:
                self.bus.fail(StreamStopped(STOPPED))
        self.planned.set()
        self.audio_ready.set()
        self.done.set()

    def wait_segmenter(self, name: str) -> None:
        """A component that started early records nothing before the segmenter's metadata is
        stored; StreamStopped when the segmenter failed, StreamRestarted on a replay pass."""
        if self.bus is not None and self.bus.streams(name):
            self.bus.wait_final(name)
            return
        while not self.done.wait(_POLL_SEC):
            if time.monotonic() > self.deadline:
                raise TrendFlowError(ErrorCode.TIMEOUT, f"{name} waited for the segmenter past the deadline")
        if self.failed:
            raise StreamStopped(STOPPED)

    def drain(self, name: str) -> None:
        """`name` reads no more frames; one dropped before the plan is never subscribed."""
        with self._lock:
            self._dropped.add(name)
            if self.bus is not None:
                self.bus.drain(name)
