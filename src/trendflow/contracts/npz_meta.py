"""The `meta` entry of every component NPZ (SPEC section 7)."""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from trendflow.contracts.identity import RunIdentity, canonical_json
from trendflow.contracts.versions import NPZ_META_SCHEMA_VERSION

MASK_SUFFIX = "__mask"


class Producer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    version: str


class ModelUsed(BaseModel):
    """One model a component called; enters `model_signature`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_name: str
    model_version: str
    weights_digest: str
    engine: str
    precision: str
    device: str


def model_signature(models: list[ModelUsed]) -> str | None:
    """sha256 of the canonical list of models used; None for components without a model."""
    if not models:
        return None
    payload = sorted((m.model_dump() for m in models), key=canonical_json)
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


class NpzMeta(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: str = NPZ_META_SCHEMA_VERSION
    run: RunIdentity
    component: str
    processor: Literal["segmenter", "visual", "audio", "text"]
    producer: Producer
    component_schema_version: str = Field(description="Version of this component's array layout.")
    status: Literal["ok", "empty"]
    empty_reason: str | None = None
    arrays: dict[str, str] = Field(
        default_factory=dict, description="Array name -> 'dtype shape' for every stored array."
    )
    models_used: list[ModelUsed] = Field(default_factory=list)
    model_signature: str | None = None
    raw_text_retention_days: int | None = Field(
        None, description="Set only when the privacy policy allowed raw text into this NPZ."
    )

    @model_validator(mode="after")
    def _consistent(self) -> NpzMeta:
        if self.status == "empty" and not self.empty_reason:
            raise ValueError("status 'empty' requires empty_reason")
        if self.status == "ok" and self.empty_reason:
            raise ValueError("empty_reason is only allowed with status 'empty'")
        if self.model_signature != model_signature(self.models_used):
            raise ValueError("model_signature does not match models_used")
        return self
