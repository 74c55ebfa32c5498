"""The sampling policy (pure): budgets -> per-component frames, union, analysis fps."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.dataprocessor.graph import ComponentGraph, Profile
from trendflow.dataprocessor.sampling import plan_sampling


def _profile(components: dict[str, dict[str, Any]]) -> Profile:
    raw = {
        "components": {
            "segmenter": {"processor": "segmenter", "unit": "video", "description": "s"},
            **{
                name: {"processor": "visual", "description": name, "depends_on": ["segmenter"], **spec}
                for name, spec in components.items()
            },
        },
        "profiles": {"p": {"description": "p", "components": {n: {} for n in ["segmenter", *components]}}},
    }
    return ComponentGraph.from_dict(raw).profile("p")


def test_signals_profile_on_ten_minutes(signals_profile: Profile) -> None:
    plan = plan_sampling(600.0, 24.0, signals_profile)
    comps = plan.components
    assert plan.analysis_fps == pytest.approx(4.0)
    assert len(comps["shot_cuts"].indices) == 2400
    assert len(comps["frame_stats"].indices) == 600
    assert len(comps["motion"].indices) == 2 * 300 and comps["motion"].unit == "frame_pair"
    # Every budget lies on one analysis grid: the union is no larger than the densest component.
    assert plan.union_size == 2400
    # Different budgets -> different frame indices, for every pair of components.
    for a, b in itertools.combinations(comps, 2):
        assert comps[a].indices != comps[b].indices, (a, b)
    # Frames spread evenly: frame_stats one per second, centred in its second.
    times = [plan.target_times_sec[i] for i in comps["frame_stats"].indices]
    assert times[0] == pytest.approx(0.625, abs=1 / 24) and times[-1] == pytest.approx(599.625, abs=1 / 24)
    gaps = {round(b - a, 3) for a, b in itertools.pairwise(times)}
    assert gaps == {1.0}


def test_frame_pairs_are_one_analysis_frame_apart(signals_profile: Profile) -> None:
    plan = plan_sampling(600.0, 24.0, signals_profile)
    pairs = plan.components["motion"].indices
    for first, second in zip(pairs[::2], pairs[1::2], strict=True):
        gap = plan.target_times_sec[second] - plan.target_times_sec[first]
        assert gap == pytest.approx(1 / plan.analysis_fps, abs=1 / 24)
        assert second == first + 1  # consecutive in the union, distinct frames


def test_targets_snap_to_source_frames_inside_the_video(signals_profile: Profile) -> None:
    plan = plan_sampling(7.3, 29.97, signals_profile)
    assert plan.source_frames == sorted(set(plan.source_frames))
    assert all(0 <= f < round(7.3 * 29.97) for f in plan.source_frames)
    for f, t in zip(plan.source_frames, plan.target_times_sec, strict=True):
        assert t == pytest.approx(f / 29.97)


def test_min_and_max_frames_clip_the_budget() -> None:
    profile = _profile(
        {
            "few": {"unit": "frame", "sampling": {"fps": 0.1, "min_frames": 8}},
            "capped": {"unit": "frame", "sampling": {"fps": 10.0, "max_frames": 50}},
            "counted": {"unit": "frame", "sampling": {"count": 5}},
        }
    )
    plan = plan_sampling(30.0, 25.0, profile)
    assert len(plan.components["few"].indices) == 8  # 3 by rate, raised to min_frames
    assert len(plan.components["capped"].indices) == 50  # 300 by rate, capped
    assert len(plan.components["counted"].indices) == 5
    assert plan.analysis_fps == pytest.approx(50 / 30)


def test_budget_never_exceeds_the_frames_the_video_has() -> None:
    profile = _profile(
        {
            "dense": {"unit": "frame", "sampling": {"fps": 30.0, "max_frames": 5000}},
            "pairs": {"unit": "frame_pair", "sampling": {"fps": 30.0, "max_frames": 5000}},
        }
    )
    plan = plan_sampling(10.0, 2.0, profile)  # a 2 fps source has 20 frames
    assert plan.analysis_fps == pytest.approx(2.0)
    assert plan.source_frames == list(range(20))
    assert len(plan.components["dense"].indices) == 20
    pairs = plan.components["pairs"].indices
    assert len(pairs) == 2 * 19 and all(b == a + 1 for a, b in zip(pairs[::2], pairs[1::2], strict=True))


def test_profile_without_frame_components_plans_nothing() -> None:
    raw = {
        "components": {"segmenter": {"processor": "segmenter", "unit": "video", "description": "s"}},
        "profiles": {"p": {"description": "p", "components": {"segmenter": {}}}},
    }
    plan = plan_sampling(30.0, 25.0, ComponentGraph.from_dict(raw).profile("p"))
    assert plan.union_size == 0 and plan.components == {} and plan.analysis_fps > 0


def test_frame_budget_on_a_non_frame_unit_is_a_config_error() -> None:
    profile = _profile({"odd": {"unit": "audio_window", "sampling": {"fps": 1.0}}})
    with pytest.raises(TrendFlowError) as err:
        plan_sampling(30.0, 25.0, profile)
    assert err.value.code is ErrorCode.CONFIG_ERROR


def test_plan_is_deterministic(signals_profile: Profile) -> None:
    assert plan_sampling(123.4, 23.976, signals_profile) == plan_sampling(123.4, 23.976, signals_profile)
