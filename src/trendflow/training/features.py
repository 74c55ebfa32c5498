"""Which table columns are features, and how each library receives them.

A feature is every column of `training_table.parquet` except identity/bookkeeping columns
(`ID_COLUMNS`), the split columns, target/horizon columns and timestamps, minus configured
exclusions. String columns are categorical (CatBoost and LightGBM both handle them natively);
a string column with too many distinct training values is free text or an identifier and is
dropped. Columns that carry no information on the training rows (all missing or constant) are
dropped too, with the reason recorded in the spec.

The spec is computed once from the training rows of every split scheme and saved with each
model, so inference builds exactly the same matrix.
"""

from __future__ import annotations

import re
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.dataset.schema import ID_COLUMNS, SPLIT_COLUMNS, is_target_column
from trendflow.training.config import SPLIT_COLUMN, FeatureParams, TrainingParams

CATBOOST_MISSING = "__missing__"  # CatBoost categorical features cannot hold NaN
_TARGET_RE = re.compile(r"^target__(?P<target>[a-z0-9_]+?)__(?P<horizon>[0-9]+[a-z]+)$")


class FeatureSpec(BaseModel):
    """The feature list of a training run: saved with every model (bundle.json, MLflow)."""

    model_config = ConfigDict(extra="forbid")

    features: list[str] = Field(description="Model input columns, in order.")
    categorical: list[str] = Field(description="The subset of `features` that is categorical.")
    # Training categories of each categorical feature: LightGBM receives their index (its
    # native categorical split); an unseen value becomes missing.
    categories: dict[str, list[str]]
    dropped: dict[str, str] = Field(default_factory=dict, description="column -> why it is not a feature")
    fit_rows: int = 0

    @property
    def numeric(self) -> list[str]:
        cats = set(self.categorical)
        return [f for f in self.features if f not in cats]


def target_tasks(table: pd.DataFrame, params: TrainingParams) -> list[tuple[str, str]]:
    """(target, horizon) pairs with a `target__<t>__<h>` column, filtered by the parameters."""
    found: list[tuple[str, str]] = []
    for col in table.columns:
        match = _TARGET_RE.match(col)
        if match and f"{col}__mask" in table.columns:
            found.append((match["target"], match["horizon"]))
    if params.targets is not None:
        missing = [t for t in params.targets if t not in {t for t, _ in found}]
        if missing:
            raise TrendFlowError(ErrorCode.CONFIG_ERROR, f"training.targets {missing} are not in the table")
        found = [x for x in found if x[0] in params.targets]
    if params.horizons is not None:
        missing = [h for h in params.horizons if h not in {h for _, h in found}]
        if missing:
            raise TrendFlowError(ErrorCode.CONFIG_ERROR, f"training.horizons {missing} are not in the table")
        found = [x for x in found if x[1] in params.horizons]
    if not found:
        raise TrendFlowError(
            ErrorCode.INVALID_REQUEST,
            "the training table has no target__<target>__<horizon> columns: build it with "
            "`kedro run --pipelines=dataset`",
        )
    return sorted(found, key=lambda x: (x[0], _horizon_hours_key(x[1]), x[1]))


def _horizon_hours_key(label: str) -> float:
    from trendflow.dataset.schema import parse_duration

    return parse_duration(label).total_seconds()


def fit_rows(table: pd.DataFrame, params: TrainingParams) -> np.ndarray:
    """Rows used to decide the feature list: training rows of any trained split scheme
    (`walk_forward` uses the time split's training rows: the earliest, in every fold's window)."""
    rows = np.zeros(len(table), dtype=bool)
    for kind in params.splits:
        col = SPLIT_COLUMN.get(kind, SPLIT_COLUMN["time"])
        if col not in table.columns:
            raise TrendFlowError(
                ErrorCode.INVALID_REQUEST, f"the training table lacks the split column {col!r}"
            )
        rows |= (table[col] == "train").fillna(False).to_numpy(dtype=bool)
    return rows


def _is_candidate(col: str, series: pd.Series, fp: FeatureParams) -> str | None:
    """None when `col` may be a feature, else the reason it is not."""
    if col in ID_COLUMNS or col in SPLIT_COLUMNS:
        return "identity/split column"
    if is_target_column(col):
        return "target/horizon column"
    if col in fp.exclude or any(col.startswith(p) for p in fp.exclude_prefixes):
        return "excluded by parameters"
    if isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(series.dtype):
        return "timestamp"
    return None


def as_float(series: pd.Series) -> np.ndarray:
    """Numbers and booleans (numpy or nullable dtypes) -> float64 with NaN for missing."""
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def is_categorical(series: pd.Series) -> bool:
    return (
        pd.api.types.is_string_dtype(series.dtype)
        or pd.api.types.is_object_dtype(series.dtype)
        or isinstance(series.dtype, pd.CategoricalDtype)
    )


def select_features(table: pd.DataFrame, params: TrainingParams) -> FeatureSpec:
    rows = fit_rows(table, params)
    if not rows.any():
        raise TrendFlowError(
            ErrorCode.INVALID_REQUEST,
            f"no training rows in the table for splits {params.splits}: check the dataset's split fractions",
        )
    fp = params.features
    features: list[str] = []
    categorical: list[str] = []
    categories: dict[str, list[str]] = {}
    dropped: dict[str, str] = {}
    for col in table.columns:
        series = table[col]
        why = _is_candidate(col, series, fp)
        if why is not None:
            if why not in ("identity/split column", "target/horizon column"):
                dropped[col] = why
            continue
        train = series[rows]
        if is_categorical(series):
            values = train.dropna().astype(str)
            uniques = sorted(values.unique().tolist())
            if len(uniques) > fp.max_categories:
                dropped[col] = f"free text or identifier: {len(uniques)} distinct training values"
                continue
            if fp.drop_constant and (not uniques or (len(uniques) == 1 and not train.isna().any())):
                dropped[col] = "all missing on training rows" if not uniques else "constant on training rows"
                continue
            categorical.append(col)
            categories[col] = uniques
        else:
            values = pd.Series(as_float(train), index=train.index)
            if fp.drop_constant:
                if values.notna().sum() == 0:
                    dropped[col] = "all missing on training rows"
                    continue
                if values.nunique(dropna=True) <= 1 and not values.isna().any():
                    dropped[col] = "constant on training rows"
                    continue
        features.append(col)
    if not features:
        raise TrendFlowError(ErrorCode.INVALID_REQUEST, "no usable feature column in the training table")
    return FeatureSpec(
        features=features,
        categorical=categorical,
        categories=categories,
        dropped=dropped,
        fit_rows=int(rows.sum()),
    )


def check_columns(frame: pd.DataFrame, spec: FeatureSpec) -> None:
    missing = [f for f in spec.features if f not in frame.columns]
    if missing:
        raise TrendFlowError(
            ErrorCode.DEPENDENCY_MISSING,
            f"{len(missing)} model feature(s) are missing from the input: {missing[:10]}"
            + (" ..." if len(missing) > 10 else ""),
        )


def model_matrix(
    frame: pd.DataFrame, spec: FeatureSpec, algorithm: Literal["catboost", "lightgbm"]
) -> pd.DataFrame:
    """The model input of `algorithm` from table-shaped rows (same columns as the table).

    Numeric (and boolean) features -> float64 with NaN for missing. Categorical features:
    CatBoost gets strings (missing -> "__missing__"); LightGBM gets the index of the value in
    the training categories as float (missing or unseen -> NaN) and is told they are
    categorical, so both split on categories natively.
    """
    check_columns(frame, spec)
    cats = set(spec.categorical)
    numeric = [c for c in spec.features if c not in cats]
    # one conversion for the whole numeric block: per-column conversion dominates on wide tables
    block = (
        frame[numeric].to_numpy(dtype="float64", na_value=np.nan) if numeric else np.empty((len(frame), 0))
    )
    parts: dict[str, np.ndarray] = {}
    for col in spec.categorical:
        text = frame[col].astype("string")
        if algorithm == "catboost":
            parts[col] = text.fillna(CATBOOST_MISSING).astype(object).to_numpy()
        else:
            codes = pd.Categorical(text, categories=spec.categories.get(col, [])).codes.astype("float64")
            codes[codes < 0] = np.nan  # missing or unseen
            parts[col] = codes
    out = pd.concat(
        [pd.DataFrame(block, index=frame.index, columns=numeric), pd.DataFrame(parts, index=frame.index)],
        axis=1,
    )
    return out[spec.features]
