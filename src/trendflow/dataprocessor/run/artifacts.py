"""What a step leaves in the result store: metadata.json for the segmenter, one NPZ per component."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.identity import RunIdentity
from trendflow.contracts.manifest import ArtifactRef
from trendflow.contracts.metadata import FramesMetadata
from trendflow.contracts.npz_meta import NpzMeta, model_signature
from trendflow.dataprocessor.component import Component, ComponentOutput, PrivacyPolicy
from trendflow.dataprocessor.run.step import StepSpec
from trendflow.dataprocessor.state import faults
from trendflow.storage.layout import RunLayout
from trendflow.storage.npz_io import encode_npz, write_npz
from trendflow.storage.store import ResultStore


def store_metadata(
    store: ResultStore, layout: RunLayout, metadata: FramesMetadata, warnings: list[str]
) -> dict[str, Any]:
    """metadata.json -> the segmenter's success fields."""
    data = metadata.model_dump_json(indent=2).encode()
    digest = store.write_bytes(layout.metadata, data)
    return {
        "status": "ok",
        "warnings": warnings,
        "artifacts": [ArtifactRef(path="frames_dir/metadata.json", sha256=digest, bytes=len(data))],
        "units_processed": len(metadata.union_timestamps_sec),
    }


def store_output(
    store: ResultStore,
    identity: RunIdentity,
    policy: PrivacyPolicy,
    step: StepSpec,
    component: type[Component],
    output: ComponentOutput,
) -> dict[str, Any]:
    """A component's output, checked against its declared outputs -> its NPZ (with NpzMeta) ->
    the component's success fields."""
    spec = step.spec
    component.check_output(output.arrays)
    if output.raw_text_kept and not policy.keep_raw_text:
        raise TrendFlowError(ErrorCode.INTERNAL, f"{spec.name} kept raw text against the privacy policy")
    status = "empty" if output.empty_reason else "ok"
    meta = NpzMeta(
        run=identity,
        component=spec.name,
        processor=spec.processor,
        producer=step.producer,
        component_schema_version=step.schema_version,
        status=status,
        empty_reason=output.empty_reason,
        models_used=output.models_used,
        model_signature=model_signature(output.models_used),
        raw_text_retention_days=policy.raw_text_retention_days if output.raw_text_kept else None,
    )
    layout = RunLayout.of(identity)
    rel = layout.npz(spec.processor, spec.name)
    if faults.armed("mid_npz_write", spec.name):
        faults.torn_write(store, rel, encode_npz(output.arrays, meta))
    artifact = write_npz(store, rel, layout.run_dir, output.arrays, meta)
    return {
        "status": status,
        "empty_reason": output.empty_reason,
        "warnings": output.warnings,
        "artifacts": [artifact],
        "units_processed": output.units_processed,
        "batch_sizes": list(output.batch_sizes),
        "device_used": output.device_used,
        "models_used": output.models_used,
        "model_signature": meta.model_signature,
    }


def load_audio(frames_dir: Path, metadata: FramesMetadata) -> np.ndarray | None:
    if metadata.audio is None:
        return None
    return np.load(frames_dir / metadata.audio.path, mmap_mode="r")
