"""Typed parameters of the processing, dataset and inference pipelines (training: training.config).

`validate_parameters` checks every pipeline's block once, when a Kedro session creates its
context (`trendflow.hooks.ParameterValidationHook`), so a typo (`snapshot_sorce`) or a bad value
fails the run before any node starts, naming the key. Nodes keep receiving the plain dicts that
the library functions take; these models only define what is allowed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trendflow.contracts.errors import ErrorCode, TrendFlowError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- processing ----------------------------------------------------------------------------------
class ProcessingParams(_Strict):
    profile: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    video_list: Literal["file", "snapshots"] = "file"
    max_videos: int | None = Field(None, ge=1)
    video_list_base_dir: str | None = None
    force: bool = False
    stage_inputs: Literal["auto", "always", "never"] = "auto"
    broker_url: str | None = None
    queue: str | None = None
    local_workers: int = Field(2, ge=0)
    poll_s: float = Field(0.5, gt=0)
    log_every_s: float = Field(10, gt=0)
    timeout_s: float | None = Field(None, gt=0)
    no_worker_timeout_s: float = Field(300, gt=0)


# -- dataset -------------------------------------------------------------------------------------
Duration = str | int | float  # '7d', '36h', '2w', '90m' or hours (trendflow.dataset.schema.parse_duration)


class HorizonParams(_Strict):
    name: str = Field(pattern=r"^[0-9]+[a-z]+$")
    offset: Duration | None = None
    tolerance: Duration | None = None
    required: bool = False


class RunFeatureParams(_Strict):
    config_hash: str = "auto"  # profile | auto | a sha256
    n_jobs: int | Literal["auto"] = "auto"
    max_pooled_dims: int = Field(64, ge=1)
    pca_components: int = Field(8, ge=1)
    drop_rows_without_run: bool = False


class EnrichmentParams(_Strict):
    enabled: bool | Literal["auto"] = "auto"
    cache_path: str = "data/02_intermediate/youtube_api_cache.jsonl"
    base_url: str = "https://www.googleapis.com/youtube/v3"
    timeout_sec: float = Field(10, gt=0)
    max_attempts: int = Field(5, ge=1)
    backoff_initial_sec: float = Field(1.0, ge=0)
    backoff_max_sec: float = Field(60.0, ge=0)
    use_api_channel_statistics: bool = False


class TimeSplitParams(_Strict):
    train_fraction: float = Field(0.7, gt=0, lt=1)
    valid_fraction: float = Field(0.15, ge=0, lt=1)
    test_fraction: float | None = Field(None, ge=0, lt=1)
    gap: Duration = "0h"


class ChannelSplitParams(_Strict):
    train_fraction: float = Field(0.7, gt=0, lt=1)
    valid_fraction: float = Field(0.15, ge=0, lt=1)
    test_fraction: float | None = Field(None, ge=0, lt=1)
    seed: int = 42
    missing_channel: Literal["exclude", "train"] = "exclude"


class SplitParams(_Strict):
    time: TimeSplitParams = Field(default_factory=TimeSplitParams)
    channel: ChannelSplitParams = Field(default_factory=ChannelSplitParams)


class SyntheticParams(BaseModel):
    """The SYNTHETIC corpus: `n_jobs`, `sample_snapshots` and the fields of SyntheticConfig."""

    model_config = ConfigDict(extra="allow")

    n_jobs: int = Field(1, ge=1)
    sample_snapshots: bool | None = None  # join the `synthetic_sample_snapshots` catalog entry

    def unknown(self) -> list[str]:
        from trendflow.dataset.synthetic import SyntheticConfig

        return sorted(set(self.model_extra or {}) - set(SyntheticConfig.__dataclass_fields__))


class DatasetParams(_Strict):
    snapshot_source: Literal["synthetic", "canonical", "trending", "huggingface"] = "synthetic"
    profile: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$")  # null: processing.profile
    targets: list[Literal["views", "likes", "comments"]] = Field(default_factory=lambda: ["views", "likes"])
    horizons: list[HorizonParams | str] | dict[str, dict[str, Any] | None] = Field(min_length=1)
    default_tolerance: Duration = "1d"
    missing_required_horizon: Literal["keep", "drop"] = "keep"
    run_features: RunFeatureParams = Field(default_factory=RunFeatureParams)
    enrichment: EnrichmentParams = Field(default_factory=EnrichmentParams)
    splits: SplitParams = Field(default_factory=SplitParams)
    synthetic: SyntheticParams = Field(default_factory=SyntheticParams)


# -- inference -----------------------------------------------------------------------------------
class FromTableParams(_Strict):
    split_column: Literal["split_time", "split_channel"] = "split_time"
    split: Literal["train", "valid", "test", "excluded"] = "test"
    limit: int = Field(3, ge=1)


class InferenceParams(_Strict):
    videos: list[dict[str, Any]] = Field(default_factory=list)
    from_table: FromTableParams = Field(default_factory=FromTableParams)
    required_features: list[str] = Field(default_factory=list)
    require_run: bool = True
    top_contributions: int = Field(8, ge=0)


MODELS: dict[str, type[BaseModel]] = {
    "processing": ProcessingParams,
    "dataset": DatasetParams,
    "inference": InferenceParams,
}


def validate_parameters(params: dict[str, Any]) -> dict[str, BaseModel]:
    """Validate each pipeline's block that is present; a CONFIG_ERROR names every bad key."""
    problems: list[str] = []
    validated: dict[str, BaseModel] = {}
    for key, model in MODELS.items():
        if key not in params:
            continue
        try:
            validated[key] = model.model_validate(params[key])
        except ValidationError as exc:
            problems += [
                f"{key}.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)
            ]
            continue
        if isinstance(validated[key], DatasetParams):
            problems += [
                f"dataset.synthetic.{name}: Extra inputs are not permitted"
                for name in validated[key].synthetic.unknown()  # type: ignore[attr-defined]
            ]
    if problems:
        raise TrendFlowError(
            ErrorCode.CONFIG_ERROR,
            "invalid parameters (conf/*/parameters_<pipeline>.yml or --params): " + "; ".join(problems),
        )
    return validated
