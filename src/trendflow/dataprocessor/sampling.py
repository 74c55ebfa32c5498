"""The sampling policy: per-component frame budgets -> target frames (SPEC sections 2 and 5).

A pure function of (duration, source fps, profile). The segmenter alone decides sampling; the
result is written into metadata.json, and components only read their `frame_indices`.

Policy (`SAMPLING_POLICY_VERSION` changes whenever this picks different frames):
1. Each component with a `sampling` budget gets a frame count `n`: `round(duration * fps)` for an
   `fps` budget, `count` for a `count` budget, clipped to `[min_frames, max_frames]` and to the
   frames the video has (one less for `frame_pair` units, whose pairs need a successor).
2. The analysis grid has `G = max(n_c + pair_c)` points, evenly spaced over the video:
   grid point `k` is at `(k + 0.5) / analysis_fps` with `analysis_fps = G / duration`, the
   highest per-component rate actually used (never above the source frame rate).
3. A component with `n` frames takes grid points `floor((i + 0.5) * G / n)`, i = 0..n-1: spread
   evenly and centred, and always a subset of the grid, so components at 1 fps and 4 fps share
   frames instead of growing the union. `frame_pair` components take pairs `(k, k + 1)`, i.e.
   `(t, t + 1 / analysis_fps)`, with the first elements spread over `G - 1` points.
4. Every grid time snaps to the source frame on screen at that time:
   `floor(t * n_src / duration)` with `n_src = round(duration * source_fps)`. The union is the
   sorted set of snapped source frames; `frame_indices` index that union.
Two components with different frame counts get different index lists (different lengths).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.dataprocessor.graph import Profile, Sampling

FRAME_UNITS = ("frame", "frame_pair")


class ComponentPlan(BaseModel):
    """One component's planned frames, as indices into `SamplingPlan.source_frames`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    unit: Literal["frame", "frame_pair"]
    budget: dict[str, float | int | str]
    frame_count: int = Field(description="Frames (or pairs, for frame_pair units) the budget gives.")
    indices: list[int] = Field(description="Indices into the union; pairs are consecutive entries.")


class SamplingPlan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    duration_sec: float
    source_fps: float
    analysis_fps: float
    grid_points: int
    source_frames: list[int] = Field(description="Sorted unique source frame numbers (the union).")
    target_times_sec: list[float] = Field(description="Nominal time of each union frame.")
    components: dict[str, ComponentPlan]

    @property
    def union_size(self) -> int:
        return len(self.source_frames)


def _budget(sampling: Sampling) -> dict[str, float | int | str]:
    return {k: v for k, v in sampling.model_dump().items() if v is not None}


def _frame_count(sampling: Sampling, duration_sec: float) -> int:
    wanted = round(duration_sec * sampling.fps) if sampling.fps is not None else int(sampling.count or 0)
    return min(max(wanted, sampling.min_frames), sampling.max_frames)


def plan_sampling(duration_sec: float, source_fps: float, profile: Profile) -> SamplingPlan:
    if duration_sec <= 0 or source_fps <= 0 or not math.isfinite(duration_sec * source_fps):
        raise TrendFlowError(
            ErrorCode.INVALID_MEDIA, f"cannot sample a video of {duration_sec}s at {source_fps} fps"
        )
    n_src = max(1, round(duration_sec * source_fps))

    counts: dict[str, tuple[int, bool, Sampling]] = {}
    for name in sorted(profile.components):
        comp = profile.components[name]
        if comp.sampling is None:
            continue
        if comp.unit not in FRAME_UNITS:
            raise TrendFlowError(
                ErrorCode.CONFIG_ERROR,
                f"component {name} has a frame budget but its unit is {comp.unit!r} (needs frame/frame_pair)",
            )
        pair = comp.unit == "frame_pair"
        if pair and n_src < 2:
            raise TrendFlowError(
                ErrorCode.INVALID_MEDIA, f"component {name} needs frame pairs; the video has 1 frame"
            )
        n = min(_frame_count(comp.sampling, duration_sec), n_src - 1 if pair else n_src)
        counts[name] = (max(1, n), pair, comp.sampling)

    if not counts:
        # No component looks at frames: nothing to decode. analysis_fps must still be positive.
        return SamplingPlan(
            duration_sec=duration_sec,
            source_fps=source_fps,
            analysis_fps=min(1.0, source_fps),
            grid_points=0,
            source_frames=[],
            target_times_sec=[],
            components={},
        )

    grid = min(n_src, max(n + int(pair) for n, pair, _ in counts.values()))
    analysis_fps = grid / duration_sec

    def snap(k: int) -> int:
        t = (k + 0.5) / analysis_fps
        return min(n_src - 1, math.floor(t * n_src / duration_sec))

    per_component_frames: dict[str, list[int]] = {}
    for name, (n, pair, _) in counts.items():
        if pair:
            firsts = [math.floor((i + 0.5) * (grid - 1) / n) for i in range(n)]
            frames: list[int] = []
            for k in firsts:
                first = snap(k)
                frames += [first, max(snap(k + 1), first + 1)]
        else:
            frames = [snap(math.floor((i + 0.5) * grid / n)) for i in range(n)]
        per_component_frames[name] = frames

    union = sorted({f for frames in per_component_frames.values() for f in frames})
    position = {f: i for i, f in enumerate(union)}
    components = {
        name: ComponentPlan(
            unit="frame_pair" if pair else "frame",
            budget=_budget(sampling),
            frame_count=n,
            indices=[position[f] for f in per_component_frames[name]],
        )
        for name, (n, pair, sampling) in counts.items()
    }
    return SamplingPlan(
        duration_sec=duration_sec,
        source_fps=source_fps,
        analysis_fps=analysis_fps,
        grid_points=grid,
        source_frames=union,
        target_times_sec=[f / source_fps for f in union],
        components=components,
    )
