"""The segmenter: probe, enforce the input contract, plan, decode once, extract audio (SPEC 4-5).

`segment()` is the only step that reads the media. It decides everything components see:
the union of sampled frames (RGB uint8, display-oriented, short side <= the profile's limit),
each component's `frame_indices`, and the mono audio track; all of it is written to
`frames_dir` with `metadata.json` last, so a reader never sees a half-written segmenter output.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.identity import RunIdentity
from trendflow.contracts.metadata import (
    AudioTrack,
    ComponentSampling,
    DecodeStats,
    FramesMetadata,
    SourceFacts,
)
from trendflow.dataprocessor.audio_extract import AudioExtraction
from trendflow.dataprocessor.damage import (
    RUN_WARNING_PREFIX,
    audio_damage,
    decode_warnings,
)
from trendflow.dataprocessor.decode import (
    NONREF_CODECS,
    DecodeOutcome,
    decode_pass,
    decode_passes_started,
    output_geometry,
)
from trendflow.dataprocessor.graph import AnalysisSettings, Profile
from trendflow.dataprocessor.probe import probe
from trendflow.dataprocessor.sampling import SamplingPlan, plan_sampling

if TYPE_CHECKING:
    from trendflow.dataprocessor.frame_stream import FrameBus
    from trendflow.dataprocessor.sources import ResolvedSource

__all__ = [
    "FRAMES_FILE",
    "METADATA_FILE",
    "RUN_WARNING_PREFIX",
    "SamplingPlan",
    "StreamHooks",
    "check_input_contract",
    "decode_passes_started",
    "plan_sampling",
    "probe",
    "segment",
]

FRAMES_FILE = "frames.npy"
METADATA_FILE = "metadata.json"


def check_input_contract(facts: SourceFacts, analysis: AnalysisSettings) -> None:
    """SPEC 4, decided from the probe before any decoding: 5 s .. 20 min (profile-settable)."""
    if facts.duration_sec < analysis.min_duration_sec:
        raise TrendFlowError(
            ErrorCode.VIDEO_TOO_SHORT,
            f"the video lasts {facts.duration_sec:.2f}s; the minimum is {analysis.min_duration_sec:g}s",
        )
    if facts.duration_sec > analysis.max_duration_sec:
        raise TrendFlowError(
            ErrorCode.VIDEO_TOO_LONG,
            f"the video lasts {facts.duration_sec:.0f}s; the maximum is {analysis.max_duration_sec:g}s",
        )


class StreamHooks(Protocol):
    """How a streaming run (run/scheduler.py) takes part in `segment`."""

    keep_frames_file: bool  # also write frames.npy (the policy keeps frames, or a reader needs it)

    def on_plan(self, provisional: FramesMetadata) -> FrameBus | None:
        """The plan is made, nothing decoded: `provisional` indexes the plan's targets. Returns the
        bus the decoder publishes to (its subscriptions made), or None."""

    def on_audio(self, provisional: FramesMetadata) -> None:
        """The audio track is extracted (`provisional.audio`; None without one)."""


def _skip_frame_mode(facts: SourceFacts, plan: SamplingPlan) -> str | None:
    """NONREF only where the nearest kept frame stays within half an analysis frame: constant
    rate, a codec whose non-reference frames are B-frames, and a union at most 1/4 of the rate."""
    sparse = plan.analysis_fps * 4 <= facts.fps
    return (
        "NONREF" if sparse and not facts.variable_frame_rate and facts.video_codec in NONREF_CODECS else None
    )


def _decode(
    path: Path,
    facts: SourceFacts,
    plan: SamplingPlan,
    frames_file: Path | None,
    analysis: AnalysisSettings,
    bus: FrameBus | None = None,
) -> DecodeOutcome:
    geometry = output_geometry(
        facts.width, facts.height, facts.rotation, analysis.max_short_side, facts.pixel_aspect
    )
    deadline = time.monotonic() + max(120.0, 2.0 * facts.duration_sec)
    common = dict(
        media=path,
        targets_sec=plan.target_times_sec,
        geometry=geometry,
        frames_file=frames_file,
        analysis_fps=plan.analysis_fps,
        source_fps=facts.fps,
        deadline=deadline,
        threads=analysis.decode_threads,
        sink=(lambda j, t, rgb: bus.publish(j, round(t, 6), rgb)) if bus is not None else None,
    )
    if not plan.target_times_sec:  # no component looks at frames: nothing to decode
        if frames_file is not None:
            width, height = geometry.display_size
            np.save(frames_file, np.empty((0, height, width, 3), dtype=np.uint8))
        if bus is not None:
            bus.end_pass({}, redo_all=False)
        return DecodeOutcome(frames_file, [], [], DecodeStats(passes=0))
    skip = _skip_frame_mode(facts, plan)
    outcome = decode_pass(**common, skip_frame=skip)
    redone = False
    for _ in range(3):
        # Rare (unusual GOP structures): exactness beats speed, so decode every frame.
        redo_all = outcome.skip_frame_lost_precision and not redone
        if bus is None:
            if not redo_all:
                break
        else:
            # A streaming consumer whose targets the decode shortened (a truncated stream) reads
            # them again on a replay pass; with redo_all, every consumer does (docs/segmenter.md).
            final = {
                n: _kept(cp.indices, outcome.target_to_union, cp.unit == "frame_pair")
                for n, cp in plan.components.items()
            }
            if not bus.end_pass(final, redo_all):
                break
        redone |= redo_all
        outcome = decode_pass(**common, skip_frame=None if redone else skip)
    if redone:
        outcome.stats.passes = 2
    return outcome


def _kept(plan_indices: list[int], target_to_union: list[int | None], pair: bool) -> list[int]:
    """The plan targets that got a frame; a pair is kept only whole."""
    step = 2 if pair else 1
    out: list[int] = []
    for i in range(0, len(plan_indices), step):
        group = plan_indices[i : i + step]
        if all(target_to_union[j] is not None for j in group):
            out.extend(group)
    return out


def _component_indices(plan_indices: list[int], target_to_union: list[int | None], pair: bool) -> list[int]:
    """Map plan targets to stored frames; drop targets (or whole pairs) that were not decodable."""
    return [u for j in _kept(plan_indices, target_to_union, pair) if (u := target_to_union[j]) is not None]


def _describe(
    identity: RunIdentity,
    facts: SourceFacts,
    plan: SamplingPlan,
    analysis: AnalysisSettings,
    union_times: list[float],
    indices: dict[str, list[int]],
    audio: AudioTrack | None,
    decode: DecodeStats,
    warnings: list[str],
) -> FramesMetadata:
    geometry = output_geometry(
        facts.width, facts.height, facts.rotation, analysis.max_short_side, facts.pixel_aspect
    )
    width, height = geometry.display_size
    return FramesMetadata(
        run=identity,
        source=facts,
        analysis_fps=round(plan.analysis_fps, 6),
        analysis_width=width,
        analysis_height=height,
        frames_file=FRAMES_FILE,
        union_timestamps_sec=[round(t, 6) for t in union_times],
        components={
            name: ComponentSampling(frame_indices=indices[name], unit=cp.unit, budget=cp.budget)
            for name, cp in plan.components.items()
        },
        audio=audio,
        sampling_policy_version=identity.sampling_policy_version,
        decode=decode,
        warnings=warnings,
    )


def segment(
    source: ResolvedSource,
    identity: RunIdentity,
    profile: Profile,
    frames_dir: Path,
    hooks: StreamHooks | None = None,
) -> FramesMetadata:
    """Probe + contract check + plan + one decode pass + audio; writes `frames_dir/metadata.json`.

    Without `hooks` the union goes to `frames_dir/frames.npy`. With them (a streaming run) the
    decoded frames go to the bus `hooks.on_plan` returns, frames.npy only when
    `hooks.keep_frames_file`, and `hooks.on_audio` hears of the audio as soon as it is extracted.
    """
    frames_dir = Path(frames_dir)
    facts = probe(source.path)
    check_input_contract(facts, profile.analysis)
    plan = plan_sampling(facts.duration_sec, facts.fps, profile)
    frames_dir.mkdir(parents=True, exist_ok=True)
    analysis = profile.analysis
    targets = {name: list(cp.indices) for name, cp in plan.components.items()}
    provisional = _describe(
        identity, facts, plan, analysis, plan.target_times_sec, targets, None, DecodeStats(passes=0), []
    )
    bus = hooks.on_plan(provisional) if hooks is not None else None
    audio_job = None
    if facts.has_audio:
        audio_job = AudioExtraction(
            source.path,
            frames_dir,
            analysis.audio_sample_rate,
            analysis.audio_window_sec,
            timeout_sec=max(120.0, facts.duration_sec),
        ).start()
    audio_wait = _AudioWait(audio_job, facts.duration_sec, provisional, hooks)
    frames_file = frames_dir / FRAMES_FILE if hooks is None or hooks.keep_frames_file else None
    try:
        outcome = _decode(source.path, facts, plan, frames_file, analysis, bus)
        video_warnings = decode_warnings(outcome, plan.union_size, source.path)  # raises when too damaged
    except BaseException:
        audio_wait.cancel()
        raise
    audio, warnings = audio_wait.result()
    warnings += video_warnings
    indices = {
        name: _component_indices(cp.indices, outcome.target_to_union, cp.unit == "frame_pair")
        for name, cp in plan.components.items()
    }
    metadata = _describe(
        identity, facts, plan, analysis, outcome.union_times_sec, indices, audio, outcome.stats, warnings
    )
    tmp = frames_dir / (METADATA_FILE + ".tmp")
    tmp.write_text(metadata.model_dump_json(indent=2))
    tmp.replace(frames_dir / METADATA_FILE)
    return metadata


class _AudioWait:
    """The audio extraction beside the video decode: with hooks, a thread waits for it and tells
    the run as soon as the track is ready, so the audio components need not wait for the video."""

    def __init__(
        self,
        job: AudioExtraction | None,
        duration_sec: float,
        provisional: FramesMetadata,
        hooks: StreamHooks | None,
    ) -> None:
        self.job, self.duration_sec = job, duration_sec
        self.provisional, self.hooks = provisional, hooks
        self._result: tuple[AudioTrack | None, list[str]] | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if hooks is not None:
            self._thread = threading.Thread(target=self._wait, name="audio-extract", daemon=True)
            self._thread.start()

    def _finish(self) -> tuple[AudioTrack | None, list[str]]:
        if self.job is None:
            return None, ["the video has no audio track: audio=None, audio components report empty"]
        audio, warnings = self.job.finish()
        return audio, warnings + audio_damage(audio, self.duration_sec)

    def _wait(self) -> None:
        try:
            self._result = self._finish()
        except BaseException as exc:  # handed to the decoding thread in result()
            self._error = exc
            return
        if self.hooks is not None:
            self.hooks.on_audio(self.provisional.model_copy(update={"audio": self._result[0]}))

    def result(self) -> tuple[AudioTrack | None, list[str]]:
        if self._thread is None:
            return self._finish()
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        audio, warnings = self._result
        return audio, list(warnings)

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
        if self._thread is not None:
            self._thread.join(timeout=30)
