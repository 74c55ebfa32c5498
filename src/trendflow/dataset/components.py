"""The tier-0 component set the training table always has columns for, from the declarations.

The `signals` profile (component_graph.yaml) names the components; each component's declared
outputs (dataprocessor/outputs.py) give its feature arrays and their kinds. Real runs of that
profile and the synthetic corpus share these columns, so neither is listed by hand here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trendflow.dataprocessor.component import Component
    from trendflow.dataprocessor.outputs import OutputArray

FEATURE_PROFILE = "signals"


@dataclass(frozen=True)
class ArraySpec:
    kind: str  # scalar | category | series | vector
    dim: int | None = None


@dataclass(frozen=True)
class Tier0Component:
    name: str
    processor: str
    required: bool
    component: type[Component]

    @property
    def features(self) -> dict[str, ArraySpec]:
        from trendflow.dataprocessor.outputs import feature_arrays

        return {o.name: spec_of(o) for o in feature_arrays(self.component.outputs)}


def resolve_config_hash(config_hash: str | None, profile: str | None) -> str | None:
    """`run_features.config_hash: profile` -> the config_hash of `profile` (`dataset.profile`,
    default `signals`); `auto`, null and a sha256 stay as they are."""
    if config_hash != "profile":
        return config_hash
    from trendflow.worker.execution import profile_config_hash

    return profile_config_hash(profile or FEATURE_PROFILE)


def spec_of(output: OutputArray) -> ArraySpec:
    if output.kind in ("vector", "run_vector"):
        return ArraySpec("vector", output.dim)
    return ArraySpec(output.kind)


def tier0_components() -> tuple[Tier0Component, ...]:
    """The `signals` profile's components in the profile's order (the segmenter is no feature)."""
    return profile_components(FEATURE_PROFILE)


@cache
def profile_components(name: str) -> tuple[Tier0Component, ...]:
    """The feature components of one profile of component_graph.yaml, in the profile's order."""
    from trendflow.dataprocessor.component import component_class
    from trendflow.dataprocessor.graph import ComponentGraph

    profile = ComponentGraph.load().profile(name)
    return tuple(
        Tier0Component(name, spec.processor, spec.required, component_class(name))
        for name, spec in profile.components.items()
        if name != "segmenter"
    )


@cache
def known_components() -> dict[str, tuple[str, dict[str, ArraySpec]]]:
    """component -> (processor, feature array -> its spec)."""
    return {c.name: (c.processor, c.features) for c in tier0_components()}
