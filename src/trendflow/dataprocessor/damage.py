"""The damaged-media policy of the segmenter (docs/segmenter.md, "Damaged media policy"): skip what
cannot be decoded, warn when much is lost, fail (`invalid_media`) when too little is left."""

from __future__ import annotations

from pathlib import Path

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.metadata import AudioTrack, DecodeStats
from trendflow.dataprocessor.decode import DecodeOutcome

# Damaged-media thresholds (docs/segmenter.md, "Damaged media policy"). With decode errors, a
# target whose nearest frame is off the grid stands in for a lost frame, so it counts as lost.
MAX_LOST_SHARE = 0.5  # lost targets (missing, or off-grid in a damaged stream) above: invalid_media
MAX_PACKET_ERROR_SHARE = 0.5  # rejected packets / (decoded frames + rejected) above: invalid_media
WARN_LOST_SHARE = 0.1  # above (and not invalid): a run-level warning in the manifest
WARN_PACKET_ERROR_SHARE = 0.05
MIN_AUDIO_SHARE = 0.5  # decoded audio shorter than this share of the video: a run-level warning
RUN_WARNING_PREFIX = "media damaged: "  # segmenter warnings the run lifts into manifest.warnings


def invalid(path: Path, why: str) -> TrendFlowError:
    return TrendFlowError(ErrorCode.INVALID_MEDIA, f"{path.name}: {why}", path=str(path))


def damage_shares(stats: DecodeStats, wanted: int) -> tuple[float, float]:
    """(share of targets lost, share of packets rejected) of one decode pass."""
    damaged = stats.decode_errors + stats.corrupt_frames > 0
    lost = stats.targets_missing + (stats.targets_off_grid if damaged else 0)
    lost_share = lost / wanted if wanted else 0.0
    seen = stats.frames_decoded + stats.decode_errors
    return lost_share, (stats.decode_errors / seen if seen else 0.0)


def audio_damage(audio: AudioTrack | None, duration_sec: float) -> list[str]:
    if audio is None:
        return [f"{RUN_WARNING_PREFIX}the audio track could not be decoded; audio components report empty"]
    if duration_sec > 0 and audio.duration_sec < MIN_AUDIO_SHARE * duration_sec:
        return [
            f"{RUN_WARNING_PREFIX}only {audio.duration_sec:.1f}s of audio decodable in a "
            f"{duration_sec:.1f}s video"
        ]
    return []


def decode_warnings(outcome: DecodeOutcome, wanted: int, path: Path) -> list[str]:
    """Damaged-stream policy: skip what cannot be decoded, fail when too little is left."""
    stats = outcome.stats
    lost_share, error_share = damage_shares(stats, wanted)
    too_damaged = lost_share > MAX_LOST_SHARE or error_share > MAX_PACKET_ERROR_SHARE
    if wanted and (not outcome.union_times_sec or too_damaged):
        if outcome.frames_file is not None:
            outcome.frames_file.unlink(missing_ok=True)
        raise invalid(
            path,
            f"{lost_share:.0%} of {wanted} sampled frames lost and {error_share:.0%} of packets rejected "
            f"({stats.decode_errors} damaged packet(s)); the stream is too damaged to analyse "
            f"(limits {MAX_LOST_SHARE:.0%} and {MAX_PACKET_ERROR_SHARE:.0%})",
        )
    warnings = []
    if lost_share > WARN_LOST_SHARE or error_share > WARN_PACKET_ERROR_SHARE:
        warnings.append(
            f"{RUN_WARNING_PREFIX}{lost_share:.0%} of sampled frames lost or replaced by a distant frame, "
            f"{error_share:.0%} of video packets rejected; features describe what survived"
        )
    if stats.decode_errors:
        warnings.append(f"video: {stats.decode_errors} damaged packet(s) skipped")
    if stats.corrupt_frames:
        warnings.append(f"video: {stats.corrupt_frames} decoded frame(s) flagged corrupt (concealed errors)")
    if stats.targets_missing:
        warnings.append(
            f"video: {stats.targets_missing} of {wanted} sampled frames lie past the decodable end; dropped"
        )
    if stats.targets_off_grid:
        warnings.append(
            f"video: {stats.targets_off_grid} sampled frame(s) are over half an analysis frame from their "
            f"target (largest gap {stats.max_target_error_sec:.3f}s): variable frame rate or lost frames"
        )
    if stats.passes > 1:
        warnings.append("video: skip_frame=NONREF lost precision on this stream; decoded every frame instead")
    return warnings
