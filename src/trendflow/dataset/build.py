"""The training-table build, as plain functions (the Kedro nodes and the benchmark call these).

snapshots -> snapshot1 rows + snapshot1 features + targets (-> optional drop of rows that
miss a required horizon) -> run features -> channel enrichment -> splits -> PCA fit on
training rows -> assembled table (stable column order) + metadata (fingerprint = sha256 of
the parquet bytes).
"""

from __future__ import annotations

import hashlib
import logging
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
import pandas as pd

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.versions import dataprocessor_version
from trendflow.dataset.components import resolve_config_hash
from trendflow.dataset.enrichment import enrich_channels
from trendflow.dataset.kedro_datasets import table_to_parquet_bytes
from trendflow.dataset.pca import PcaModel, fit_pca_model, transform_pca
from trendflow.dataset.run_features import RunFeatures, build_run_features
from trendflow.dataset.schema import (
    ID_COLUMNS,
    KEY,
    SNAPSHOT1_CATEGORICAL_FEATURES,
    SNAPSHOT1_NUMERIC_FEATURES,
    SNAPSHOT1_TEXT_PREFIX,
    SPLIT_COLUMNS,
    horizon_columns,
    parse_horizons,
    target_columns,
)
from trendflow.dataset.splits import channel_split, split_counts, time_split
from trendflow.dataset.targets import compute_targets, missing_required, snapshot1_features, snapshot1_table
from trendflow.dataset.text_features import TEXT_STAT_NAMES
from trendflow.storage.store import ResultStore

log = logging.getLogger(__name__)

TABLE_SCHEMA_VERSION = "1.0.0"
DEFAULT_TARGETS = ["views", "likes"]
DEFAULT_HORIZONS = [
    {"name": "7d", "tolerance": "1d", "required": False},
    {"name": "14d", "tolerance": "1d", "required": True},
    {"name": "21d", "tolerance": "1d", "required": True},
]


def snapshots_fingerprint(snapshots: pd.DataFrame) -> str:
    hashed = pd.util.hash_pandas_object(snapshots.reset_index(drop=True), index=False)
    digest = hashlib.sha256(hashed.to_numpy().tobytes())
    digest.update(",".join(snapshots.columns).encode())
    return digest.hexdigest()


# -- step 1: snapshot1 rows, features, targets -------------------------------------------------
def build_snapshot1(snapshots: pd.DataFrame, params: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    targets = list(params.get("targets", DEFAULT_TARGETS))
    horizons = parse_horizons(params.get("horizons", DEFAULT_HORIZONS), params.get("default_tolerance", "1d"))
    for t in targets:
        if t not in snapshots.columns:
            raise TrendFlowError(ErrorCode.CONFIG_ERROR, f"target {t!r} is not a snapshot counter column")
    s1 = snapshot1_table(snapshots)
    feats = snapshot1_features(s1)
    tgt, coverage = compute_targets(snapshots, s1, targets, horizons)
    frame = pd.concat([s1.drop(columns=[c for c in feats.columns if c in s1.columns]), feats, tgt], axis=1)
    missing = missing_required(tgt, targets, horizons)
    policy = params.get("missing_required_horizon", "keep")
    if policy not in ("keep", "drop"):
        raise TrendFlowError(
            ErrorCode.CONFIG_ERROR, f"missing_required_horizon must be keep|drop, got {policy!r}"
        )
    per_horizon = {
        h.name: int((~tgt[[target_columns(t, h.name)["mask"] for t in targets]].all(axis=1)).sum())
        for h in horizons
    }
    info = {
        "targets": targets,
        "horizons": [
            {
                "name": h.name,
                "hours": h.hours,
                "tolerance_hours": h.tolerance / pd.Timedelta(hours=1),
                "required": h.required,
            }
            for h in horizons
        ],
        "videos": len(s1),
        "rows_missing_a_required_horizon": int(missing.sum()),
        "rows_missing_per_horizon": per_horizon,
        "missing_required_horizon": policy,
        "rows_dropped_missing_required": int(missing.sum()) if policy == "drop" else 0,
        "target_coverage_before_drop": coverage,
    }
    log.info(
        "targets: %d videos, %d miss a required horizon (%s: %s); missing per horizon %s",
        len(s1),
        int(missing.sum()),
        policy,
        "dropped" if policy == "drop" else "kept with masks",
        per_horizon,
    )
    if policy == "drop":
        frame = frame[~missing.to_numpy()].reset_index(drop=True)
    return frame, info


# -- step 2: run features ----------------------------------------------------------------------
def run_features_for(
    snapshot1: pd.DataFrame, store: ResultStore, params: dict[str, Any], storage_options: dict | None = None
) -> RunFeatures:
    p = params.get("run_features", {}) or {}
    rf = build_run_features(
        snapshot1[KEY],
        store,
        storage_options=storage_options,
        config_hash=resolve_config_hash(p.get("config_hash", "auto"), params.get("profile")),
        n_jobs=p.get("n_jobs", "auto"),
        max_pooled_dims=int(p.get("max_pooled_dims", 64)),
        pca_components=int(p.get("pca_components", 8)),
    )
    if p.get("drop_rows_without_run", False):
        keep = rf.frame["run__present"].to_numpy()
        rf.info["rows_dropped_without_run"] = int((~keep).sum())
        rf.frame = rf.frame[keep]
        rf.vectors = {k: v[keep] for k, v in rf.vectors.items()}
    return rf


# -- step 3+4: enrichment and splits -----------------------------------------------------------
def enrich_and_split(
    snapshot1: pd.DataFrame,
    run_features: RunFeatures,
    params: dict[str, Any],
    credentials: dict[str, Any] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    s1 = snapshot1.loc[run_features.frame.index]
    enriched, enrich_info = enrich_channels(
        s1, run_features.frame["run__channel_id"], params.get("enrichment", {}), credentials
    )
    sp = params.get("splits", {}) or {}
    st, time_info = time_split(enriched["snapshot1_at"], sp.get("time", {}))
    sc, chan_info = channel_split(enriched["platform_id"], enriched["channel_id"], sp.get("channel", {}))
    enriched["split_time"] = st
    enriched["split_channel"] = sc
    info = {
        "enrichment": enrich_info,
        "splits": {
            "split_time": {"counts": split_counts(st), **time_info, **_fractions_info(sp.get("time", {}))},
            "split_channel": {
                "counts": split_counts(sc),
                **chan_info,
                **_fractions_info(sp.get("channel", {})),
            },
        },
    }
    log.info(
        "splits: time %s, channel %s",
        info["splits"]["split_time"]["counts"],
        info["splits"]["split_channel"]["counts"],
    )
    return enriched, info


def _fractions_info(p: dict[str, Any]) -> dict[str, float]:
    train = float(p.get("train_fraction", 0.7))
    valid = float(p.get("valid_fraction", 0.15))
    return {"train_fraction": train, "valid_fraction": valid, "test_fraction": round(1 - train - valid, 10)}


# -- step 5: assemble --------------------------------------------------------------------------
def _vectors(enriched: pd.DataFrame, run_features: RunFeatures) -> dict[str, np.ndarray]:
    return {
        name: mat[[run_features.frame.index.get_loc(i) for i in enriched.index]]
        for name, mat in run_features.vectors.items()
    }


def fit_feature_transforms(
    enriched: pd.DataFrame, run_features: RunFeatures, params: dict[str, Any]
) -> dict[str, Any]:
    """The fitted PCA of every wide vector (training rows: `train` in both split columns) as a
    JSON-able artifact, applied unchanged by `assemble` and at inference."""
    p = params.get("run_features", {}) or {}
    fit_rows = ((enriched["split_time"] == "train") & (enriched["split_channel"] == "train")).to_numpy(
        dtype=bool
    )
    model = fit_pca_model(_vectors(enriched, run_features), fit_rows, int(p.get("pca_components", 8)))
    return {"pca": model.model_dump(mode="json")}


def assemble(
    enriched: pd.DataFrame,
    run_features: RunFeatures,
    params: dict[str, Any],
    build_info: dict[str, Any],
    feature_transforms: dict[str, Any] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The table. `feature_transforms` (from `fit_feature_transforms`, or a model bundle's at
    inference) projects the wide vectors; None fits them here on this table's training rows."""
    rf = run_features.frame.loc[enriched.index].copy()
    given = feature_transforms is not None
    transforms = feature_transforms if given else fit_feature_transforms(enriched, run_features, params)
    pca_model = PcaModel.model_validate(transforms["pca"])
    vectors = _vectors(enriched, run_features)
    pca_warnings = transform_pca(rf, vectors, pca_model) if vectors else []
    pca_info = pca_model.info() if vectors else {}

    t: dict[str, Any] = {}
    for col in ID_COLUMNS:
        if col == "synthetic":
            t[col] = pd.Series(
                (enriched["platform_id"] == "synthetic").to_numpy(dtype=bool), index=enriched.index
            )
        elif col == "left_censored":  # only the trending importer can tell; False elsewhere
            flag = enriched[col] if col in enriched.columns else pd.Series(False, index=enriched.index)
            t[col] = flag.astype("boolean").fillna(False).astype(bool)
        elif col in enriched.columns:
            t[col] = enriched[col]
        elif col in rf.columns:
            t[col] = rf[col]
    # combined snapshot1 facts: the run first (it measured the file), then the snapshot source
    duration = rf["_source_duration_sec"].copy()
    if "temporal__duration_sec" in rf:
        duration = duration.fillna(rf["temporal__duration_sec"])
    duration = duration.fillna(enriched["snapshot1__duration_sec"])
    language = (
        rf["text_stats__language"] if "text_stats__language" in rf else pd.Series(pd.NA, index=rf.index)
    )
    language = language.astype("string").fillna(enriched["snapshot1__language"].astype("string"))
    hour = enriched["publish_hour_utc"]
    weekday = enriched["publish_weekday"]
    if "temporal__publish_hour_utc" in rf:
        hour = hour.fillna(rf["temporal__publish_hour_utc"])
        weekday = weekday.fillna(rf["temporal__publish_weekday"])
    derived = {
        "duration_sec": duration.astype("float64"),
        "analysis_fps": rf["_analysis_fps"].astype("float64"),
        "language": language,
        "publish_hour_utc": hour.astype("float64"),
        "publish_weekday": weekday.astype("float64"),
    }
    features: dict[str, pd.Series] = {}
    for col in SNAPSHOT1_NUMERIC_FEATURES + SNAPSHOT1_CATEGORICAL_FEATURES:
        features[col] = derived[col] if col in derived else enriched[col]
    for name in TEXT_STAT_NAMES:
        features[f"{SNAPSHOT1_TEXT_PREFIX}{name}"] = enriched[f"{SNAPSHOT1_TEXT_PREFIX}{name}"]
    feature_cols = list(run_features.columns)
    for col in feature_cols:
        features[col] = rf[col]
    categorical = sorted(set(SNAPSHOT1_CATEGORICAL_FEATURES) | set(run_features.categorical))
    for name in sorted(features):
        series = features[name]
        if name in categorical:
            series = series.astype("string")
        elif series.dtype == bool or name.endswith("__present"):
            series = series.astype(bool)
        else:
            series = pd.to_numeric(series, errors="coerce").astype("float64")
        t[name] = series
    target_cols: list[str] = []
    targets = build_info["snapshot1"]["targets"]
    for h in build_info["snapshot1"]["horizons"]:
        for col in horizon_columns(h["name"]).values():
            target_cols.append(col)
        for tg in targets:
            target_cols.extend(target_columns(tg, h["name"]).values())
    for col in sorted(target_cols):
        t[col] = enriched[col]
    for col in SPLIT_COLUMNS:
        t[col] = enriched[col].astype("string")

    t = pd.DataFrame(t, index=enriched.index)
    t = t.sort_values(KEY, kind="mergesort").reset_index(drop=True)
    for col in (
        "platform_id",
        "video_id",
        "channel_id",
        "channel_id__source",
        "channel_id__missing_reason",
        "run_id",
        "run_config_hash",
        "run__missing_reason",
    ):
        t[col] = t[col].astype("string")
    payload = table_to_parquet_bytes(t)
    fingerprint = hashlib.sha256(payload).hexdigest()

    numeric = [c for c in sorted(features) if c not in categorical]
    coverage = {}
    for h in build_info["snapshot1"]["horizons"]:
        coverage[h["name"]] = {}
        for tg in targets:
            mask = t[target_columns(tg, h["name"])["mask"]]
            coverage[h["name"]][tg] = {
                "rows_with_target": int(mask.sum()),
                "coverage": round(float(mask.mean()), 6) if len(t) else 0.0,
                "required": h["required"],
            }
    synthetic = bool(t["synthetic"].all()) if len(t) else False
    metadata = {
        "dataset_fingerprint": fingerprint,
        "fingerprint_algorithm": "sha256 of training_table.parquet bytes",
        "table_schema_version": TABLE_SCHEMA_VERSION,
        "synthetic": synthetic,
        "synthetic_rows": int(t["synthetic"].sum()),
        "rows": len(t),
        "columns": t.shape[1],
        "column_groups": {
            "id": [c for c in ID_COLUMNS if c in t.columns],
            "features_numeric": [c for c in numeric if c in t.columns],
            "features_categorical": [c for c in categorical if c in t.columns],
            "targets": [
                target_columns(tg, h["name"])["target"]
                for h in build_info["snapshot1"]["horizons"]
                for tg in targets
            ],
            "target_masks": [
                target_columns(tg, h["name"])["mask"]
                for h in build_info["snapshot1"]["horizons"]
                for tg in targets
            ],
            "target_details": [
                c
                for c in sorted(target_cols)
                if not c.endswith("__mask") and not _is_target(c, targets, build_info)
            ],
            "splits": SPLIT_COLUMNS,
        },
        "targets": targets,
        "horizons": build_info["snapshot1"]["horizons"],
        "target_coverage": coverage,
        "rows_missing_a_required_horizon": build_info["snapshot1"]["rows_missing_a_required_horizon"],
        "rows_missing_per_horizon": build_info["snapshot1"]["rows_missing_per_horizon"],
        "missing_required_horizon": build_info["snapshot1"]["missing_required_horizon"],
        "rows_dropped_missing_required": build_info["snapshot1"]["rows_dropped_missing_required"],
        "splits": build_info["splits"],
        "enrichment": build_info["enrichment"],
        "runs": run_features.info,
        "pca": {
            "fit_rows": "split_time == train and split_channel == train",
            "arrays": pca_info,
            **({"fitted": "given (feature_transforms)", "warnings": pca_warnings} if given else {}),
        },
        "sources": build_info.get("sources", {}),
        "snapshots": build_info.get("snapshots", {}),
        "versions": versions(),
    }
    return t, _jsonable(metadata)


def _is_target(col: str, targets: list[str], build_info: dict[str, Any]) -> bool:
    return any(
        col == target_columns(tg, h["name"])["target"]
        for h in build_info["snapshot1"]["horizons"]
        for tg in targets
    )


def versions() -> dict[str, str]:
    out = {
        "trendflow": dataprocessor_version(),
        "table_schema": TABLE_SCHEMA_VERSION,
        "python": platform.python_version(),
        "platform": sys.platform,
    }
    for pkg in ("numpy", "pandas", "pyarrow", "kedro"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:  # pragma: no cover
            out[pkg] = "unknown"
    return out


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return None if np.isnan(obj) else float(obj)
    if isinstance(obj, float) and np.isnan(obj):
        return None
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, pd.Timestamp):
        return obj.isoformat()
    return obj


# -- everything at once (benchmark, tests) -----------------------------------------------------
def build_training_table(
    snapshots: pd.DataFrame,
    store: ResultStore,
    params: dict[str, Any],
    credentials: dict[str, Any] | None = None,
    storage_options: dict | None = None,
    sources: dict[str, Any] | None = None,
    snapshots_report: dict[str, Any] | None = None,
    feature_transforms: dict[str, Any] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    s1, s1_info = build_snapshot1(snapshots, params)
    rf = run_features_for(s1, store, params, storage_options)
    enriched, split_info = enrich_and_split(s1, rf, params, credentials)
    info = {
        "snapshot1": s1_info,
        **split_info,
        "sources": {**(sources or {}), "snapshots_fingerprint": snapshots_fingerprint(snapshots)},
        "snapshots": snapshots_report or {},
    }
    return assemble(enriched, rf, params, info, feature_transforms)
