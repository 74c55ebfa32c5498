"""PCA of wide pooled vectors (e.g. embeddings), fit on training rows only.

The fit uses only the rows passed as `fit_rows` (the build passes rows that are `train` in both
split columns), so no validation/test row shapes the projection; every row is then projected.
Components are sign-fixed (largest loading positive) so the output is deterministic.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


def fit_pca(train: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, components (k, D), explained variance ratio) from rows of `train` (no NaN)."""
    mean = train.mean(axis=0)
    centered = train - mean
    cov = centered.T @ centered / max(len(train) - 1, 1)
    values, vecs = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1][:k]
    comps = vecs[:, order].T
    # Deterministic sign: the largest-magnitude loading of each component is positive.
    signs = np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(axis=1)])
    signs[signs == 0] = 1
    comps = comps * signs[:, None]
    total = values.clip(min=0).sum()
    ratio = values[order].clip(min=0) / total if total > 0 else np.zeros(len(order))
    return mean, comps, ratio


def apply_pca(
    frame: pd.DataFrame, vectors: dict[str, np.ndarray], fit_rows: np.ndarray, k: int
) -> dict[str, Any]:
    """Fill `<base>__pca_<i>` columns of `frame`; the PCA is fit on `fit_rows` (training) only."""
    info: dict[str, Any] = {}
    for base, mat in sorted(vectors.items()):
        finite = np.isfinite(mat).all(axis=1)
        train = mat[fit_rows & finite]
        cols = [f"{base}__pca_{i}" for i in range(k)]
        out = np.full((len(mat), k), np.nan)
        if len(train) >= 2:
            mean, comps, ratio = fit_pca(train, min(k, mat.shape[1]))
            proj = (mat[finite] - mean) @ comps.T
            out[finite, : proj.shape[1]] = proj
            info[base] = {
                "fit_rows": len(train),
                "dim": int(mat.shape[1]),
                "components": int(comps.shape[0]),
                "explained_variance_ratio": [round(float(r), 6) for r in ratio],
            }
        else:
            log.warning("PCA of %s: %d training rows with a vector; columns left NaN", base, len(train))
            info[base] = {"fit_rows": len(train), "dim": int(mat.shape[1]), "components": 0}
        for i, col in enumerate(cols):
            frame[col] = out[:, i]
    return info
