"""audio/tempo: global tempo, beat times and onset rate of the whole track.

Onset strength is the spectral flux of the shared log-mel spectrogram (`_spectrum.py`); tempo,
beats and onsets follow librosa.beat.beat_track / librosa.onset.onset_detect, implemented in
numpy (`_rhythm.py`) to avoid numba compilation in the worker.

- `tempo_bpm` (): NaN (masked) when the track has no onsets at all (silence);
- `beat_times_sec` (B,): may be empty for arrhythmic or silent audio;
- `onset_rate_per_sec` (): onsets per second of audio (0 for silence).
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from trendflow.dataprocessor.component import (
    Component,
    ComponentOutput,
    NoParams,
    RunContext,
    masked,
    register,
)
from trendflow.dataprocessor.outputs import position, scalar
from trendflow.dataprocessor.processors.audio._rhythm import (
    detect_onsets,
    estimate_tempo,
    onset_strength,
    track_beats,
)
from trendflow.dataprocessor.processors.audio._spectrum import spectral_frames
from trendflow.dataprocessor.processors.audio._track import load_audio


class TempoParams(NoParams):
    n_fft: int = Field(2048, ge=64)
    hop_length: int = Field(512, ge=16)
    n_mels: int = Field(128, ge=8)
    start_bpm: float = Field(120.0, gt=0)
    tempogram_hop: int = Field(8, ge=1)


@register
class Tempo(Component):
    name = "tempo"
    processor = "audio"
    schema_version = "1.0.0"
    version = "1.0.0"
    outputs = (scalar("tempo_bpm"), position("beat_times_sec"), scalar("onset_rate_per_sec"))
    Params = TempoParams

    def run(self, ctx: RunContext) -> ComponentOutput:
        track = load_audio(ctx)
        if isinstance(track, str):
            return self.empty_output(track)
        params = self.params
        n_fft, hop = params.n_fft, params.hop_length
        # Same options as audio/spectral so both read one cached spectrum.
        frames = spectral_frames(
            track.samples, track.sample_rate, n_fft=n_fft, hop_length=hop, n_mels=params.n_mels
        )
        frame_rate = track.sample_rate / hop
        mean_flux = onset_strength(frames.mel_db, n_fft, hop, aggregate="mean")
        median_flux = onset_strength(frames.mel_db, n_fft, hop, aggregate="median")
        # As librosa.beat.beat_track: tempo and beats both from the median-aggregated envelope.
        bpm = estimate_tempo(
            median_flux,
            frame_rate,
            start_bpm=params.start_bpm,
            window_hop=params.tempogram_hop,
        )
        beats = track_beats(median_flux, bpm, frame_rate)
        onsets = detect_onsets(mean_flux, track.sample_rate, hop)
        arrays = masked("tempo_bpm", bpm)
        arrays.update(masked("beat_times_sec", beats * hop / track.sample_rate, dtype=np.float64))
        arrays.update(masked("onset_rate_per_sec", len(onsets) / track.duration_sec))
        return ComponentOutput(arrays=arrays, units_processed=1, batch_sizes=[len(frames.times_sec)])
