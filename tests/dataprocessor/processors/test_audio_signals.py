"""audio/loudness, audio/spectral and audio/tempo on synthetic signals with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from trendflow.dataprocessor.processors.audio._rhythm import pick_peaks
from trendflow.dataprocessor.processors.audio._spectrum import compute_spectral_frames, spectral_frames

from .conftest import SAMPLE_RATE, run_component

SR = SAMPLE_RATE
AUDIO_COMPONENTS = ["loudness", "spectral", "tempo"]


def sine(freq: float, seconds: float, amplitude: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def click_track(bpm: float, seconds: float) -> np.ndarray:
    """Short decaying 2 kHz clicks on every beat, over faint noise."""
    rng = np.random.default_rng(0)
    audio = 0.001 * rng.standard_normal(int(seconds * SR)).astype(np.float32)
    click = sine(2000.0, 0.03) * np.exp(-np.arange(int(0.03 * SR)) / (0.005 * SR)).astype(np.float32)
    for beat in np.arange(0.5, seconds - 0.1, 60.0 / bpm):
        start = int(beat * SR)
        audio[start : start + len(click)] += 0.8 * click
    return audio


# ---------------------------------------------------------------- loudness


def test_loudness_of_full_scale_sine_and_silence(make_ctx) -> None:
    audio = np.concatenate([sine(440, 5.0), np.zeros(5 * SR, np.float32)])
    out = run_component("loudness", make_ctx(audio=audio))
    levels = out.arrays["rms_dbfs"]
    assert levels.shape == (10,) and out.arrays["timestamps_sec"].tolist() == list(range(10))
    assert levels[:5] == pytest.approx(-3.01, abs=0.02)
    assert levels[5:] == pytest.approx(-100.0)  # digital silence sits on the floor, finite
    assert float(out.arrays["silence_ratio"]) == pytest.approx(0.5)
    assert float(out.arrays["dynamic_range_db"]) == pytest.approx(97.0, abs=0.1)
    # Energy mean: half the windows at 0.5 power -> 0.25 -> -6.02 dBFS.
    assert float(out.arrays["loudness_mean_dbfs"]) == pytest.approx(-6.02, abs=0.02)


def test_silent_track_is_ok_not_empty(make_ctx) -> None:
    ctx = make_ctx(audio=np.zeros(6 * SR, np.float32))
    loud = run_component("loudness", ctx)
    assert loud.empty_reason is None and float(loud.arrays["silence_ratio"]) == 1.0
    spectral = run_component("spectral", ctx)
    assert spectral.empty_reason is None
    assert not spectral.arrays["spectral_centroid_hz__mask"].any()  # no spectrum in silence
    assert spectral.arrays["mfcc__mask"].all() and spectral.arrays["zcr"].tolist() == [0.0] * 6
    tempo = run_component("tempo", ctx)
    assert tempo.empty_reason is None
    assert not tempo.arrays["tempo_bpm__mask"] and tempo.arrays["beat_times_sec"].shape == (0,)
    assert float(tempo.arrays["onset_rate_per_sec"]) == 0.0


@pytest.mark.parametrize("name", AUDIO_COMPONENTS)
def test_no_audio_track_is_valid_empty(make_ctx, name: str) -> None:
    out = run_component(name, make_ctx(audio=None))
    assert out.empty_reason == "no_audio_track"
    assert not any(v.any() for k, v in out.arrays.items() if k.endswith("__mask"))
    assert all(np.isnan(v).all() for k, v in out.arrays.items() if not k.endswith("__mask"))
    if name == "spectral":
        assert out.arrays["mfcc"].shape == (0, 13)


@pytest.mark.parametrize("name", AUDIO_COMPONENTS)
def test_metadata_without_segments_is_an_error(make_ctx, name: str) -> None:
    from trendflow.contracts.errors import TrendFlowError

    ctx = make_ctx(audio=sine(440, 2.0))
    ctx.metadata.audio.segments = []
    with pytest.raises(TrendFlowError) as err:
        run_component(name, ctx)
    assert err.value.code == "dependency_missing"


# ---------------------------------------------------------------- spectral


def test_spectral_shape_of_a_sine(make_ctx) -> None:
    out = run_component("spectral", make_ctx(audio=sine(1000.0, 4.0, 0.5)))
    assert out.arrays["mfcc"].shape == (4, 13) and out.arrays["mfcc"].dtype == np.float32
    assert out.arrays["spectral_centroid_hz"] == pytest.approx(1000.0, rel=0.03)
    assert out.arrays["spectral_rolloff_hz"] == pytest.approx(1000.0, abs=2 * SR / 2048)
    assert out.arrays["zcr"] == pytest.approx(2 * 1000.0 / SR, rel=0.01)


def test_spectral_centroid_follows_the_frequency(make_ctx) -> None:
    audio = np.concatenate([sine(300.0, 2.0), sine(3000.0, 2.0)])
    centroid = run_component("spectral", make_ctx(audio=audio)).arrays["spectral_centroid_hz"]
    assert centroid[0] == pytest.approx(300.0, rel=0.05) and centroid[3] == pytest.approx(3000.0, rel=0.03)


def test_spectrum_is_computed_once_per_track() -> None:
    audio = sine(500.0, 2.0)
    first = spectral_frames(audio, SR)
    assert spectral_frames(audio, SR) is first
    assert spectral_frames(audio.copy(), SR) is not first


def test_spectral_frames_match_librosa_centred_frame_count() -> None:
    frames = compute_spectral_frames(sine(500.0, 1.0), SR)
    assert frames.mel_db.shape == (128, 1 + SR // 512)
    assert frames.times_sec[1] == pytest.approx(512 / SR)


# ---------------------------------------------------------------- tempo


def test_tempo_of_a_click_track(make_ctx) -> None:
    out = run_component("tempo", make_ctx(audio=click_track(120.0, 20.0)))
    # Tempo is quantised to whole autocorrelation lags of 512/22050 s, as in librosa: 120 BPM lies
    # between the lags of 123.0 and 117.5 BPM.
    assert float(out.arrays["tempo_bpm"]) == pytest.approx(120.0, abs=3.0)
    beats = out.arrays["beat_times_sec"]
    assert len(beats) >= 30
    assert np.median(np.diff(beats)) == pytest.approx(0.5, abs=0.03)
    # Every beat sits on a click (within two hops of 23 ms).
    clicks = np.arange(0.5, 19.9, 0.5)
    assert np.abs(beats[:, None] - clicks[None, :]).min(axis=1).max() < 0.05
    assert float(out.arrays["onset_rate_per_sec"]) == pytest.approx(2.0, abs=0.25)


def test_tempo_of_a_faster_track(make_ctx) -> None:
    out = run_component("tempo", make_ctx(audio=click_track(150.0, 20.0)))
    assert float(out.arrays["tempo_bpm"]) == pytest.approx(150.0, abs=4.5)  # lags: 143.6 / 153.8


def test_pick_peaks_waits_and_needs_prominence() -> None:
    x = np.zeros(40)
    x[[5, 6, 20, 30]] = [1.0, 0.9, 1.0, 0.05]
    # 6 is inside the wait of 5 and not a local max; 30 is under the local mean + delta.
    assert pick_peaks(x, pre_max=1, post_max=1, pre_avg=4, post_avg=5, delta=0.07, wait=1).tolist() == [5, 20]


@pytest.mark.slow
def test_rhythm_and_spectrum_match_librosa() -> None:
    """The numpy re-implementations against librosa itself (slow: librosa.beat compiles numba)."""
    import librosa

    from trendflow.dataprocessor.processors.audio._rhythm import (
        detect_onsets,
        estimate_tempo,
        onset_strength,
        track_beats,
    )
    from trendflow.dataprocessor.processors.audio.spectral import mfcc_from_mel_db

    rng = np.random.default_rng(1)
    audio = (
        click_track(128.0, 30.0)
        + 0.05 * sine(220.0, 30.0)
        + 0.01 * rng.standard_normal(30 * SR).astype(np.float32)
    )
    frames = compute_spectral_frames(audio, SR)
    np.testing.assert_allclose(
        mfcc_from_mel_db(frames.mel_db), librosa.feature.mfcc(y=audio, sr=SR, n_mfcc=13), atol=1e-2
    )
    np.testing.assert_allclose(
        frames.centroid_hz, librosa.feature.spectral_centroid(y=audio, sr=SR)[0], rtol=1e-3
    )
    np.testing.assert_allclose(
        frames.rolloff_hz, librosa.feature.spectral_rolloff(y=audio, sr=SR)[0], atol=SR / 2048 + 1e-3
    )
    median_env = librosa.onset.onset_strength(y=audio, sr=SR, aggregate=np.median)
    np.testing.assert_allclose(onset_strength(frames.mel_db, 2048, 512, "median"), median_env, atol=1e-3)
    ref_tempo, ref_beats = librosa.beat.beat_track(onset_envelope=median_env, sr=SR)
    tempo = estimate_tempo(median_env, SR / 512)
    assert tempo == pytest.approx(float(np.atleast_1d(ref_tempo)[0]), rel=0.02)
    assert (
        track_beats(median_env, float(np.atleast_1d(ref_tempo)[0]), SR / 512).tolist() == ref_beats.tolist()
    )
    mean_env = librosa.onset.onset_strength(y=audio, sr=SR)
    assert (
        detect_onsets(mean_env, SR, 512).tolist()
        == librosa.onset.onset_detect(onset_envelope=mean_env, sr=SR).tolist()
    )


def test_spectral_and_tempo_share_one_spectrum(make_ctx, monkeypatch) -> None:
    from trendflow.dataprocessor.processors.audio import _spectrum

    calls = []
    original = _spectrum.compute_spectral_frames
    monkeypatch.setattr(
        _spectrum, "compute_spectral_frames", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    ctx = make_ctx(audio=click_track(100.0, 6.0))
    run_component("spectral", ctx)
    run_component("tempo", ctx)
    assert len(calls) == 1
