"""Component NPZ files: arrays + a JSON `meta` string, loadable with allow_pickle=False."""

from __future__ import annotations

import io
import json

import numpy as np

from trendflow.contracts.manifest import ArtifactRef
from trendflow.contracts.npz_meta import MASK_SUFFIX, NpzMeta
from trendflow.storage.store import ResultStore


def describe_arrays(arrays: dict[str, np.ndarray]) -> dict[str, str]:
    return {name: f"{arr.dtype.str} {tuple(arr.shape)}" for name, arr in sorted(arrays.items())}


def check_masks(arrays: dict[str, np.ndarray]) -> None:
    """Every feature array `x` needs a boolean `x__mask` of the same leading shape."""
    for name, arr in arrays.items():
        if name.endswith(MASK_SUFFIX):
            if arr.dtype != np.bool_:
                raise ValueError(f"mask {name} must be boolean, got {arr.dtype}")
            continue
        mask = arrays.get(name + MASK_SUFFIX)
        if mask is None:
            raise ValueError(f"array {name} has no mask {name}{MASK_SUFFIX}")
        if mask.shape != arr.shape[: mask.ndim]:
            raise ValueError(f"mask of {name} has shape {mask.shape}, array has {arr.shape}")
        if arr.dtype == object:
            raise ValueError(f"array {name} is an object array; NPZ must load without pickle")


def encode_npz(arrays: dict[str, np.ndarray], meta: NpzMeta) -> bytes:
    check_masks(arrays)
    if "meta" in arrays:
        raise ValueError("'meta' is reserved for the NPZ meta entry")
    buffer = io.BytesIO()
    meta_json = meta.model_copy(update={"arrays": describe_arrays(arrays)}).model_dump_json()
    # Deterministic content: same arrays + meta give the same bytes.
    np.savez_compressed(buffer, meta=np.array(meta_json), **dict(sorted(arrays.items())))
    return buffer.getvalue()


def write_npz(
    store: ResultStore, rel_path: str, run_dir: str, arrays: dict[str, np.ndarray], meta: NpzMeta
) -> ArtifactRef:
    data = encode_npz(arrays, meta)
    digest = store.write_bytes(rel_path, data)
    relative = rel_path[len(run_dir) :].lstrip("/") if rel_path.startswith(run_dir) else rel_path
    return ArtifactRef(path=relative, sha256=digest, bytes=len(data))


def decode_npz(data: bytes) -> tuple[dict[str, np.ndarray], NpzMeta]:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files if k != "meta"}
        meta = NpzMeta.model_validate(json.loads(str(npz["meta"][()])))
    return arrays, meta


def read_npz(store: ResultStore, rel_path: str) -> tuple[dict[str, np.ndarray], NpzMeta]:
    return decode_npz(store.read_bytes(rel_path))
