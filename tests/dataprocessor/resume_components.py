"""Test-only components and graph for the crash/resume and resource tests.

Small deterministic components on every processor (frames in batches, a dependency read through
the state chain, audio windows, metadata text) run after the real segmenter, so the crash tests
exercise the orchestrator and the state without depending on the product components' internals.
Imported by the tests and by the victim subprocess (`python -c "import tests.dataprocessor.
resume_components; ..."`), so both register the same components. In a subprocess,
TRENDFLOW_TEST_GRAPH points the CLI at the test graph (the CLI has no --graph option).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

import trendflow.dataprocessor.graph as graph_module
from trendflow.dataprocessor.component import (
    Component,
    ComponentOutput,
    NoParams,
    RunContext,
    masked,
    register,
)
from trendflow.dataprocessor.outputs import series, vector


def _batches(indices: list[int], size: int) -> list[list[int]]:
    return [indices[i : i + size] for i in range(0, len(indices), size)]


@register
class FrameMean(Component):
    name = "test_frame_mean"
    processor = "visual"
    outputs = (vector("rgb_mean", 3),)

    def run(self, ctx: RunContext) -> ComponentOutput:
        assert ctx.frames is not None
        batches = _batches(ctx.frame_indices(self.name), 8)
        means = [ctx.frames.get_batch(b).reshape(len(b), -1, 3).mean(axis=1) for b in batches]
        return ComponentOutput(
            arrays=masked("rgb_mean", np.concatenate(means)),
            units_processed=sum(len(b) for b in batches),
            batch_sizes=[len(b) for b in batches],
        )


@register
class FrameEnergy(Component):
    """Reads its dependency through the state chain; batches of 4."""

    name = "test_frame_energy"
    processor = "visual"
    outputs = series("energy", "mean_of_means")

    def run(self, ctx: RunContext) -> ComponentOutput:
        dependency, _ = ctx.dependency("test_frame_mean")
        assert ctx.frames is not None
        batches = _batches(ctx.frame_indices(self.name), 4)
        energy = [ctx.frames.get_batch(b).astype(np.float32).reshape(len(b), -1).std(axis=1) for b in batches]
        return ComponentOutput(
            arrays={
                **masked("energy", np.concatenate(energy)),
                **masked("mean_of_means", [float(dependency["rgb_mean"].mean())]),
            },
            units_processed=sum(len(b) for b in batches),
            batch_sizes=[len(b) for b in batches],
        )


@register
class AudioRms(Component):
    name = "test_audio_rms"
    processor = "audio"
    outputs = series("rms")

    def run(self, ctx: RunContext) -> ComponentOutput:
        audio = ctx.audio()
        assert ctx.metadata is not None and ctx.metadata.audio is not None and audio is not None
        rate = ctx.metadata.audio.sample_rate
        windows = ctx.metadata.audio.segments
        rms = [
            float(
                np.sqrt(
                    np.mean(
                        np.square(audio[int(w.start_sec * rate) : int(w.end_sec * rate)], dtype=np.float64)
                    )
                )
            )
            for w in windows
        ]
        return ComponentOutput(
            arrays=masked("rms", rms), units_processed=len(windows), batch_sizes=[len(windows)]
        )


@register
class TextLength(Component):
    name = "test_text_length"
    processor = "text"
    outputs = series("lengths")

    def run(self, ctx: RunContext) -> ComponentOutput:
        info = ctx.source_info
        lengths = [len(info.title or ""), len(info.description or ""), len(info.tags)]
        return ComponentOutput(arrays=masked("lengths", lengths), units_processed=1, batch_sizes=[1])


@register
class MemoryHog(Component):
    """Runs out of memory, as a too large batch would."""

    name = "test_memory_hog"
    processor = "audio"

    def run(self, ctx: RunContext) -> ComponentOutput:
        raise MemoryError("test: allocation failed")


class BatchBufferParams(NoParams):
    ram_share_per_frame: float


@register
class BatchBuffer(Component):
    """A working buffer per batch, sized from the machine's RAM (`params.ram_share_per_frame` of it
    per frame): a batch too large for the machine fails its allocation with a real MemoryError."""

    name = "test_batch_buffer"
    processor = "visual"
    outputs = series("mean")
    Params = BatchBufferParams

    def run(self, ctx: RunContext) -> ComponentOutput:
        import psutil

        assert ctx.frames is not None
        batch = int(self.spec.batching["batch_size"])
        per_frame = int(psutil.virtual_memory().total * self.params.ram_share_per_frame)
        means, sizes = [], []
        for chunk in _batches(ctx.frame_indices(self.name), batch):
            buffer = np.empty(per_frame * batch, dtype=np.uint8)  # address space only, never touched
            del buffer
            means.append(ctx.frames.get_batch(chunk).reshape(len(chunk), -1).mean(axis=1))
            sizes.append(len(chunk))
        return ComponentOutput(
            arrays=masked("mean", np.concatenate(means)), units_processed=sum(sizes), batch_sizes=sizes
        )


@register
class KilledChild(Component):
    """Its helper process is killed with SIGKILL, as the kernel's OOM killer does."""

    name = "test_killed_child"
    processor = "text"

    def run(self, ctx: RunContext) -> ComponentOutput:
        kill_self = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
        subprocess.run([sys.executable, "-c", kill_self], check=True, timeout=60)
        raise AssertionError("unreachable: the child was killed")


def crash_graph() -> dict[str, Any]:
    def component(processor: str, unit: str, depends_on: list[str], **extra: Any) -> dict[str, Any]:
        return {
            "processor": processor,
            "unit": unit,
            "description": "test",
            "depends_on": depends_on,
            **extra,
        }

    components = {
        "segmenter": {"processor": "segmenter", "unit": "video", "description": "the real segmenter"},
        "test_frame_mean": component("visual", "frame", ["segmenter"], sampling={"fps": 2.0}),
        "test_frame_energy": component("visual", "frame", ["test_frame_mean"], sampling={"count": 10}),
        "test_audio_rms": component("audio", "audio_window", ["segmenter"]),
        "test_text_length": component("text", "text_item", []),
        "test_memory_hog": component("audio", "audio", ["segmenter"]),
        "test_killed_child": component("text", "text_item", []),
        "test_batch_buffer": component(
            "visual",
            "frame",
            ["segmenter"],
            sampling={"count": 12},
            batching={"batch_size": 16},
            params={"ram_share_per_frame": 0.2},
        ),
    }
    analysis = {"max_short_side": 96, "audio_sample_rate": 8000, "audio_window_sec": 1.0, "workers": 2}
    crash = ("segmenter", "test_frame_mean", "test_frame_energy", "test_audio_rms", "test_text_length")
    return {
        "schema_version": 1,
        "components": components,
        "profiles": {
            "crash_test": {
                "description": "crash tests",
                "analysis": analysis,
                "components": {n: {"required": True} for n in crash},
            },
            "oom_test": {
                "description": "out of memory",
                "analysis": analysis,
                "components": {
                    "segmenter": {},
                    "test_frame_mean": {},
                    "test_memory_hog": {"required": False},
                },
            },
            "oom_halving_test": {
                "description": "an out of memory that a smaller batch avoids",
                "analysis": analysis,
                "components": {"segmenter": {}, "test_batch_buffer": {}},
            },
            "child_oom_test": {
                "description": "a child process killed",
                "analysis": analysis,
                "components": {"segmenter": {}, "test_killed_child": {"required": False}},
            },
        },
    }


def write_test_graph(path: Path) -> Path:
    path.write_text(yaml.safe_dump(crash_graph()))
    return path


if os.environ.get("TRENDFLOW_TEST_GRAPH"):
    graph_module.DEFAULT_GRAPH = Path(os.environ["TRENDFLOW_TEST_GRAPH"])
