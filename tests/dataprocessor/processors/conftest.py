"""A real RunContext around synthetic frames/audio, for the Tier-0 signal components.

Frames go through the real FrameStore (an .npy file + FramesMetadata), components are built from
the real component_graph.yaml (signals profile), and every output is checked like the
orchestrator checks it before writing the NPZ (masks, loadable without pickle).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trendflow.contracts.identity import RunIdentity
from trendflow.contracts.metadata import (
    AudioSegment,
    AudioTrack,
    ComponentSampling,
    FramesMetadata,
    SourceFacts,
)
from trendflow.contracts.versions import SAMPLING_POLICY_VERSION
from trendflow.dataprocessor.component import (
    ComponentOutput,
    PrivacyPolicy,
    RunContext,
    component_class,
)
from trendflow.dataprocessor.frame_store import FrameStore
from trendflow.dataprocessor.graph import ComponentGraph
from trendflow.dataprocessor.sources import SourceInfo
from trendflow.storage.layout import RunLayout
from trendflow.storage.npz_io import check_masks

SAMPLE_RATE = 22050


def identity() -> RunIdentity:
    return RunIdentity(
        platform_id="local",
        video_id="synthetic",
        run_id="run-1",
        config_hash="0" * 64,
        sampling_policy_version=SAMPLING_POLICY_VERSION,
        dataprocessor_version="test",
        created_at=datetime(2024, 1, 1, tzinfo=UTC),
    )


def build_ctx(
    tmp_path: Path,
    *,
    frames: np.ndarray | None = None,
    timestamps: np.ndarray | list[float] | None = None,
    indices: dict[str, list[int]] | None = None,
    audio: np.ndarray | None = None,
    sample_rate: int = SAMPLE_RATE,
    window_sec: float = 1.0,
    duration_sec: float | None = None,
    info: SourceInfo | None = None,
    policy: PrivacyPolicy | None = None,
) -> RunContext:
    """A RunContext whose metadata, frame store and audio describe the given synthetic media."""
    frames = np.zeros((1, 16, 16, 3), np.uint8) if frames is None else frames
    times = [float(t) for t in (timestamps if timestamps is not None else np.arange(len(frames)) / 4.0)]
    audio_sec = len(audio) / sample_rate if audio is not None else 0.0
    duration = duration_sec or max(times[-1] + 0.25, audio_sec, 1.0)
    track = None
    if audio is not None:
        starts = np.arange(0.0, audio_sec, window_sec)
        track = AudioTrack(
            path="audio.npy",
            sample_rate=sample_rate,
            num_samples=len(audio),
            duration_sec=audio_sec,
            segments=[AudioSegment(start_sec=s, end_sec=min(s + window_sec, audio_sec)) for s in starts],
        )
    run = identity()
    metadata = FramesMetadata(
        run=run,
        source=SourceFacts(
            container="mp4",
            video_codec="h264",
            duration_sec=duration,
            fps=24.0,
            width=frames.shape[2],
            height=frames.shape[1],
            has_audio=audio is not None,
            bytes=0,
            sha256="0" * 64,
        ),
        analysis_fps=4.0,
        analysis_width=frames.shape[2],
        analysis_height=frames.shape[1],
        frames_file="frames.npy",
        union_timestamps_sec=times,
        components={n: ComponentSampling(frame_indices=i) for n, i in (indices or {}).items()},
        audio=track,
        sampling_policy_version=SAMPLING_POLICY_VERSION,
    )
    np.save(tmp_path / "frames.npy", frames)
    return RunContext(
        identity=run,
        store=None,  # type: ignore[arg-type]  # components never touch the store
        layout=RunLayout.of(run),
        source_info=info or SourceInfo(),
        policy=policy or PrivacyPolicy(),
        metadata=metadata,
        frames=FrameStore(tmp_path, metadata),
        audio_loader=(lambda: audio) if audio is not None else (lambda: None),
    )


def run_component(name: str, ctx: RunContext, params: dict[str, Any] | None = None) -> ComponentOutput:
    """Build the component as the signals profile resolves it, run it, check the output contract."""
    spec = ComponentGraph.load().profile("signals").components[name]
    if params:
        spec = spec.model_copy(update={"params": {**spec.params, **params}})
    output = component_class(name)(spec).run(ctx)
    assert_valid_output(output)
    return output


def assert_valid_output(output: ComponentOutput) -> None:
    check_masks(output.arrays)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **output.arrays)
    with np.load(io.BytesIO(buffer.getvalue()), allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(output.arrays)
    for name, array in output.arrays.items():
        if name.endswith("__mask") or array.dtype.kind == "U":
            continue
        assert array.dtype in (np.float32, np.float64), f"{name} is {array.dtype}"
        mask = output.arrays[name + "__mask"]
        # Masked-in values are finite; NaN never hides behind a True mask.
        values = array.reshape((*mask.shape, int(np.prod(array.shape[mask.ndim :]))))
        assert np.isfinite(values[mask]).all(), name


@pytest.fixture
def make_ctx(tmp_path: Path) -> Callable[..., RunContext]:
    return lambda **kwargs: build_ctx(tmp_path, **kwargs)
