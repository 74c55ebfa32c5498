"""The baseline profile through the real orchestrator and the real Triton server: resolved models
in the manifest, models_used/model_signature in every neural NPZ, and a server that is down
turning into the run error `triton_unavailable` (transient, so the queue retries the run)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from trendflow.contracts.errors import ErrorCode, is_transient
from trendflow.contracts.manifest import Manifest
from trendflow.contracts.npz_meta import model_signature
from trendflow.dataprocessor.graph import ComponentGraph
from trendflow.dataprocessor.run import ProcessRequest, RunOutcome, Services, process_video
from trendflow.serving.client import TritonClient
from trendflow.serving.model_resolution import resolve_profile_models
from trendflow.serving.triton_server import TritonServer, free_port
from trendflow.storage.layout import RunLayout
from trendflow.storage.npz_io import read_npz
from trendflow.storage.store import ResultStore

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "01_raw" / "samples" / "trailer_bbb.mp4"
NEURAL = {name for name, c in ComponentGraph.load().profile("baseline").components.items() if c.models}


def run_baseline(tmp_path: Path, client: TritonClient) -> tuple[RunOutcome, ResultStore]:
    sidecar = tmp_path / "video.json"
    sidecar.write_text(
        json.dumps({"title": "Big Buck Bunny", "description": "Кролик", "tags": ["animation"]})
    )
    video = tmp_path / "trailer.mp4"
    shutil.copy2(SAMPLE, video)
    store = ResultStore(str(tmp_path / "store"))
    request = ProcessRequest(
        source=str(video),
        store=store,
        profile="baseline",
        metadata_file=sidecar,
        force=True,
        services=Services(triton=client),
        model_resolver=resolve_profile_models,
    )
    return process_video(request), store


def test_baseline_profile_records_models_everywhere(
    tmp_path: Path, triton_server: TritonServer, triton_client: TritonClient
) -> None:
    outcome, store = run_baseline(tmp_path, triton_client)
    assert outcome.status == "success", outcome.summary()
    manifest = outcome.manifest
    assert isinstance(manifest, Manifest)
    assert set(manifest.resolved_models) == NEURAL
    for name in NEURAL:
        record = manifest.component(name)
        assert record is not None and record.status in ("ok", "empty"), (name, record)
        if record.status == "empty":
            assert record.empty_reason
            continue
        resolved = manifest.resolved_models[name]
        (used,) = record.models_used
        assert used.weights_digest == resolved.weights_digest and used.precision == resolved.precision
        assert record.model_signature == model_signature(record.models_used)
        npz = next(a for a in record.artifacts if a.path.endswith(".npz"))
        _, meta = read_npz(store, f"{RunLayout.of(manifest.run).run_dir}/{npz.path}")
        assert meta.models_used == record.models_used and meta.model_signature == record.model_signature


def test_server_down_is_a_transient_run_error(tmp_path: Path) -> None:
    outcome, _ = run_baseline(tmp_path, TritonClient(f"127.0.0.1:{free_port()}", timeout_s=5))
    assert outcome.status == "error"
    assert outcome.error_code is ErrorCode.TRITON_UNAVAILABLE and is_transient(outcome.error_code)
    if outcome.manifest is not None:
        failed = [c for c in outcome.manifest.components if c.error_code is ErrorCode.TRITON_UNAVAILABLE]
        assert failed and {c.name for c in failed} <= NEURAL


def test_int8_profile_changes_config_hash() -> None:
    from trendflow.dataprocessor.run import config_hash_for

    raw = ComponentGraph.load().spec.model_dump(mode="json")
    raw["profiles"]["baseline"]["components"]["image_embedding"]["models"] = [
        {"model_name": "image_encoder", "model_version": "2", "precision": "int8"}
    ]
    int8 = ComponentGraph.from_dict(raw).profile("baseline")
    assert config_hash_for(int8) != config_hash_for(ComponentGraph.load().profile("baseline"))
