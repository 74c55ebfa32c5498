"""`component_graph.yaml`: the DAG of components per analysis profile (SPEC section 6).

Loading validates the whole file: unknown components, cycles and dependencies on components a
profile does not enable are `config_error`s, raised before any video is touched.
"""

from __future__ import annotations

from functools import cached_property
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from trendflow.contracts.errors import ErrorCode, TrendFlowError

Processor = Literal["segmenter", "visual", "audio", "text"]
Unit = Literal["video", "frame", "frame_pair", "audio", "audio_window", "text_item"]
DEFAULT_GRAPH = Path(__file__).resolve().parents[3] / "component_graph.yaml"


class Sampling(BaseModel):
    """A component's frame budget: frames at `fps` (capped by `max_frames`), or `count` frames
    spread evenly over the video; `frame_pair` units get pairs one analysis frame apart."""

    model_config = ConfigDict(extra="forbid")

    fps: float | None = Field(None, gt=0)
    count: int | None = Field(None, gt=0)
    min_frames: int = Field(1, ge=1)
    max_frames: int = Field(600, ge=1)

    @model_validator(mode="after")
    def _one_rule(self) -> Sampling:
        if (self.fps is None) == (self.count is None):
            raise ValueError("sampling needs exactly one of fps or count")
        return self


class ModelRef(BaseModel):
    """The model a component calls on Triton, as the profile resolves it (SPEC 12)."""

    model_config = ConfigDict(extra="forbid")

    model_name: str
    model_version: str = "1"
    engine: str = "onnxruntime"
    precision: str = "fp32"
    device_policy: str = "cpu"


class ComponentDef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    processor: Processor
    unit: Unit
    description: str
    depends_on: list[str] = Field(default_factory=list)
    sampling: Sampling | None = None
    batching: dict[str, int] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    models: list[ModelRef] = Field(default_factory=list)


class ProfileComponent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    required: bool = True
    enabled: bool = True
    sampling: Sampling | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    models: list[ModelRef] | None = None


# Analysis settings that change how fast a run goes, never what it computes: kept out of config_hash.
SPEED_ONLY_ANALYSIS = frozenset({"workers", "component_nice", "decode_threads"})


class AnalysisSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_short_side: int = Field(720, ge=64, le=1080, description="Short side of analysed frames (<= 1080p).")
    audio_sample_rate: int = Field(22050, ge=8000, le=48000)
    audio_window_sec: float = Field(1.0, gt=0)
    min_duration_sec: float = 5.0
    max_duration_sec: float = 1200.0
    workers: int = Field(2, ge=1, le=16, description="Components run concurrently (threads).")
    component_nice: int = Field(
        10,
        ge=0,
        le=19,
        description="In a streaming run, how much nicer the component threads are than the decoder, "
        "which paces the run: they use the cores it leaves idle (0: same priority).",
    )
    decode_threads: int = Field(
        16,
        ge=0,
        le=16,
        description="Frame threads of the video decoder (0: FFmpeg's automatic count, cores + 1). "
        "More frames in flight keep the cores busy when the decode skips non-reference frames and "
        "every decoded frame waits on the one before it; the frames are the same at any count.",
    )


class ProfileDef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str
    extends: str | None = None
    analysis: AnalysisSettings | None = None
    components: dict[str, ProfileComponent] = Field(default_factory=dict)


class GraphFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = 1
    components: dict[str, ComponentDef]
    profiles: dict[str, ProfileDef]


class ResolvedComponent(BaseModel):
    """One component as a profile runs it: definition merged with the profile's overrides."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    processor: Processor
    unit: Unit
    required: bool
    depends_on: tuple[str, ...]
    sampling: Sampling | None
    batching: dict[str, int]
    params: dict[str, Any]
    models: tuple[ModelRef, ...]


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    analysis: AnalysisSettings
    components: dict[str, ResolvedComponent]

    @cached_property
    def order(self) -> list[str]:
        """Topological order; ties broken by name so the order is stable."""
        sorter = TopologicalSorter({n: c.depends_on for n, c in self.components.items()})
        sorter.prepare()
        order: list[str] = []
        while sorter.is_active():
            ready = sorted(sorter.get_ready())
            order.extend(ready)
            sorter.done(*ready)
        return order

    def canonical(self) -> dict[str, Any]:
        """What enters config_hash: everything that changes results, nothing cosmetic."""
        return {
            "name": self.name,
            "analysis": self.analysis.model_dump(exclude=SPEED_ONLY_ANALYSIS),
            "components": {n: c.model_dump(mode="json") for n, c in sorted(self.components.items())},
        }

    def model_mapping(self) -> dict[str, list[dict[str, Any]]]:
        return {n: [m.model_dump() for m in c.models] for n, c in sorted(self.components.items()) if c.models}


def _config_error(message: str) -> TrendFlowError:
    return TrendFlowError(ErrorCode.CONFIG_ERROR, message)


class ComponentGraph:
    def __init__(self, spec: GraphFile) -> None:
        self.spec = spec
        self.profiles = {name: self._resolve(name) for name in spec.profiles}

    @classmethod
    def load(cls, path: str | Path | None = None) -> ComponentGraph:
        path = Path(path or DEFAULT_GRAPH)
        try:
            raw = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise _config_error(f"cannot read component graph {path}: {exc}") from exc
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ComponentGraph:
        try:
            spec = GraphFile.model_validate(raw)
        except ValidationError as exc:
            raise _config_error(f"invalid component graph: {exc}") from exc
        for name, comp in spec.components.items():
            for dep in comp.depends_on:
                if dep not in spec.components:
                    raise _config_error(f"component {name} depends on unknown component {dep}")
        return cls(spec)

    def profile(self, name: str) -> Profile:
        if name not in self.profiles:
            raise TrendFlowError(
                ErrorCode.INVALID_REQUEST,
                f"unknown profile {name!r}; known: {', '.join(sorted(self.profiles))}",
            )
        return self.profiles[name]

    def _merged_entries(self, name: str, seen: tuple[str, ...] = ()) -> tuple[AnalysisSettings, dict]:
        if name in seen:
            raise _config_error(f"profile inheritance cycle: {' -> '.join((*seen, name))}")
        prof = self.spec.profiles.get(name)
        if prof is None:
            raise _config_error(f"profile {seen[-1] if seen else name} extends unknown profile {name}")
        analysis, entries = (
            self._merged_entries(prof.extends, (*seen, name)) if prof.extends else (AnalysisSettings(), {})
        )
        return prof.analysis or analysis, {**entries, **prof.components}

    def _resolve(self, name: str) -> Profile:
        analysis, entries = self._merged_entries(name)
        enabled = {n: e for n, e in entries.items() if e.enabled}
        resolved: dict[str, ResolvedComponent] = {}
        for comp_name, entry in enabled.items():
            definition = self.spec.components.get(comp_name)
            if definition is None:
                raise _config_error(f"profile {name} enables unknown component {comp_name}")
            for dep in definition.depends_on:
                if dep not in enabled:
                    raise _config_error(
                        f"profile {name}: component {comp_name} depends on {dep}, which the profile "
                        "does not enable"
                    )
            resolved[comp_name] = ResolvedComponent(
                name=comp_name,
                processor=definition.processor,
                unit=definition.unit,
                required=entry.required,
                depends_on=tuple(definition.depends_on),
                sampling=entry.sampling or definition.sampling,
                batching=definition.batching,
                params={**definition.params, **entry.params},
                models=tuple(entry.models if entry.models is not None else definition.models),
            )
        profile = Profile(name=name, analysis=analysis, components=resolved)
        try:
            _ = profile.order
        except CycleError as exc:
            raise _config_error(f"profile {name}: dependency cycle {exc.args[1]}") from exc
        return profile
