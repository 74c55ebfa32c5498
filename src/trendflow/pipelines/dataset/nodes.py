"""Nodes of the `dataset` pipeline: thin wrappers over `trendflow.dataset.build`.

load_snapshots -> build_snapshot1 -> build_run_features -> enrich_and_split -> fit_feature_transforms
-> assemble_table
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.dataset import build
from trendflow.dataset.kedro_datasets import SnapshotSource
from trendflow.dataset.run_features import RunFeatures
from trendflow.dataset.snapshots import normalize_snapshots
from trendflow.dataset.synthetic import SyntheticConfig, ensure_corpus
from trendflow.storage.store import ResultStore

log = logging.getLogger(__name__)

SOURCES = ("synthetic", "canonical", "trending", "huggingface")


def dataset_profile(params: dict[str, Any], processing: dict[str, Any]) -> str:
    """The profile whose runs the table joins: `dataset.profile`, else the processing profile."""
    return str(params.get("profile") or processing.get("profile") or "signals")


def load_snapshots(
    canonical: SnapshotSource,
    trending: SnapshotSource,
    huggingface: SnapshotSource,
    sample_snapshots: SnapshotSource,
    params: dict[str, Any],
    processing: dict[str, Any],
    result_store: ResultStore,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read the snapshot source named by `dataset.snapshot_source` -> canonical snapshots.

    `synthetic` generates (once, deterministically) the SYNTHETIC corpus: its snapshots and its
    run artifacts in the result store, for the components and config_hash of `dataset_profile`.
    """
    kind = params.get("snapshot_source", "synthetic")
    if kind not in SOURCES:
        raise TrendFlowError(
            ErrorCode.CONFIG_ERROR, f"dataset.snapshot_source must be one of {SOURCES}, got {kind!r}"
        )
    if kind == "synthetic":
        profile = dataset_profile(params, processing)
        cfg = SyntheticConfig.from_params({**params.get("synthetic", {}), "profile": profile})
        raw, info = ensure_corpus(result_store, cfg, n_jobs=int(params.get("synthetic", {}).get("n_jobs", 1)))
        if params.get("synthetic", {}).get("sample_snapshots"):
            # Snapshot curves for the processed sample videos (SYNTHETIC counts, real artifacts).
            raw = pd.concat([raw, sample_snapshots.read()[0]], ignore_index=True)
        snapshots, report = normalize_snapshots(raw, "synthetic")
        source = {"kind": "synthetic", "synthetic": True, "corpus_digest": info.get("digest"), "corpus": info}
    else:
        handle = {"canonical": canonical, "trending": trending, "huggingface": huggingface}[kind]
        snapshots, report = handle.read()
        source = {"kind": kind, "path": handle.filepath, "fingerprint": handle.fingerprint()}
    log.info("snapshots from %s: %d rows, %d videos", kind, len(snapshots), report.get("videos", 0))
    return snapshots, {"source": source, "report": report}


def build_snapshot1(snapshots: pd.DataFrame, params: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    return build.build_snapshot1(snapshots, params)


def build_run_features(
    snapshot1: pd.DataFrame,
    runs_index: pd.DataFrame,
    params: dict[str, Any],
    processing: dict[str, Any],
    result_store: ResultStore,
) -> RunFeatures:
    """Run features from the result store, the runs of `dataset_profile`'s config_hash
    (`run_features.config_hash: profile`); `runs_index` (the processing pipeline's outcome) says
    why a video has no run: `processing_error:<error_code>[:<reason>]` or `processing_pending`."""
    params = {**params, "profile": dataset_profile(params, processing)}
    rf = build.run_features_for(snapshot1, result_store, params)
    return explain_missing_runs(rf, snapshot1, runs_index)


def explain_missing_runs(rf: RunFeatures, snapshot1: pd.DataFrame, runs_index: pd.DataFrame) -> RunFeatures:
    """Replace `no_run` / `no_successful_run` by what processing reported (newest runs_index row)."""
    if runs_index is None or runs_index.empty:
        rf.info["processing"] = {"runs_index_rows": 0}
        return rf
    latest = runs_index.drop_duplicates(["platform_id", "video_id"], keep="last").set_index(
        ["platform_id", "video_id"]
    )
    reasons: dict[tuple[str, str], str] = {}
    for key, row in latest.iterrows():
        if row["status"] == "error" and pd.notna(row["error_code"]):
            reason = row.get("error_reason")
            reasons[key] = f"processing_error:{row['error_code']}" + (
                f":{reason}" if pd.notna(reason) else ""
            )
        elif row["status"] == "pending":
            reasons[key] = "processing_pending"
    s1 = snapshot1.loc[rf.frame.index]
    keys = list(zip(s1["platform_id"], s1["video_id"], strict=True))
    current = rf.frame["run__missing_reason"]
    explained = [
        reasons.get(k, r) if (not present and r in ("no_run", "no_successful_run")) else r
        for k, r, present in zip(keys, current.tolist(), rf.frame["run__present"].tolist(), strict=True)
    ]
    rf.frame["run__missing_reason"] = pd.array(explained, dtype="string")
    rf.info["processing"] = {
        "runs_index_rows": len(runs_index),
        "status": {str(k): int(v) for k, v in runs_index["status"].value_counts().sort_index().items()},
        "missing_reasons": {
            str(k): int(v)
            for k, v in rf.frame["run__missing_reason"].dropna().value_counts().sort_index().items()
        },
    }
    return rf


def enrich_and_split(
    snapshot1: pd.DataFrame,
    run_features: RunFeatures,
    params: dict[str, Any],
    credentials: dict[str, Any],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    return build.enrich_and_split(snapshot1, run_features, params, credentials)


def fit_feature_transforms(
    enriched: pd.DataFrame, run_features: RunFeatures, params: dict[str, Any]
) -> dict[str, Any]:
    """PCA of the wide vectors, fit on training rows: an artifact the model bundle carries."""
    return build.fit_feature_transforms(enriched, run_features, params)


def assemble_table(
    enriched: pd.DataFrame,
    run_features: RunFeatures,
    params: dict[str, Any],
    snapshot1_info: dict[str, Any],
    split_info: dict[str, Any],
    snapshots: pd.DataFrame,
    snapshot_sources: dict[str, Any],
    feature_transforms: dict[str, Any] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    source = dict(snapshot_sources["source"])
    source["snapshots_fingerprint"] = build.snapshots_fingerprint(snapshots)
    source["result_store_runs_fingerprint"] = run_features.info.get("runs_fingerprint")
    info = {
        "snapshot1": snapshot1_info,
        **split_info,
        "sources": source,
        "snapshots": snapshot_sources["report"],
    }
    table, metadata = build.assemble(enriched, run_features, params, info, feature_transforms)
    log.info(
        "training table: %d rows x %d columns, fingerprint %s",
        metadata["rows"],
        metadata["columns"],
        metadata["dataset_fingerprint"][:16],
    )
    return table, metadata
