"""Declared component outputs: array names, kinds (dtype and shape) and masks, stated once.

Every array `x` of a component NPZ carries a boolean `x__mask` (MASK_SUFFIX): shape () for a
per-run value, (n,) for per-unit arrays and per-run vectors. The kinds:

| kind       | array                       | mask  | dataset column(s)                      |
|------------|-----------------------------|-------|----------------------------------------|
| scalar     | () float                    | ()    | `<c>__<x>`                             |
| category   | () str                      | ()    | `<c>__<x>` (categorical)               |
| series     | (n,) float                  | (n,)  | `<c>__<x>__{mean,std,min,max,p50}`     |
| vector     | (n, dim) float, per unit    | (n,)  | pooled means or PCA                    |
| run_vector | (1, dim) float, one per run | (1,)  | pooled means or PCA                    |
| position   | (n,) or (n, dim) float64    | (n,)  | none: where units are, not a feature   |
| text       | (n,) or () str, raw text    | same  | none: kept only under a privacy policy |

`optional` arrays (raw text) appear only when a policy asks for them; they are not part of the
valid-empty form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.npz_meta import MASK_SUFFIX

Kind = Literal["scalar", "category", "series", "vector", "run_vector", "position", "text"]
FEATURE_KINDS = frozenset({"scalar", "category", "series", "vector", "run_vector"})


@dataclass(frozen=True)
class OutputArray:
    name: str
    kind: Kind
    dim: int | None = None  # the trailing dimension of vectors (and of 2-D positions)
    optional: bool = False
    per_unit: bool = True  # text only: (n,) per unit, else one () value per run

    @property
    def ndim(self) -> int:
        if self.kind in ("scalar", "category"):
            return 0
        if self.kind == "text":
            return 1 if self.per_unit else 0
        return 2 if self.dim is not None else 1

    @property
    def dtype_kind(self) -> str:
        return "U" if self.kind in ("category", "text") else "f"

    def empty(self) -> dict[str, np.ndarray]:
        mask_shape: tuple[int, ...]
        if self.kind == "scalar":
            value, mask_shape = np.float32(np.nan), ()
        elif self.kind in ("category", "text") and self.ndim == 0:
            value, mask_shape = np.str_(""), ()
        elif self.kind == "text":
            value, mask_shape = np.zeros(0, dtype=np.str_), (0,)
        elif self.kind == "run_vector":
            value, mask_shape = np.full((1, self.dim or 0), np.nan, np.float32), (1,)
        else:
            dtype = np.float64 if self.kind == "position" else np.float32
            shape = (0,) if self.dim is None else (0, self.dim)
            value, mask_shape = np.zeros(shape, dtype), (0,)
        return {self.name: np.asarray(value), self.name + MASK_SUFFIX: np.zeros(mask_shape, bool)}


def scalar(name: str) -> OutputArray:
    return OutputArray(name, "scalar")


def category(name: str) -> OutputArray:
    return OutputArray(name, "category")


def series(*names: str) -> tuple[OutputArray, ...]:
    return tuple(OutputArray(n, "series") for n in names)


def scalars(*names: str) -> tuple[OutputArray, ...]:
    return tuple(OutputArray(n, "scalar") for n in names)


def vector(name: str, dim: int) -> OutputArray:
    return OutputArray(name, "vector", dim)


def run_vector(name: str, dim: int) -> OutputArray:
    return OutputArray(name, "run_vector", dim)


def position(name: str, dim: int | None = None) -> OutputArray:
    return OutputArray(name, "position", dim)


def raw_text(name: str, per_unit: bool = True) -> OutputArray:
    return OutputArray(name, "text", optional=True, per_unit=per_unit)


TIMESTAMPS = position("timestamps_sec")


def empty_arrays_of(outputs: tuple[OutputArray, ...]) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for out in outputs:
        if not out.optional:
            arrays.update(out.empty())
    return arrays


def check_arrays(component: str, outputs: tuple[OutputArray, ...], arrays: dict[str, np.ndarray]) -> None:
    """Every declared array (optional ones when present) with its mask, of the declared kind;
    nothing undeclared."""
    problems: list[str] = []
    declared = {o.name: o for o in outputs}
    for name in arrays:
        base = name.removesuffix(MASK_SUFFIX)
        if base not in declared:
            problems.append(f"undeclared array {name}")
    for out in outputs:
        if out.name not in arrays:
            if not out.optional:
                problems.append(f"missing {out.name}")
            continue
        arr, mask = arrays[out.name], arrays.get(out.name + MASK_SUFFIX)
        if arr.ndim != out.ndim or arr.dtype.kind not in (
            out.dtype_kind,
            "i" if out.kind == "scalar" else "",
        ):
            problems.append(f"{out.name}: {arr.dtype}{arr.shape}, declared {out.kind}")
        if out.dim is not None and arr.ndim == 2 and arr.shape[1] != out.dim:
            problems.append(f"{out.name}: {arr.shape[1]} columns, declared {out.dim}")
        if mask is None or mask.dtype != np.bool_ or mask.shape != arr.shape[:1]:
            problems.append(f"{out.name}{MASK_SUFFIX}: missing or not a bool mask of shape {arr.shape[:1]}")
    if problems:
        raise TrendFlowError(
            ErrorCode.INTERNAL, f"{component} output does not match its declaration: {'; '.join(problems)}"
        )


def feature_arrays(outputs: tuple[OutputArray, ...]) -> tuple[OutputArray, ...]:
    """The declared arrays that become dataset feature columns."""
    return tuple(o for o in outputs if o.kind in FEATURE_KINDS and not o.optional)
