"""Run features: selected runs (runs.py) -> component NPZs -> fixed, named columns.

A video without a selected run keeps its row with NaN features, `<component>__present = False`
and `run__missing_reason`.

Aggregation of one NPZ (arrays `x` with boolean masks `x__mask`, MASK_SUFFIX):
- 0-d numeric           -> `<component>__<array>`
- 0-d string            -> `<component>__<array>` (categorical)
- 1-D series (N,)       -> `<component>__<array>__{mean,std,min,max,p50}` over valid units
                           (mask True and finite), NaN when no unit is valid
- 2-D vectors (N, D)    -> D <= max_pooled_dims: `<component>__<array>__mean_<d>`;
                           larger D: `<component>__<array>__pca_<i>`, i < pca_components, from a
                           PCA fit on training rows only (see `apply_pca`)
- positions (`timestamps_sec`, `frame_indices`, `*_times_sec`) are not features.
Per component: `<component>__present` (NPZ read and status ok) and `<component>__empty_reason`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from trendflow.contracts.npz_meta import MASK_SUFFIX
from trendflow.dataset.components import ArraySpec, known_components
from trendflow.dataset.npz_fast import fast_decode_npz
from trendflow.dataset.pca import apply_pca
from trendflow.dataset.run_chunks import ABSENT, RunChunk, fill, merge_specs
from trendflow.dataset.runs import (
    RunRecord,
    _chunks,
    _parallel_map,
    _read,
    _resolve_jobs,
    _store,
    _worker_store_args,
    read_run_records,
    select_runs,
)
from trendflow.storage.layout import METADATA
from trendflow.storage.store import ResultStore

log = logging.getLogger(__name__)

STATS = ("mean", "std", "min", "max", "p50")
POSITION_ARRAYS = frozenset({"timestamps_sec", "frame_indices"})
__all__ = ["RunFeatures", "RunRecord", "apply_pca", "build_run_features", "known_components", "select_runs"]


def is_position(name: str) -> bool:
    return name in POSITION_ARRAYS or name.endswith("_times_sec")


def _is_position_entry(name: str) -> bool:
    base = name[: -len(MASK_SUFFIX)] if name.endswith(MASK_SUFFIX) else name
    return is_position(base)


def classify(arr: np.ndarray) -> ArraySpec | None:
    if arr.ndim == 0:
        if arr.dtype.kind in "US":
            return ArraySpec("category")
        if arr.dtype.kind in "biuf":
            return ArraySpec("scalar")
        return None
    if arr.dtype.kind not in "biuf":
        return None
    if arr.ndim == 1:
        return ArraySpec("series")
    if arr.ndim == 2:
        return ArraySpec("vector", int(arr.shape[1]))
    return None


def array_columns(component: str, array: str, spec: ArraySpec, max_pooled_dims: int, pca_k: int) -> list[str]:
    base = f"{component}__{array}"
    if spec.kind in ("scalar", "category"):
        return [base]
    if spec.kind == "series":
        return [f"{base}__{s}" for s in STATS]
    if spec.kind == "vector":
        if spec.dim is not None and spec.dim <= max_pooled_dims:
            return [f"{base}__mean_{d}" for d in range(spec.dim)]
        return [f"{base}__pca_{i}" for i in range(pca_k)]
    raise ValueError(spec.kind)


def component_columns(component: str) -> list[str]:
    return [f"{component}__present", f"{component}__empty_reason"]


# -- per-array aggregation ---------------------------------------------------------------------
def _valid(arr: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(arr, dtype=np.float64)
    valid = np.isfinite(x)
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.ndim < x.ndim:
            m = m.reshape(m.shape + (1,) * (x.ndim - m.ndim))
        valid &= m
    return x, valid


def series_stats(arr: np.ndarray, mask: np.ndarray | None) -> list[float]:
    """mean, std (population), min, max, median of the valid units (NaN when none)."""
    x, valid = _valid(arr, mask)
    v = np.sort(x[valid].ravel())
    n = v.size
    if n == 0:
        return [math.nan] * len(STATS)
    mean = float(v.sum()) / n
    std = math.sqrt(max(float(np.dot(v - mean, v - mean)) / n, 0.0))
    mid = n // 2
    median = float(v[mid]) if n % 2 else (float(v[mid - 1]) + float(v[mid])) / 2.0
    return [mean, std, float(v[0]), float(v[-1]), median]


def vector_mean(arr: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    x, valid = _valid(arr, mask)
    counts = valid.sum(axis=0)
    sums = np.where(valid, x, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def scalar_value(arr: np.ndarray, mask: np.ndarray | None, spec: ArraySpec) -> Any:
    ok = True if mask is None else bool(np.asarray(mask).reshape(-1)[0]) if np.asarray(mask).size else False
    if spec.kind == "category":
        text = str(arr[()]) if ok else ""
        return text or None
    value = float(arr[()]) if ok else math.nan
    return value if math.isfinite(value) else math.nan


# -- one run -> one row ------------------------------------------------------------------------
def aggregate_run(
    store: ResultStore, rec: RunRecord, max_pooled_dims: int
) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[tuple[str, str], ArraySpec]]:
    row: dict[str, Any] = {}
    vectors: dict[str, np.ndarray] = {}
    specs: dict[tuple[str, str], ArraySpec] = {}
    if rec.has_metadata:
        try:
            meta = json.loads(_read(store, f"{rec.run_dir}/{METADATA}"))
            row["_analysis_fps"] = float(meta.get("analysis_fps", math.nan))
            row["_source_duration_sec"] = float((meta.get("source") or {}).get("duration_sec", math.nan))
        except Exception as exc:
            log.warning("run %s: unreadable frames metadata (%s)", rec.run_dir, type(exc).__name__)
    for name, _processor, status, empty_reason, npz in rec.components:
        if status not in ("ok", "empty") or npz is None:
            row[f"{name}__present"] = False
            row[f"{name}__empty_reason"] = (
                f"component_{status}" if status not in ("ok", "empty") else "no_artifact"
            )
            continue
        try:
            arrays, meta = fast_decode_npz(_read(store, f"{rec.run_dir}/{npz}"), skip=_is_position_entry)
        except Exception as exc:
            log.warning("run %s: cannot read %s (%s: %s)", rec.run_dir, npz, type(exc).__name__, exc)
            row[f"{name}__present"] = False
            row[f"{name}__empty_reason"] = "artifact_unreadable"
            continue
        present = meta.status == "ok"
        row[f"{name}__present"] = present
        row[f"{name}__empty_reason"] = None if present else (meta.empty_reason or empty_reason or "empty")
        for array_name, arr in arrays.items():
            if array_name.endswith(MASK_SUFFIX) or is_position(array_name):
                continue
            spec = classify(arr)
            if spec is None:
                continue
            known = known_components().get(name, ("", {}))[1].get(array_name)
            if (
                known is not None
                and known.kind == spec.kind
                and (spec.kind != "vector" or known.dim == spec.dim)
            ):
                spec = known
            specs[(name, array_name)] = spec
            mask = arrays.get(array_name + MASK_SUFFIX)
            base = f"{name}__{array_name}"
            if spec.kind in ("scalar", "category"):
                row[base] = scalar_value(arr, mask, spec)
            elif spec.kind == "series":
                for stat, value in zip(STATS, series_stats(arr, mask), strict=True):
                    row[f"{base}__{stat}"] = value
            else:
                pooled = vector_mean(arr, mask)
                if spec.dim <= max_pooled_dims:
                    for d, value in enumerate(pooled):
                        row[f"{base}__mean_{d}"] = float(value)
                else:
                    vectors[base] = pooled.astype(np.float64)
    return row, vectors, specs


def _worker_aggregate(args: tuple[str | ResultStore, dict | None, list[RunRecord], int]) -> RunChunk:
    """One bounded batch of runs -> one columnar chunk (the per-run dicts die here)."""
    root, options, records, max_dims = args
    store = _store(root, options)
    rows, vectors, specs = [], [], []
    for rec in records:
        row, vec, found = aggregate_run(store, rec, max_dims)
        rows.append(row)
        vectors.append(vec)
        specs.append(found)
    return RunChunk.from_rows(rows, vectors, specs)


# -- all runs -> frame -------------------------------------------------------------------------
@dataclass
class RunFeatures:
    frame: pd.DataFrame  # index aligned with the snapshot1 table
    vectors: dict[str, np.ndarray]  # D > max_pooled_dims pooled vectors, (rows, D), for PCA
    columns: list[str]  # feature columns (sorted), PCA columns included
    categorical: list[str]
    info: dict[str, Any]


def build_run_features(
    keys: pd.DataFrame,
    store: ResultStore,
    storage_options: dict | None = None,
    config_hash: str | None = "auto",
    n_jobs: int | str | None = "auto",
    max_pooled_dims: int = 64,
    pca_components: int = 8,
) -> RunFeatures:
    """Feature columns for each (platform_id, video_id) row of `keys`, in the same order."""
    video_keys = list(zip(keys["platform_id"].astype(str), keys["video_id"].astype(str), strict=True))
    platforms = sorted({p for p, _ in video_keys})
    records = read_run_records(store, platforms, storage_options, n_jobs)
    sel = select_runs(records, video_keys, config_hash)

    chosen = [sel.selected[k] for k in sorted(sel.selected)]
    jobs = _resolve_jobs(n_jobs, len(chosen))
    root, options = _worker_store_args(store, storage_options, jobs)
    batches = _chunks(chosen, jobs)
    chunks: list[RunChunk] = _parallel_map(
        _worker_aggregate, [(root, options, b, max_pooled_dims) for b in batches], jobs
    )

    specs: dict[tuple[str, str], ArraySpec] = {}
    for comp, (_proc, arrays) in known_components().items():
        for array, spec in arrays.items():
            specs[(comp, array)] = spec
    components = set(known_components())
    for batch, chunk in zip(batches, chunks, strict=True):
        components.update(comp for comp, _array in chunk.specs)
        merge_specs(specs, chunk.specs)
        for rec in batch:
            components.update(comp_name for comp_name, *_ in rec.components)

    columns: list[str] = []
    categorical: list[str] = []
    vector_bases: list[tuple[str, int]] = []
    for comp in sorted(components):
        columns.extend(component_columns(comp))
        categorical.append(f"{comp}__empty_reason")
    for (comp, array), spec in sorted(specs.items()):
        cols = array_columns(comp, array, spec, max_pooled_dims, pca_components)
        columns.extend(cols)
        if spec.kind == "category":
            categorical.extend(cols)
        if spec.kind == "vector" and (spec.dim or 0) > max_pooled_dims:
            vector_bases.append((f"{comp}__{array}", int(spec.dim or 0)))

    n = len(video_keys)
    data: dict[str, Any] = {}
    for col in columns:
        if col.endswith("__present"):
            data[col] = np.zeros(n, dtype=bool)
        elif col in categorical:
            data[col] = np.full(n, None, dtype=object)
        elif "__pca_" in col:
            continue
        else:
            data[col] = np.full(n, np.nan)
    data["_analysis_fps"] = np.full(n, np.nan)
    data["_source_duration_sec"] = np.full(n, np.nan)
    vectors = {base: np.full((n, dim), np.nan) for base, dim in vector_bases}

    # rows of the table of each selected run (a key listed twice fills both rows)
    positions: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, key in enumerate(video_keys):
        positions[key].append(i)
    present = np.zeros(n, dtype=bool)
    reasons = data  # <component>__empty_reason columns
    for batch, chunk in zip(batches, chunks, strict=True):
        pairs = [(p, j) for j, rec in enumerate(batch) for p in positions[(rec.platform_id, rec.video_id)]]
        rows = np.asarray([p for p, _ in pairs], dtype=np.int64)
        src = np.asarray([j for _, j in pairs], dtype=np.int64)
        present[rows] = True
        for col, values in chunk.columns.items():
            if col in data:
                fill(data[col], rows, values, src)
        for comp in components:
            flags = chunk.columns.get(f"{comp}__present")
            absent = rows if flags is None else rows[flags[src] == ABSENT]
            reasons[f"{comp}__empty_reason"][absent] = "component_not_in_run"
        for base, (where, vecs) in chunk.vectors.items():
            if base not in vectors:
                continue
            src_pos = {j: k for k, j in enumerate(where.tolist())}
            for p, j in pairs:
                k = src_pos.get(j)
                if k is not None:
                    vectors[base][p, : len(vecs[k])] = vecs[k]
    for i, key in enumerate(video_keys):
        if not present[i]:
            reason = sel.missing_reason.get(key, "no_run")
            for comp in components:
                data[f"{comp}__empty_reason"][i] = reason
    extra = {name: data.pop(name) for name in ("_analysis_fps", "_source_duration_sec")}

    frame = pd.DataFrame(data, index=keys.index)
    for col in categorical:
        frame[col] = frame[col].astype("string")
    frame["run_id"] = pd.array(
        [sel.selected[k].run_id if k in sel.selected else None for k in video_keys], dtype="string"
    )
    frame["run_config_hash"] = pd.array(
        [sel.selected[k].config_hash if k in sel.selected else None for k in video_keys], dtype="string"
    )
    frame["run__present"] = present
    frame["run__missing_reason"] = pd.array(
        [None if k in sel.selected else sel.missing_reason.get(k, "no_run") for k in video_keys],
        dtype="string",
    )
    frame["run__channel_id"] = pd.array(
        [sel.selected[k].channel_id if k in sel.selected else None for k in video_keys], dtype="string"
    )
    frame["_analysis_fps"] = extra["_analysis_fps"]
    frame["_source_duration_sec"] = extra["_source_duration_sec"]

    fingerprint = hashlib.sha256()
    for key in sorted(sel.selected):
        rec = sel.selected[key]
        fingerprint.update(f"{rec.run_dir}:{rec.manifest_sha256}\n".encode())
    info = {
        "result_store": store.root_uri,
        "config_hash": sel.config_hash,
        "counts": sel.counts,
        "missing_reasons": dict(
            sorted(pd.Series(list(sel.missing_reason.values()), dtype=object).value_counts().items())
        )
        if sel.missing_reason
        else {},
        "components": sorted(components),
        "runs_fingerprint": fingerprint.hexdigest(),
    }
    log.info(
        "run features: %d of %d videos have a run (config_hash %s); %s",
        len(sel.selected),
        n,
        (sel.config_hash or "-")[:12],
        sel.counts,
    )
    return RunFeatures(frame, vectors, columns, sorted(categorical), info)
