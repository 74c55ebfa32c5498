"""What every neural component needs from the run context: the Triton client and its model.

`ctx.services.triton` is the client the orchestrator (or a test) provides; with none there,
the components build one from TRENDFLOW_TRITON_URL, which still fails with
`triton_unavailable` when no server answers: there is no in-process path.
`ctx.services.resolved_models` (component -> ResolvedModel, the manifest's mapping) is
preferred for the weights digest; without it the repository's build manifests are read.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from trendflow.contracts.manifest import ResolvedModel
from trendflow.contracts.npz_meta import ModelUsed
from trendflow.serving.client import ModelInfo, TritonClient, shared_client
from trendflow.serving.model_resolution import ModelCatalog, model_used

if TYPE_CHECKING:
    from trendflow.dataprocessor.component import RunContext
    from trendflow.dataprocessor.graph import ResolvedComponent

T = TypeVar("T")
R = TypeVar("R")
IN_FLIGHT = 2  # requests one component keeps in flight while it reads its next frames


def pipelined(
    items: Iterable[T], call: Callable[[T], R], in_flight: int = IN_FLIGHT
) -> Iterator[tuple[T, R]]:
    """`(item, call(item))` in input order, with up to `in_flight` calls running at once (a small
    thread pool) while the next items are produced: a neural component sends batch k to Triton
    and reads batch k + 1 from the frame stream meanwhile. The batches are those of a plain loop,
    so the results are too. The first error propagates once the calls in flight have ended."""
    pending: deque[tuple[T, Future[R]]] = deque()
    with ThreadPoolExecutor(max_workers=max(1, in_flight), thread_name_prefix="infer") as pool:
        for item in items:
            pending.append((item, pool.submit(call, item)))
            if len(pending) >= in_flight:
                first, future = pending.popleft()
                yield first, future.result()
        while pending:
            first, future = pending.popleft()
            yield first, future.result()


@dataclass
class ServedModel:
    """A component's model on the server: call it, then record it."""

    client: TritonClient
    resolved: ResolvedModel
    info: ModelInfo

    @property
    def name(self) -> str:
        return self.resolved.model_name

    @property
    def version(self) -> str:
        return self.resolved.model_version

    @property
    def device(self) -> str:
        return self.info.device

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.client.infer(self.name, self.version, inputs)

    def infer_batched(
        self, inputs: dict[str, np.ndarray], batch_size: int | None = None
    ) -> dict[str, np.ndarray]:
        return self.client.infer_batched(self.name, self.version, inputs, batch_size)

    def used(self) -> ModelUsed:
        return model_used(self.resolved, self.device)


def triton_client(ctx: RunContext) -> TritonClient:
    return ctx.services.triton or shared_client()


def served_model(ctx: RunContext, spec: ResolvedComponent) -> ServedModel:
    """The component's one model, resolved and checked ready on the server (typed errors)."""
    (ref,) = spec.models
    resolved = ctx.services.resolved_models.get(spec.name)
    if resolved is None:
        resolved = (ctx.services.model_catalog or ModelCatalog()).resolve(ref)
    client = triton_client(ctx)
    info = client.require_model(resolved.model_name, resolved.model_version)
    return ServedModel(client=client, resolved=resolved, info=info)
