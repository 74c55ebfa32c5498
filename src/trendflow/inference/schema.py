"""The `predictions.json` contract (one file per video) and the snapshot1 facts of a request.

Values on the log1p scale are what the models predict (`log1p(max(delta, 0))` at the horizon);
counts are derived from them: delta = expm1(log1p_delta), count = snapshot1 count + delta.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PREDICTIONS_SCHEMA_VERSION = "1.1.0"  # 1.1: target_date per horizon; rounded numbers


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Snapshot1Facts(_Strict):
    """What is known about the video at its first snapshot (the moment of the forecast)."""

    snapshot_at: datetime = Field(description="When the counters were read (UTC).")
    published_at: datetime | None = None
    # Counts are finite and non-negative: inf, NaN or a negative count is an invalid request.
    views: float | None = Field(None, ge=0, allow_inf_nan=False)
    likes: float | None = Field(None, ge=0, allow_inf_nan=False)
    comments: float | None = Field(None, ge=0, allow_inf_nan=False)
    channel_id: str | None = None
    title: str | None = Field(None, description="Used for text statistics only; never written out.")
    description: str | None = Field(None, description="Used for text statistics only; never written out.")
    tags: list[str] | None = None
    category: str | None = None
    language: str | None = None
    duration_sec: float | None = Field(None, ge=0, allow_inf_nan=False)
    channel_subscriber_count: float | None = Field(None, ge=0, allow_inf_nan=False)

    _utc_times = field_validator("snapshot_at", "published_at")(lambda cls, v: _utc(v))

    @model_validator(mode="after")
    def _published_before_snapshot(self) -> Snapshot1Facts:
        if self.published_at is not None and self.published_at > self.snapshot_at:
            raise ValueError(
                f"published_at {self.published_at.isoformat()} is after snapshot_at "
                f"{self.snapshot_at.isoformat()}: counters cannot be read before publication"
            )
        return self

    def public(self) -> dict:
        """The facts that may be written into predictions.json (no raw text)."""
        return self.model_dump(mode="json", exclude={"title", "description", "tags"})


class Interval(_Strict):
    level: float
    method: str
    log1p_delta_low: float
    log1p_delta_high: float
    delta_low: float
    delta_high: float
    count_low: float | None
    count_high: float | None


class ModelRef(_Strict):
    """Which model made a prediction: enough to find it again."""

    source: Literal["registry", "bundle"]
    algorithm: str
    name: str = Field(description="Registered model name, or the bundle's model key.")
    version: str = Field(description="Registry version, or the bundle id.")
    alias: str | None = None
    uri: str
    bundle_id: str | None = None
    training_run_id: str | None = None
    dataset_fingerprint: str | None = None
    trained_on_split: str | None = None


class Contribution(_Strict):
    feature: str
    value: float | str | None
    contribution: float


class Contributions(_Strict):
    method: Literal["tree_shap"] = "tree_shap"
    base_value: float
    top: list[Contribution]


class TargetPrediction(_Strict):
    target: str
    horizon: str
    horizon_hours: float | None
    predicted_log1p_delta: float
    predicted_delta: float
    predicted_count: float | None = Field(
        description="snapshot1 count + predicted delta (None: count unknown)"
    )
    target_date: datetime | None = Field(
        None, description="snapshot_at + the horizon: the moment the prediction is about (UTC)."
    )
    interval: Interval
    model: ModelRef
    contributions: Contributions


class VideoRef(_Strict):
    platform_id: str
    video_id: str
    run_id: str | None
    run_dir: str | None
    config_hash: str | None


class FeatureReport(_Strict):
    count: int
    missing_values: list[str] = Field(description="Model features that are missing (NaN) for this video.")


class PredictionsDocument(_Strict):
    schema_version: str = PREDICTIONS_SCHEMA_VERSION
    created_at: datetime
    video: VideoRef
    snapshot1: dict
    predictions: list[TargetPrediction]
    features: FeatureReport
    warnings: list[str] = Field(default_factory=list)
