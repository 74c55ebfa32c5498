"""The synthetic corpus's knobs (sizes, seed, fractions of each failure mode) and its digest."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any

from trendflow.contracts.identity import compute_config_hash
from trendflow.contracts.versions import SAMPLING_POLICY_VERSION


@dataclass(frozen=True)
class SyntheticConfig:
    n_videos: int = 400
    n_channels: int = 40
    seed: int = 7
    start: str = "2026-01-05T00:00:00+00:00"
    span_days: float = 90.0
    snapshot_every_hours: float = 24.0
    snapshot_jitter_hours: float = 2.0
    history_days: float = 24.0
    frac_short_history: float = 0.08
    frac_no_audio: float = 0.1
    frac_no_run: float = 0.04
    frac_failed_run: float = 0.03
    frac_superseded_run: float = 0.05
    frac_channel_in_run_only: float = 0.1
    frac_channel_unknown: float = 0.03
    units_min: int = 24
    units_max: int = 96
    # The component profile the corpus stands in for: its config_hash and its components, so the
    # runs of real videos processed with that profile join the same table.
    profile: str = "signals"

    @classmethod
    def from_params(cls, params: dict[str, Any] | None) -> SyntheticConfig:
        known = {k: v for k, v in (params or {}).items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def digest(self) -> str:
        # the profile enters through its config_hash (a profile name alone says nothing of its content)
        fields = {k: v for k, v in asdict(self).items() if k != "profile"}
        payload = {**fields, "config_hash": self.config_hash}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    @cached_property
    def config_hash(self) -> str:
        """The profile's config_hash: synthetic runs stand in for real runs of that profile, so
        real videos processed with it share the table's run features. Computed once per config
        (parsing the component graph per run was most of the generator's time)."""
        from trendflow.dataprocessor.graph import ComponentGraph

        profile = ComponentGraph.load().profile(self.profile)
        return compute_config_hash(profile.canonical(), SAMPLING_POLICY_VERSION, profile.model_mapping())
