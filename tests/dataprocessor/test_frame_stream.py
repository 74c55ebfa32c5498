"""The frame bus (dataprocessor/frame_stream.py): order, backpressure, failures, deadline, replay.

A real decoder thread is stood in for by a thread that publishes small frames; the consumers are
real threads reading through `take`, exactly as components do.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.dataprocessor.frame_stream import FrameBus, StreamRestarted, StreamStopped


def frame(i: int) -> np.ndarray:
    return np.full((2, 2, 3), i % 256, dtype=np.uint8)


def publish_all(bus: FrameBus, targets: int, errors: list[BaseException]) -> threading.Thread:
    def decode() -> None:
        try:
            for j in range(targets):
                bus.publish(j, j / 4, frame(j))
            bus.end_pass({}, redo_all=False)
            bus.finish()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=decode, daemon=True)
    thread.start()
    return thread


def test_each_consumer_gets_its_own_targets_in_order_repeats_included() -> None:
    bus = FrameBus(time.monotonic() + 30, queue_frames=2)
    bus.subscribe("every_other", [0, 2, 4, 6])
    bus.subscribe("pairs", [1, 2, 2, 3, 5, 6])
    errors: list[BaseException] = []
    decoder = publish_all(bus, 8, errors)
    read: dict[str, list[int]] = {}

    def consume(name: str, batch: int) -> None:
        targets = bus.begin(name)
        got = []
        for start in range(0, len(targets), batch):
            chunk = targets[start : start + batch]
            got += [int(f[0, 0, 0]) for f in bus.take(name, chunk)]
        bus.wait_final(name)
        read[name] = got

    threads = [threading.Thread(target=consume, args=a) for a in (("every_other", 3), ("pairs", 2))]
    for t in threads:
        t.start()
    for t in [*threads, decoder]:
        t.join(10)
    assert not errors
    assert read == {"every_other": [0, 2, 4, 6], "pairs": [1, 2, 2, 3, 5, 6]}
    assert bus.times([0, 5]).tolist() == [0.0, 1.25]


def test_a_slow_consumer_blocks_the_decoder_at_its_queue_bound() -> None:
    bus = FrameBus(time.monotonic() + 30, queue_frames=3)
    bus.subscribe("slow", list(range(50)))
    published: list[int] = []
    original = bus.publish

    def counting(target: int, t: float, rgb: np.ndarray) -> None:
        original(target, t, rgb)
        published.append(target)

    bus.publish = counting  # type: ignore[method-assign]
    errors: list[BaseException] = []
    decoder = publish_all(bus, 50, errors)
    bus.begin("slow")
    time.sleep(0.5)  # the consumer reads nothing: the decoder must stop at the bound
    assert len(published) <= 3 + 1
    bus.take("slow", list(range(50)))
    bus.wait_final("slow")
    decoder.join(10)
    assert not errors and len(published) == 50 and bus.peak_queued <= 3


def test_a_consumer_that_stops_reading_does_not_stall_the_decoder() -> None:
    bus = FrameBus(time.monotonic() + 30, queue_frames=2)
    bus.subscribe("fails", list(range(40)))
    bus.subscribe("reads", list(range(40)))
    errors: list[BaseException] = []
    decoder = publish_all(bus, 40, errors)
    bus.begin("fails")
    bus.take("fails", [0, 1])
    bus.drain("fails")  # what the scheduler does when a component raises
    bus.begin("reads")
    frames = bus.take("reads", list(range(40)))
    decoder.join(10)
    assert not decoder.is_alive() and not errors and len(frames) == 40


def test_a_decode_failure_stops_every_waiting_consumer() -> None:
    bus = FrameBus(time.monotonic() + 30)
    bus.subscribe("a", [0, 1, 2])
    bus.subscribe("b", [2])
    bus.publish(0, 0.0, frame(0))
    outcomes: dict[str, str] = {}

    def consume(name: str) -> None:
        bus.begin(name)
        try:
            bus.take(name, bus.begin(name))
        except StreamStopped as exc:
            outcomes[name] = str(exc)

    threads = [threading.Thread(target=consume, args=(n,)) for n in "ab"]
    for t in threads:
        t.start()
    time.sleep(0.2)
    bus.fail(StreamStopped("run stopped after an earlier failure"))
    for t in threads:
        t.join(5)
    assert outcomes == {n: "run stopped after an earlier failure" for n in "ab"}
    with pytest.raises(StreamStopped):
        bus.wait_final("a")


def test_every_wait_ends_at_the_deadline() -> None:
    bus = FrameBus(time.monotonic() + 0.3)
    bus.subscribe("starved", [0])
    bus.begin("starved")
    started = time.monotonic()
    with pytest.raises(TrendFlowError) as err:
        bus.take("starved", [0])
    assert err.value.code is ErrorCode.TIMEOUT and time.monotonic() - started < 5
    blocked = FrameBus(time.monotonic() + 0.3, queue_frames=1)
    blocked.subscribe("never_reads", [0, 1, 2])
    with pytest.raises(TrendFlowError) as err:  # the decoder side times out too
        for j in range(3):
            blocked.publish(j, 0.0, frame(j))
    assert err.value.code is ErrorCode.TIMEOUT


def test_reading_out_of_stream_order_is_an_internal_error() -> None:
    bus = FrameBus(time.monotonic() + 5)
    bus.subscribe("c", [0, 1])
    bus.begin("c")
    with pytest.raises(TrendFlowError) as err:
        bus.take("c", [1])
    assert err.value.code is ErrorCode.INTERNAL


def test_a_shortened_stream_restarts_its_consumer_on_the_replay_pass() -> None:
    """A truncated decode settles only targets 0-1 of [0, 1, 2]: the consumer waiting for 2 is
    restarted, reads [0, 1] again from the replay pass, and nobody else is disturbed."""
    bus = FrameBus(time.monotonic() + 30)
    bus.subscribe("cut", [0, 1, 2])
    bus.subscribe("whole", [0, 1])
    for j in (0, 1):
        bus.publish(j, j / 4, frame(j))
    results: dict[str, object] = {}

    def consume() -> None:
        for _ in range(3):
            try:
                targets = bus.begin("cut")
                frames = bus.take("cut", targets)
                bus.wait_final("cut")
                results["cut"] = (targets, [int(f[0, 0, 0]) for f in frames])
                return
            except StreamRestarted:
                results["restarts"] = int(results.get("restarts", 0)) + 1  # type: ignore[call-overload]

    thread = threading.Thread(target=consume)
    thread.start()
    assert [int(f[0, 0, 0]) for f in bus.take("whole", bus.begin("whole"))] == [0, 1]
    time.sleep(0.2)
    assert bus.end_pass({"cut": [0, 1], "whole": [0, 1]}, redo_all=False) == ["cut"]
    for j in (0, 1):  # the replay pass
        bus.publish(j, j / 4, frame(j))
    assert bus.end_pass({"cut": [0, 1], "whole": [0, 1]}, redo_all=False) == []
    bus.finish()
    thread.join(10)
    bus.wait_final("whole")
    assert results == {"restarts": 1, "cut": ([0, 1], [0, 1])}


def test_consumers_share_the_decoded_frames_read_only() -> None:
    """No copy per consumer: every subscriber gets the published frame itself, and none can
    change it under the others."""
    bus = FrameBus(time.monotonic() + 30, queue_frames=4)
    bus.subscribe("a", [0, 1])
    bus.subscribe("b", [1])
    published = [frame(0), frame(1)]
    for j, rgb in enumerate(published):
        bus.publish(j, j / 4, rgb)
    bus.begin("a")
    bus.begin("b")
    from_a, from_b = bus.take("a", [0, 1]), bus.take("b", [1])
    assert from_a[1] is published[1] and from_b[0] is published[1]
    with pytest.raises(ValueError, match="read-only"):
        from_b[0][0, 0, 0] = 7
    assert int(from_a[1][0, 0, 0]) == 1
