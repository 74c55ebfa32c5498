"""`frames_dir/metadata.json`: the segmenter's contract with every component (SPEC section 5)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from trendflow.contracts.identity import RunIdentity
from trendflow.contracts.versions import METADATA_SCHEMA_VERSION


class SourceFacts(BaseModel):
    """What the probe found in the input file, before any analysis decision."""

    model_config = ConfigDict(extra="forbid")

    container: str
    video_codec: str
    audio_codec: str | None = None
    duration_sec: float = Field(gt=0)
    fps: float = Field(gt=0, description="Average frame rate of the video stream.")
    variable_frame_rate: bool = False
    width: int = Field(gt=0, description="Coded width, before rotation.")
    height: int = Field(gt=0, description="Coded height, before rotation.")
    rotation: int = Field(
        0,
        description="Clockwise degrees (0, 90, 180, 270) the coded picture turns for display, as the "
        "classic `rotate` tag says; stored frames already have it applied.",
    )
    pixel_aspect: float = Field(
        1.0, gt=0, description="Sample (pixel) aspect ratio; stored frames have square pixels."
    )
    has_audio: bool
    audio_sample_rate: int | None = None
    audio_channels: int | None = None
    bytes: int = Field(ge=0)
    sha256: str


class AudioSegment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start_sec: float = Field(ge=0)
    end_sec: float = Field(gt=0)


class AudioTrack(BaseModel):
    """The extracted audio: mono float32 at a fixed rate, stored next to the frames."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="Path relative to frames_dir of the mono float32 .npy file.")
    sample_rate: int = Field(gt=0)
    num_samples: int = Field(ge=0)
    duration_sec: float = Field(ge=0)
    segments: list[AudioSegment] = Field(
        default_factory=list, description="Fixed windows for window-based audio components."
    )


class ComponentSampling(BaseModel):
    """One component's frames: indices into the union, chosen from the component's budget."""

    model_config = ConfigDict(extra="forbid")

    frame_indices: list[int]
    unit: Literal["frame", "frame_pair"] = "frame"
    budget: dict[str, float | int | str] = Field(default_factory=dict)


class DecodeStats(BaseModel):
    """How the segmenter's one decode pass went: what a reader needs to trust the frames."""

    model_config = ConfigDict(extra="forbid")

    passes: int = Field(1, ge=0, description="Decode passes (0: no component samples frames).")
    skip_frame: str = Field("DEFAULT", description="Decoder skip_frame mode of the pass kept.")
    frames_decoded: int = Field(0, ge=0)
    decode_errors: int = Field(0, ge=0, description="Packets the decoder rejected (skipped).")
    corrupt_frames: int = Field(0, ge=0, description="Frames the decoder flagged as concealed.")
    targets_missing: int = Field(0, ge=0, description="Targets beyond the decodable part (dropped).")
    targets_off_grid: int = Field(
        0, ge=0, description="Targets whose nearest frame is over half an analysis frame away (VFR holds)."
    )
    max_target_error_sec: float = Field(0.0, ge=0)


class FramesMetadata(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: str = METADATA_SCHEMA_VERSION
    run: RunIdentity
    source: SourceFacts
    analysis_fps: float = Field(gt=0, description="Highest sampling rate any component asked for.")
    analysis_width: int = Field(gt=0, description="Display width of stored frames (rotation applied).")
    analysis_height: int = Field(gt=0)
    color_space: Literal["RGB"] = "RGB"
    frames_file: str = Field(description="Path relative to frames_dir of the (N, H, W, 3) uint8 .npy.")
    union_timestamps_sec: list[float]
    components: dict[str, ComponentSampling]
    audio: AudioTrack | None = None
    sampling_policy_version: str
    decode: DecodeStats | None = None
    warnings: list[str] = Field(
        default_factory=list, description="Non-fatal findings (damaged packets, no audio, ...)."
    )

    @model_validator(mode="after")
    def _indices_in_union(self) -> FramesMetadata:
        n = len(self.union_timestamps_sec)
        for name, sampling in self.components.items():
            bad = [i for i in sampling.frame_indices if not 0 <= i < n]
            if bad:
                raise ValueError(f"component {name}: frame_indices {bad[:5]} outside union of {n}")
        if self.sampling_policy_version != self.run.sampling_policy_version:
            raise ValueError("sampling_policy_version differs from the run identity's")
        return self
