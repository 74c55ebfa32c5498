"""PCA of wide pooled vectors (e.g. embeddings), fit on training rows only, kept as an artifact.

`fit_pca_model` fits on the rows passed as `fit_rows` only (the build passes rows that are
`train` in both split columns), so no validation/test row shapes the projection. The fitted
`PcaModel` (mean and loadings per vector) is a JSON artifact: the dataset pipeline writes it
(`feature_transforms`), the model bundle and the MLflow models carry it, and inference projects
a single video with it unchanged (`transform_pca`) - a one-row build cannot fit a PCA.
Components are sign-fixed (largest loading positive) so the output is deterministic.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

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


class PcaArray(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fit_rows: int
    dim: int
    components: int = Field(description="0: too few training rows, the columns stay NaN")
    explained_variance_ratio: list[float] = Field(default_factory=list)
    mean: list[float] = Field(default_factory=list)
    loadings: list[list[float]] = Field(default_factory=list, description="(components, dim)")


class PcaModel(BaseModel):
    """The fitted projections of every wide vector (`<component>__<array>`)."""

    model_config = ConfigDict(extra="forbid")

    k: int
    arrays: dict[str, PcaArray] = Field(default_factory=dict)

    def info(self) -> dict[str, Any]:
        """The summary recorded in dataset_metadata.json (no weights)."""
        return {
            base: a.model_dump(include={"fit_rows", "dim", "components", "explained_variance_ratio"})
            if a.components
            else {"fit_rows": a.fit_rows, "dim": a.dim, "components": 0}
            for base, a in self.arrays.items()
        }


def fit_pca_model(vectors: dict[str, np.ndarray], fit_rows: np.ndarray, k: int) -> PcaModel:
    arrays: dict[str, PcaArray] = {}
    for base, mat in sorted(vectors.items()):
        finite = np.isfinite(mat).all(axis=1)
        train = mat[fit_rows & finite]
        if len(train) >= 2:
            mean, comps, ratio = fit_pca(train, min(k, mat.shape[1]))
            arrays[base] = PcaArray(
                fit_rows=len(train),
                dim=int(mat.shape[1]),
                components=int(comps.shape[0]),
                explained_variance_ratio=[round(float(r), 6) for r in ratio],
                mean=[float(v) for v in mean],
                loadings=[[float(v) for v in row] for row in comps],
            )
        else:
            log.warning("PCA of %s: %d training rows with a vector; columns left NaN", base, len(train))
            arrays[base] = PcaArray(fit_rows=len(train), dim=int(mat.shape[1]), components=0)
    return PcaModel(k=k, arrays=arrays)


def transform_pca(frame: pd.DataFrame, vectors: dict[str, np.ndarray], model: PcaModel) -> list[str]:
    """Fill the `<base>__pca_<i>` columns of `frame` with `model`; returns warnings (a vector the
    model does not know, or of another width, leaves its columns NaN)."""
    warnings: list[str] = []
    for base, mat in sorted(vectors.items()):
        out = np.full((len(mat), model.k), np.nan)
        fitted = model.arrays.get(base)
        if fitted is None or fitted.components == 0:
            if fitted is None:
                warnings.append(f"no fitted PCA for {base}: its PCA columns are missing")
        elif mat.shape[1] != fitted.dim:
            warnings.append(f"{base} has {mat.shape[1]} dims, the fitted PCA {fitted.dim}: columns missing")
        else:
            finite = np.isfinite(mat).all(axis=1)
            proj = (mat[finite] - np.asarray(fitted.mean)) @ np.asarray(fitted.loadings).T
            out[finite, : proj.shape[1]] = proj
        for i in range(model.k):
            frame[f"{base}__pca_{i}"] = out[:, i]
    return warnings


def apply_pca(
    frame: pd.DataFrame, vectors: dict[str, np.ndarray], fit_rows: np.ndarray, k: int
) -> dict[str, Any]:
    """Fit on `fit_rows` (training) only, then fill `<base>__pca_<i>` columns of `frame`."""
    model = fit_pca_model(vectors, fit_rows, k)
    transform_pca(frame, vectors, model)
    return model.info()
