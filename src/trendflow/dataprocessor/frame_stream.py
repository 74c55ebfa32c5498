"""The frame bus: decoded frames handed to the components that asked for them, as they decode.

The sampling plan is known before decoding (`plan_sampling`), so every streaming component
subscribes with its planned *targets* (indices into the plan's union) before the first frame.
The decoder publishes each settled target once (`publish(target, time, rgb)`); the bus puts it on
the bounded queue of every subscriber that wants it, in target order. A full queue blocks the
decoder (backpressure), so memory is bounded by queue sizes x frame size, not by video length.

A consumer reads its targets in order (`take`), exactly as it would read a `FrameStore`. It gets
the decoded frames themselves, shared by every subscriber and read-only: no copy per consumer
(at 4 fps of 480p a stacked copy per batch cost about a fifth of a streaming run's CPU). Every
blocking wait polls the run's deadline and the bus's state, so nothing hangs:
- a decode failure (`fail`) raises `StreamStopped` in every consumer;
- a consumer that is done or failed is drained (`drain`): it never stalls the decoder;
- a second decode pass (skip_frame lost precision, or a truncated stream that shortened a
  component's targets) restarts the affected consumers: their next read raises `StreamRestarted`
  and the component runs again on the new targets (docs/segmenter.md, "Streaming").
"""

from __future__ import annotations

import contextvars
import itertools
import queue
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.metadata import FramesMetadata
from trendflow.dataprocessor.frame_store import FrameStore
from trendflow.dataprocessor.resources import release_free_heap

QUEUE_FRAMES = 32  # frames waiting per subscriber (at 480p about 1.2 MB each)
TRIM_EVERY = 256  # published frames between two heap trims (resources.release_free_heap)
_POLL_SEC = 0.1

# The step whose thread is running (set by run/step.py): its frame reads and dependency reads
# are its own.
_CURRENT: contextvars.ContextVar[str | None] = contextvars.ContextVar("component", default=None)


def current_component() -> str | None:
    return _CURRENT.get()


def set_current_component(name: str | None) -> contextvars.Token[str | None]:
    return _CURRENT.set(name)


def reset_current_component(token: contextvars.Token[str | None]) -> None:
    _CURRENT.reset(token)


class StreamStopped(Exception):
    """The decode failed or the run stopped: a streaming consumer ends without a result."""


class StreamRestarted(Exception):
    """A new decode pass replaces the frames this consumer read: run it again."""


@dataclass
class _Subscription:
    name: str
    targets: list[int]
    maxsize: int
    generation: int = 0
    want: Counter[int] = field(default_factory=Counter)
    queue: queue.Queue[tuple[int, int, np.ndarray]] = field(init=False)
    draining: bool = False  # the consumer stopped reading: publishing skips it
    closed: bool = False  # the decoder will publish nothing more to it (this pass set)
    read_generation: int = -1  # the generation the consumer's current attempt reads
    position: int = 0  # targets the current attempt has read
    stash: list[tuple[int, int, np.ndarray]] = field(default_factory=list)  # read ahead by one

    def __post_init__(self) -> None:
        self.queue = queue.Queue(maxsize=self.maxsize)
        self.want = Counter(self.targets)

    def clear(self) -> None:
        self.stash.clear()
        while True:
            try:
                self.queue.get_nowait()
            except queue.Empty:
                return


class FrameBus:
    """Bounded per-consumer queues between one decoder thread and the streaming components."""

    def __init__(self, deadline: float, queue_frames: int = QUEUE_FRAMES) -> None:
        self.deadline = deadline
        self.queue_frames = max(1, queue_frames)
        self._subs: dict[str, _Subscription] = {}
        self._times: dict[int, float] = {}
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._error: BaseException | None = None
        self.peak_queued = 0  # most frames one subscriber held at once (tests check the bound)
        self._published = 0

    # -- set-up ----------------------------------------------------------------------------
    def subscribe(self, name: str, targets: list[int]) -> None:
        """Before the decode starts: `name` reads `targets` (non-decreasing plan indices)."""
        if any(b < a for a, b in itertools.pairwise(targets)):
            raise TrendFlowError(ErrorCode.INTERNAL, f"{name}: streamed targets must be in order")
        self._subs[name] = _Subscription(name, list(targets), self.queue_frames)

    def streams(self, name: str | None) -> bool:
        return name is not None and name in self._subs

    @property
    def names(self) -> list[str]:
        return list(self._subs)

    # -- the decoder's side ----------------------------------------------------------------
    def publish(self, target: int, time_sec: float, rgb: np.ndarray) -> None:
        """Target `target` is settled: hand its frame to every subscriber that wants it."""
        self._times[target] = time_sec
        rgb.flags.writeable = False  # shared by every subscriber: none may change it in place
        for sub in self._subs.values():
            for _ in range(sub.want.get(target, 0)):
                self._put(sub, (sub.generation, target, rgb))
        self._published += 1
        if self._published % TRIM_EVERY == 0:
            release_free_heap()

    def _put(self, sub: _Subscription, item: tuple[int, int, np.ndarray]) -> None:
        while not (sub.draining or sub.closed):
            try:
                sub.queue.put(item, timeout=_POLL_SEC)
                self.peak_queued = max(self.peak_queued, sub.queue.qsize())
                return
            except queue.Full:
                self._check_deadline("the decoder waited on component " + sub.name)

    def end_pass(self, final_targets: dict[str, list[int]], redo_all: bool) -> list[str]:
        """A decode pass ended. Subscribers whose targets changed (a truncated stream) or, with
        `redo_all`, every live one, restart on the next pass; the others are closed. Returns the
        restarted names: the caller decodes again when there are any."""
        restarted = []
        with self._lock:
            for name, sub in self._subs.items():
                new = final_targets.get(name, sub.targets)
                if not sub.draining and (redo_all or new != sub.targets):
                    sub.generation += 1
                    sub.targets, sub.want = list(new), Counter(new)
                    sub.clear()
                    restarted.append(name)
                else:
                    sub.closed = True
        return restarted

    def finish(self) -> None:
        """Decoding is over and metadata.json is stored: consumers may record their results."""
        for sub in self._subs.values():
            sub.closed = True
        self._done.set()

    def fail(self, error: BaseException) -> None:
        """The decode failed: every consumer's next (or current) wait raises StreamStopped."""
        self._error = error
        for sub in self._subs.values():
            sub.closed = True
            sub.clear()
        self._done.set()

    # -- the consumers' side ---------------------------------------------------------------
    def _sub(self, name: str | None) -> _Subscription:
        if name is None or name not in self._subs:
            raise TrendFlowError(ErrorCode.INTERNAL, f"component {name} does not read the frame stream")
        return self._subs[name]

    def begin(self, name: str) -> list[int]:
        """A component's attempt starts reading: its targets, from the first."""
        sub = self._sub(name)
        with self._lock:
            sub.read_generation, sub.position, sub.draining = sub.generation, 0, False
            return list(sub.targets)

    def take(self, name: str | None, indices: list[int]) -> list[np.ndarray]:
        """The next `len(indices)` frames of `name`'s stream, which must be these targets: the
        published (read-only) frames themselves, not a stacked copy."""
        sub = self._sub(name)
        expected = sub.targets[sub.position : sub.position + len(indices)]
        if list(indices) != expected:
            raise TrendFlowError(
                ErrorCode.INTERNAL,
                f"{sub.name} read frames {list(indices)[:4]} out of stream order (next: {expected[:4]})",
            )
        frames = [self._next(sub) for _ in indices]
        sub.position += len(indices)
        return frames

    def _next(self, sub: _Subscription) -> np.ndarray:
        while True:
            self._raise_if_stopped(sub)
            if sub.stash:
                item = sub.stash.pop()
            else:
                try:
                    item = sub.queue.get(timeout=_POLL_SEC)
                except queue.Empty:
                    self._check_deadline(f"component {sub.name} waited for frames")
                    self._raise_if_stopped(sub)
                    if sub.closed and sub.queue.empty():
                        raise TrendFlowError(
                            ErrorCode.INTERNAL, f"{sub.name}: the stream ended before its frames came"
                        ) from None
                    continue
            generation, _, rgb = item
            if generation == sub.read_generation:
                return rgb
            if generation > sub.read_generation:  # a replay pass began: keep its first frame
                sub.stash.append(item)
                raise StreamRestarted(sub.name)

    def _raise_if_stopped(self, sub: _Subscription) -> None:
        if self._error is not None:
            raise StreamStopped(str(self._error))
        if sub.generation != sub.read_generation:
            raise StreamRestarted(sub.name)

    def times(self, indices: Any) -> np.ndarray:
        """Times (seconds) of the frames settled for these targets."""
        try:
            return np.asarray([self._times[int(i)] for i in indices], dtype=np.float64)
        except KeyError as exc:
            raise TrendFlowError(ErrorCode.INTERNAL, f"target {exc} has no frame yet") from None

    def drain(self, name: str) -> None:
        """The consumer stopped reading (done or failed): never block the decoder on it."""
        sub = self._subs.get(name)
        if sub is not None:
            sub.draining = True
            sub.clear()

    def wait_final(self, name: str) -> None:
        """Block until decoding is over and metadata.json is stored; StreamRestarted when a new
        pass replaced this consumer's frames, StreamStopped when the decode failed."""
        sub = self._sub(name)
        if sub.position != len(sub.targets) and sub.generation == sub.read_generation:
            self.drain(name)  # read less than its stream: nothing more will be read
        while not self._done.wait(_POLL_SEC):
            self._check_deadline(f"component {name} waited for the segmenter")
            if sub.generation != sub.read_generation:
                raise StreamRestarted(name)
        self._raise_if_stopped(sub)

    def _check_deadline(self, what: str) -> None:
        if time.monotonic() > self.deadline:
            raise TrendFlowError(ErrorCode.TIMEOUT, f"{what} past the run's deadline")


class StreamFrames:
    """`ctx.frames` of a streaming run: a component that reads the stream gets its frames from the
    bus (blocking until they are decoded); any other reader (a component that depends on another
    component, so it starts after the decode) reads the frames file once the segmenter stored it."""

    def __init__(self, bus: FrameBus, frames_dir: Path) -> None:
        self.bus = bus
        self.frames_dir = frames_dir
        self.store: FrameStore | None = None

    def _reader(self) -> FrameStore:
        if self.store is None:
            raise TrendFlowError(ErrorCode.DEPENDENCY_MISSING, "the segmenter stored no frames file")
        return self.store

    def get_frames(self, indices: Sequence[int]) -> Sequence[np.ndarray]:
        """The frames (each RGB uint8 (H, W, 3), read-only) in the order asked: the stream's own
        frames for a component that reads the stream, else the frames file's batch."""
        name = current_component()
        if self.bus.streams(name):
            return self.bus.take(name, list(indices))
        return self._reader().get_batch(indices)

    def get_batch(self, indices: Sequence[int]) -> np.ndarray:
        """Frames (n, H, W, 3) RGB uint8 as one array (a copy the caller may change)."""
        frames = self.get_frames(indices)
        if isinstance(frames, np.ndarray):
            return frames
        if not frames:
            return np.empty((0, 0, 0, 3), dtype=np.uint8)
        return np.stack(frames)

    def get(self, i: int) -> np.ndarray:
        return self.get_batch([i])[0]

    def close(self) -> None:
        if self.store is not None:
            self.store.close()

    def delete(self, metadata: FramesMetadata | None, include_audio: bool = True) -> None:
        """Scratch cleanup, as `FrameStore.delete` (the frames file may never have existed)."""
        if self.store is not None:
            self.store.delete(include_audio)
        elif metadata is not None:
            FrameStore(self.frames_dir, metadata).delete(include_audio)
