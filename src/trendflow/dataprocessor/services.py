"""The services a run lends its components: typed fields, not a string-keyed dict.

`triton` is the client the orchestrator (or a test) provides; with none, neural components build
one from TRENDFLOW_TRITON_URL (serving/component_support.py). `resolved_models` is the run's
model mapping (component -> ResolvedModel, the manifest's), filled by the orchestrator before
any component runs; `model_catalog` is where a component resolves its model when the mapping
lacks it (tests that call a component directly).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trendflow.contracts.manifest import ResolvedModel
    from trendflow.serving.client import TritonClient
    from trendflow.serving.model_resolution import ModelCatalog


@dataclass
class Services:
    triton: TritonClient | None = None
    resolved_models: dict[str, ResolvedModel] = field(default_factory=dict)
    model_catalog: ModelCatalog | None = None
