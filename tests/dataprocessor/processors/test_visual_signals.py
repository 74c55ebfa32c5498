"""visual/frame_stats, visual/shot_cuts and visual/motion on synthetic frames with known answers."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from trendflow.contracts.errors import TrendFlowError
from trendflow.dataprocessor.processors.visual.frame_stats import colorfulness, frame_statistics
from trendflow.dataprocessor.processors.visual.motion import pair_motion
from trendflow.dataprocessor.processors.visual.shot_cuts import detect_cuts

from .conftest import run_component

H, W = 120, 160


def solid(rgb: tuple[int, int, int], h: int = H, w: int = W) -> np.ndarray:
    return np.broadcast_to(np.asarray(rgb, np.uint8), (h, w, 3)).copy()


def texture(seed: int, h: int = 400, w: int = 600, blur: int = 9) -> np.ndarray:
    """A smooth random colour texture (optical flow needs structure at several scales)."""
    rng = np.random.default_rng(seed)
    smooth = cv2.GaussianBlur(rng.standard_normal((h, w, 3)).astype(np.float32), (0, 0), blur)
    # Blurring flattens noise: restore a natural contrast around a per-texture colour.
    smooth = (smooth - smooth.mean()) / (smooth.std() + 1e-6) * 45.0
    return np.clip(smooth + rng.uniform(60, 196, 3).astype(np.float32), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- frame_stats


def test_frame_statistics_of_known_pictures() -> None:
    grey, red = solid((128, 128, 128)), solid((255, 0, 0))
    checker = (np.indices((H, W)).sum(axis=0) % 2 * 255).astype(np.uint8)
    checker = np.repeat(checker[..., None], 3, axis=2)
    stats = frame_statistics(np.stack([grey, red, checker]), short_side=H)
    assert stats["brightness"][0] == pytest.approx(128, abs=0.5)
    assert stats["contrast"][0] == pytest.approx(0, abs=1e-3)
    assert stats["saturation"].tolist()[:2] == pytest.approx([0.0, 1.0], abs=1e-3)
    # Hasler-Suesstrunk of pure red: sigma 0, mu = |(255, 127.5)| -> 0.3 * 285.1
    assert stats["colorfulness"][1] == pytest.approx(0.3 * np.hypot(255, 127.5), rel=1e-3)
    assert stats["colorfulness"][0] == pytest.approx(0, abs=1e-3)
    assert stats["sharpness"][0] == 0 and stats["sharpness"][2] > 1e4
    assert stats["contrast"][2] == pytest.approx(127.5, abs=0.5)


def test_colourfulness_orders_grey_pastel_vivid() -> None:
    grey, pastel = texture(1) // 4 + 96, texture(2)
    vivid = np.clip((pastel.astype(np.int16) - 128) * 3 + 128, 0, 255).astype(np.uint8)
    values = [colorfulness(frame) for frame in (grey, pastel, vivid)]
    assert values[0] < values[1] < values[2]


def test_sharpness_does_not_depend_on_resolution() -> None:
    scene = texture(3, 720, 1280, blur=6)
    small = cv2.resize(scene, (640, 360), interpolation=cv2.INTER_AREA)
    big, little = (
        frame_statistics(np.stack([scene]))["sharpness"],
        frame_statistics(np.stack([small]))["sharpness"],
    )
    assert little[0] == pytest.approx(big[0], rel=0.15)
    blurred = cv2.GaussianBlur(scene, (0, 0), 4)
    assert frame_statistics(np.stack([blurred]))["sharpness"][0] < 0.5 * big[0]


def test_frame_stats_component(make_ctx) -> None:
    frames = np.stack([solid((v, v, v)) for v in (0, 64, 128, 255, 32)])
    ctx = make_ctx(frames=frames, indices={"frame_stats": [3, 0, 2]})
    out = run_component("frame_stats", ctx, params={"short_side": 60})
    assert out.empty_reason is None and out.units_processed == 3
    assert out.arrays["timestamps_sec"].dtype == np.float64
    assert out.arrays["timestamps_sec"].tolist() == [0.75, 0.0, 0.5]
    assert out.arrays["brightness"].tolist() == pytest.approx([255, 0, 128], abs=0.5)
    assert out.arrays["brightness__mask"].all()


def test_frame_stats_batches_are_bounded(make_ctx) -> None:
    frames = np.stack([solid((i, i, i)) for i in range(10)])
    ctx = make_ctx(frames=frames, indices={"frame_stats": list(range(10))})
    from trendflow.dataprocessor.component import component_class
    from trendflow.dataprocessor.graph import ComponentGraph

    spec = ComponentGraph.load().profile("signals").components["frame_stats"]
    spec = spec.model_copy(update={"batching": {"batch_size": 4}})
    out = component_class("frame_stats")(spec).run(ctx)
    assert out.batch_sizes == [4, 4, 2]
    assert out.arrays["brightness"].tolist() == pytest.approx(list(range(10)), abs=0.5)


def test_missing_frame_indices_is_an_error_not_an_empty_result(make_ctx) -> None:
    ctx = make_ctx(frames=np.stack([solid((1, 2, 3))]), indices={})
    with pytest.raises(TrendFlowError) as err:
        run_component("frame_stats", ctx)
    assert err.value.code == "dependency_missing"


# ---------------------------------------------------------------- shot_cuts


def synthetic_film(fps: float = 4.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """40 s at `fps`: six shots with panning textures, a fast pan and a slow fade; known cuts."""
    cuts = [5.3, 11.0, 17.6, 22.9, 33.9]
    bounds = [0.0, *cuts, 40.0]
    times = np.arange(0, 40.0, 1.0 / fps)
    scenes = [texture(seed + i, 260, 400, blur=6) for i in range(len(bounds) - 1)]
    frames = []
    for t in times:
        shot = int(np.searchsorted(bounds, t, side="right") - 1)
        local = t - bounds[shot]
        speed = 40 if shot == 2 else 6  # shot 2 pans fast: motion, not a cut
        x = int(local * speed) % 200
        frame = scenes[shot][60 : 60 + H, x : x + W].astype(np.float32)
        if shot == 4:  # shot 4 fades to black over its length: a gradual change, not a cut
            frame *= max(0.0, 1.0 - local / (bounds[5] - bounds[4]))
        frames.append(frame.astype(np.uint8))
    return np.stack(frames), times, cuts


def test_shot_cuts_finds_cuts_not_fades_or_motion(make_ctx) -> None:
    frames, times, cuts = synthetic_film()
    ctx = make_ctx(
        frames=frames, timestamps=times, indices={"shot_cuts": list(range(len(times)))}, duration_sec=40.0
    )
    out = run_component("shot_cuts", ctx)
    found = out.arrays["cut_times_sec"]
    assert found.dtype == np.float64
    assert len(found) == len(cuts)
    assert np.abs(found - cuts).max() <= 0.125 + 1e-9  # midpoint of a 0.25 s interval
    lengths = out.arrays["shot_lengths_sec"]
    assert lengths.shape == (len(cuts) + 1,) and lengths.sum() == pytest.approx(40.0)
    assert float(out.arrays["num_shots"]) == len(cuts) + 1
    assert float(out.arrays["cut_rate_per_min"]) == pytest.approx(len(cuts) / (40 / 60))


def test_shot_cuts_static_video_has_one_shot(make_ctx) -> None:
    frames = np.stack([solid((30, 90, 200))] * 30)
    ctx = make_ctx(frames=frames, indices={"shot_cuts": list(range(30))})
    out = run_component("shot_cuts", ctx)
    assert out.arrays["cut_times_sec"].shape == (0,)
    assert out.arrays["shot_lengths_sec"].tolist() == pytest.approx([ctx.metadata.source.duration_sec])
    assert float(out.arrays["num_shots"]) == 1


def test_detect_cuts_keeps_two_cuts_two_samples_apart_and_merges_adjacent() -> None:
    times = np.arange(20) / 4.0
    scores = np.full(20, 5.0)
    scores[[6, 8]] = 60.0  # two cuts 0.5 s apart
    scores[[14, 15]] = [50.0, 70.0]  # one transition over two adjacent samples
    cuts = detect_cuts(scores, times)
    assert cuts.tolist() == pytest.approx([1.375, 1.875, 3.625])


def test_detect_cuts_threshold_and_ratios() -> None:
    times = np.arange(12) / 4.0
    scores = np.full(12, 20.0)
    scores[5] = 35.0  # above 27 but under 1.8x its neighbours: motion burst, not a cut
    assert detect_cuts(scores, times).size == 0
    scores = np.full(12, 2.0)
    scores[5] = 20.0  # a 10x jump, but under the absolute threshold
    assert detect_cuts(scores, times).size == 0
    assert detect_cuts(scores, times, threshold=15.0).tolist() == [1.125]


def test_detect_cuts_rejects_the_end_of_a_fade_but_not_a_cut_after_motion() -> None:
    times = np.arange(12) / 4.0
    fade_end = np.array([np.nan, 3, 25, 28, 30, 32, 35, 4, 4, 3, 3, 3], dtype=float)
    # 35 is twice the median of (30, 32, 4, 4) but barely above the fading side: no cut.
    assert detect_cuts(fade_end, times).size == 0
    assert detect_cuts(fade_end, times, side_ratio=1.0).tolist() == [1.375]
    after_motion = np.array([np.nan, 20, 22, 21, 20, 60, 3, 3, 3, 3, 3, 3], dtype=float)
    assert detect_cuts(after_motion, times).tolist() == [1.125]


# ---------------------------------------------------------------- motion


def pan_pair(shift_px: int, h: int, w: int, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    scene = texture(seed, h + 40, w + 80, blur=max(2, w // 100))
    return scene[20 : 20 + h, 40 : 40 + w], scene[20 : 20 + h, 40 + shift_px : 40 + shift_px + w]


def test_pair_motion_measures_a_known_pan_in_diagonals_per_second() -> None:
    h, w, shift, dt = 240, 320, 8, 0.25
    mean, p90, moving = pair_motion(*pan_pair(shift, h, w), dt_sec=dt)
    expected = shift / np.hypot(h, w) / dt  # 0.08 diagonals per second
    assert mean == pytest.approx(expected, rel=0.2)
    assert p90 >= mean * 0.9 and moving > 0.9
    still = pair_motion(*pan_pair(0, h, w), dt_sec=dt)
    assert still[0] < 0.05 * expected and still[2] < 0.05


def test_pair_motion_does_not_depend_on_resolution() -> None:
    small = pair_motion(*pan_pair(6, 240, 320), dt_sec=0.25)[0]
    a, b = pan_pair(12, 480, 640)
    assert pair_motion(a, b, dt_sec=0.25)[0] == pytest.approx(small, rel=0.15)


def test_motion_component_pairs(make_ctx) -> None:
    a, b = pan_pair(8, H, W)
    frames = np.stack([a, b, a, a])
    ctx = make_ctx(frames=frames, timestamps=[2.0, 2.25, 6.0, 6.25], indices={"motion": [0, 1, 2, 3]})
    out = run_component("motion", ctx)
    assert out.units_processed == 2
    assert out.arrays["timestamps_sec"].tolist() == [2.0, 6.0]
    mean = out.arrays["flow_magnitude_mean"]
    assert mean[0] > 10 * mean[1]
    assert out.arrays["moving_fraction"][0] > 0.5 > out.arrays["moving_fraction"][1]


def test_motion_rejects_an_odd_index_list(make_ctx) -> None:
    ctx = make_ctx(frames=np.stack([solid((0, 0, 0))] * 3), indices={"motion": [0, 1, 2]})
    with pytest.raises(TrendFlowError) as err:
        run_component("motion", ctx)
    assert err.value.code == "component_failed"


@pytest.mark.parametrize("name", ["frame_stats", "shot_cuts", "motion"])
def test_no_frames_is_valid_empty(make_ctx, name: str) -> None:
    ctx = make_ctx(frames=np.stack([solid((0, 0, 0))]), indices={name: []})
    out = run_component(name, ctx)
    assert out.empty_reason == "no_frames"
    assert not any(v.any() for k, v in out.arrays.items() if k.endswith("__mask"))


def test_detect_cuts_compares_neighbours_per_second_on_uneven_intervals() -> None:
    """Frames 2 source frames apart, one 5 apart (skip_frame=NONREF leaves reference frames only):
    steady motion of 130 per second scores 27 over the long interval and 11 over the short ones.
    As a rate it matches its neighbours, so it is no cut; a real step over a short interval is."""
    steps = np.full(24, 2 / 24)
    steps[10] = 5 / 24
    times = np.concatenate([[0.0], np.cumsum(steps)])
    scores = 130.0 * np.diff(times, prepend=np.nan)
    assert scores[11] > 27 and detect_cuts(scores, times).size == 0
    scores[18] = 60.0
    assert detect_cuts(scores, times).tolist() == pytest.approx([(times[17] + times[18]) / 2])
