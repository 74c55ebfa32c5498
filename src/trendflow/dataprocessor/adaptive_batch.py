"""DynamicBatching under memory pressure: a component that runs out of memory retries with half
its batch, down to 1, before it fails.

Out of memory is a `MemoryError` in this process (host RAM), or a typed `out_of_memory` /
`insufficient_gpu_memory` error (the Triton client maps a GPU OOM onto the latter). Only
components with a `batching.batch_size` in component_graph.yaml can shrink; the others fail as
before. Every halving is journaled (Level 3 event `batch_halved`: old and new batch size, RSS), the
batch sizes actually used land in the component's state and manifest record, and `trendflow
stats` shows OOM events and halvings per component.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.dataprocessor.graph import ResolvedComponent

T = TypeVar("T")
OOM_CODES = frozenset({ErrorCode.OUT_OF_MEMORY, ErrorCode.INSUFFICIENT_GPU_MEMORY})
BATCH_KEY = "batch_size"
OnHalve = Callable[[int, int, str], None]  # (old batch, new batch, why)


def is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or (isinstance(exc, TrendFlowError) and exc.code in OOM_CODES)


def run_halving(spec: ResolvedComponent, run_once: Callable[[ResolvedComponent], T], on_halve: OnHalve) -> T:
    """`run_once(spec)`; on out of memory, again with half of `spec.batching["batch_size"]`, down to
    1. The last out-of-memory error propagates unchanged."""
    while True:
        try:
            return run_once(spec)
        except (MemoryError, TrendFlowError) as exc:
            batch = int(spec.batching.get(BATCH_KEY, 0))
            if not is_out_of_memory(exc) or batch <= 1:
                raise
            smaller = max(1, batch // 2)
            on_halve(batch, smaller, f"{type(exc).__name__}: {exc}"[:300])
            spec = spec.model_copy(update={"batching": {**spec.batching, BATCH_KEY: smaller}})
