"""What a component is: a small class that turns a run context into named, masked arrays.

A component never writes files, never picks frames and never catches its own errors to hide
them: the orchestrator reads `frame_indices` for it from metadata.json, writes its NPZ, and
turns exceptions into manifest records. Components register themselves by name.

Each component declares its output arrays once (`outputs`, see outputs.py): the orchestrator
checks every output against the declaration, and the valid-empty form, the dataset's feature
columns and the synthetic corpus are derived from it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.npz_meta import MASK_SUFFIX, ModelUsed, NpzMeta
from trendflow.dataprocessor.frame_stream import FrameBus, StreamFrames, current_component
from trendflow.dataprocessor.outputs import OutputArray, check_arrays, empty_arrays_of
from trendflow.dataprocessor.services import Services

if TYPE_CHECKING:
    from trendflow.contracts.identity import RunIdentity
    from trendflow.contracts.metadata import FramesMetadata
    from trendflow.dataprocessor.frame_store import FrameStore
    from trendflow.dataprocessor.graph import ResolvedComponent
    from trendflow.dataprocessor.sources import SourceInfo
    from trendflow.storage.layout import RunLayout
    from trendflow.storage.store import ResultStore


@dataclass(frozen=True)
class PrivacyPolicy:
    """SPEC 13: raw text stays out of NPZ unless this policy says otherwise, with a retention limit."""

    keep_raw_text: bool = False
    raw_text_retention_days: int | None = None
    keep_frames: bool = False
    keep_media: bool = False

    def __post_init__(self) -> None:
        days = self.raw_text_retention_days
        if days is not None and (isinstance(days, bool) or not isinstance(days, int) or days <= 0):
            raise TrendFlowError(
                ErrorCode.INVALID_REQUEST,
                f"raw_text_retention_days must be a positive whole number of days, got {days!r}",
            )
        if self.keep_raw_text and not self.raw_text_retention_days:
            raise TrendFlowError(
                ErrorCode.INVALID_REQUEST,
                "keeping raw text needs a retention limit (raw_text_retention_days > 0)",
            )


@dataclass
class ComponentOutput:
    arrays: dict[str, np.ndarray]
    empty_reason: str | None = None
    warnings: list[str] = field(default_factory=list)
    units_processed: int = 0
    batch_sizes: list[int] = field(default_factory=list)
    models_used: list[ModelUsed] = field(default_factory=list)
    device_used: str = "cpu"
    raw_text_kept: bool = False


@dataclass
class RunContext:
    """Everything a component may read. Frames and audio are local scratch, loaded lazily."""

    identity: RunIdentity
    store: ResultStore
    layout: RunLayout
    source_info: SourceInfo
    policy: PrivacyPolicy
    metadata: FramesMetadata | None = None
    frames: FrameStore | StreamFrames | None = None
    audio_loader: Callable[[], np.ndarray | None] | None = None
    dependency_reader: Callable[[str], tuple[dict[str, np.ndarray], NpzMeta]] | None = None
    services: Services = field(default_factory=Services)
    _audio: np.ndarray | None = None

    @property
    def stream(self) -> FrameBus | None:
        return self.frames.bus if isinstance(self.frames, StreamFrames) else None

    def frame_indices(self, component: str) -> list[int]:
        """The segmenter's choice for this component (SPEC 2: never chosen by the component).

        In a streaming run a component that reads the stream gets its planned targets (which the
        segmenter maps onto the stored union in metadata.json when the decode ends): the frames
        and times it reads through them are the ones metadata.json's indices name."""
        if self.stream is not None and self.stream.streams(component):
            return self.stream.begin(component)
        if self.metadata is None or component not in self.metadata.components:
            raise TrendFlowError(
                ErrorCode.DEPENDENCY_MISSING,
                f"metadata.json has no frame_indices for component {component}",
            )
        return self.metadata.components[component].frame_indices

    def timestamps(self, indices: list[int]) -> np.ndarray:
        if self.stream is not None and self.stream.streams(current_component()):
            return self.stream.times(indices)
        assert self.metadata is not None
        union = self.metadata.union_timestamps_sec
        return np.asarray([union[i] for i in indices], dtype=np.float64)

    def audio(self) -> np.ndarray | None:
        """Mono float32 at metadata.audio.sample_rate, or None when the video has no audio."""
        if self._audio is None and self.audio_loader is not None:
            self._audio = self.audio_loader()
        return self._audio

    def dependency(self, name: str) -> tuple[dict[str, np.ndarray], NpzMeta]:
        if self.dependency_reader is None:
            raise TrendFlowError(ErrorCode.DEPENDENCY_MISSING, f"no reader for dependency {name}")
        return self.dependency_reader(name)


class NoParams(BaseModel):
    """A component's typed params (component_graph.yaml `params`); subclass it with fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Component(ABC):
    """Subclasses set `name`, `processor`, `schema_version`, `outputs`, `Params` and implement `run`."""

    name: ClassVar[str]
    processor: ClassVar[str]
    schema_version: ClassVar[str] = "1.0.0"
    version: ClassVar[str] = "1.0.0"
    outputs: ClassVar[tuple[OutputArray, ...]] = ()
    Params: ClassVar[type[NoParams]] = NoParams

    @classmethod
    def empty_arrays(cls) -> dict[str, np.ndarray]:
        """The valid-empty form of the declared outputs (NaN or no units, all-False masks)."""
        return empty_arrays_of(cls.outputs)

    @classmethod
    def empty_output(cls, reason: str, **fields: Any) -> ComponentOutput:
        return ComponentOutput(arrays=cls.empty_arrays(), empty_reason=reason, **fields)

    @classmethod
    def check_output(cls, arrays: dict[str, np.ndarray]) -> None:
        """A TrendFlowError(INTERNAL) when `arrays` do not match the declared outputs."""
        check_arrays(cls.name, cls.outputs, arrays)

    def __init__(self, spec: ResolvedComponent) -> None:
        self.spec = spec
        self.params: Any = self.parse_params(spec.params)

    @classmethod
    def parse_params(cls, raw: dict[str, Any]) -> NoParams:
        """The graph's params for this component, typed; unknown or ill-typed ones: config_error."""
        try:
            return cls.Params.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise TrendFlowError(ErrorCode.CONFIG_ERROR, f"component {cls.name} params: {problems}") from None

    @abstractmethod
    def run(self, ctx: RunContext) -> ComponentOutput: ...


def masked(name: str, values: Any, mask: Any | None = None, dtype: Any = np.float32) -> dict[str, np.ndarray]:
    """`{name: values, name__mask: mask}`; the mask defaults to "value is finite"."""
    arr = np.asarray(values, dtype=dtype)
    if mask is None:
        mask = np.isfinite(arr) if np.issubdtype(arr.dtype, np.floating) else np.ones(arr.shape, bool)
        if arr.ndim == 2:
            mask = mask.all(axis=1)
    return {name: arr, name + MASK_SUFFIX: np.asarray(mask, dtype=bool)}


_REGISTRY: dict[str, type[Component]] = {}


def register(cls: type[Component]) -> type[Component]:
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"component {cls.name} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def component_class(name: str) -> type[Component]:
    # Importing the processors package registers every built-in component.
    import trendflow.dataprocessor.processors  # noqa: F401

    try:
        return _REGISTRY[name]
    except KeyError:
        raise TrendFlowError(
            ErrorCode.CONFIG_ERROR, f"component {name} has no implementation registered"
        ) from None


def registered_components() -> dict[str, type[Component]]:
    import trendflow.dataprocessor.processors  # noqa: F401

    return dict(_REGISTRY)
