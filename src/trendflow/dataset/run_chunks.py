"""Columnar chunks of run-feature rows: what a worker sends back for a bounded batch of runs.

The build aggregates runs in batches of at most `CHUNK_RUNS` (runs.py `_chunks`); each batch
becomes one `RunChunk` in its worker: numeric values as float64 columns (NaN where a run has no
value), `<component>__present` as int8 (-1 where the run has no such component, so the build
can tell "absent" from False), strings as object columns, pooled wide vectors as matrices. So
the parent holds a few compact arrays per batch instead of a dict per run (about 200 boxed
floats each), and fills the table's columns with one slice assignment per column and batch.
The values are the per-run values unchanged, so the table and its fingerprint are the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trendflow.dataset.components import ArraySpec

PRESENT_SUFFIX = "__present"
ABSENT = -1
_NUMBER = (bool, int, float, np.bool_, np.integer, np.floating)


@dataclass
class RunChunk:
    size: int
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    # pooled vectors wider than max_pooled_dims: base -> (rows of this chunk, (k, D) matrix)
    vectors: dict[str, tuple[np.ndarray, list[np.ndarray]]] = field(default_factory=dict)
    specs: dict[tuple[str, str], ArraySpec] = field(default_factory=dict)

    @classmethod
    def from_rows(
        cls,
        rows: list[dict[str, Any]],
        vectors: list[dict[str, np.ndarray]],
        specs: list[dict[tuple[str, str], ArraySpec]],
    ) -> RunChunk:
        chunk = cls(size=len(rows))
        names: dict[str, None] = {}
        for row in rows:
            names.update(dict.fromkeys(row))
        for name in names:
            values = [row.get(name) for row in rows]
            chunk.columns[name] = _column(name, values)
        bases: dict[str, None] = {}
        for vec in vectors:
            bases.update(dict.fromkeys(vec))
        for base in bases:
            where = [i for i, vec in enumerate(vectors) if base in vec]
            chunk.vectors[base] = (np.asarray(where, dtype=np.int64), [vectors[i][base] for i in where])
        for found in specs:
            merge_specs(chunk.specs, found)
        return chunk


def _column(name: str, values: list[Any]) -> np.ndarray:
    if name.endswith(PRESENT_SUFFIX):
        return np.array([ABSENT if v is None else int(bool(v)) for v in values], dtype=np.int8)
    if all(v is None or isinstance(v, _NUMBER) for v in values):
        return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def merge_specs(into: dict[tuple[str, str], ArraySpec], found: dict[tuple[str, str], ArraySpec]) -> None:
    """First seen wins; a vector found wider than before widens its spec (order of runs kept)."""
    for key, spec in found.items():
        old = into.get(key)
        wider = spec.kind == "vector" and old is not None and old.kind == "vector"
        if old is None or (wider and (spec.dim or 0) > (old.dim or 0)):
            into[key] = spec


def fill(target: np.ndarray, rows: np.ndarray, source: np.ndarray, src: np.ndarray) -> None:
    """target[rows] = source[src], where source marks no value with NaN / None / ABSENT."""
    values = source[src]
    if values.dtype == np.int8:  # a __present column
        keep = values != ABSENT
        target[rows[keep]] = values[keep].astype(bool)
    elif target.dtype == object:
        if values.dtype != object:  # a float column: NaN is "no value", None in a string column
            boxed = values.astype(object)
            boxed[np.isnan(values)] = None
            values = boxed
        target[rows] = values
    else:
        target[rows] = values.astype(np.float64)
