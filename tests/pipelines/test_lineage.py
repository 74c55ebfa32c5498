"""Lineage a user can browse: `kedro viz build` JSON has a layer on every dataset, and processing,
dataset, training and inference form ONE connected graph from the snapshots to the predictions."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import defaultdict, deque
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = {"raw", "intermediate", "primary", "feature", "model_input", "models", "model_output", "reporting"}
PIPELINES = ("processing", "dataset", "training", "inference")


@pytest.fixture(scope="module")
def viz(tmp_path_factory) -> dict[str, dict]:
    project = tmp_path_factory.mktemp("viz_project")
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    shutil.copytree(ROOT / "conf", project / "conf", ignore=shutil.ignore_patterns("credentials*", "local"))
    (project / "conf" / "local").mkdir()
    (project / "src").mkdir()  # the package itself is imported from the checkout
    env = {
        **os.environ,
        "KEDRO_DISABLE_TELEMETRY": "1",
        "MLFLOW_ALLOW_FILE_STORE": "true",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
    }
    kedro = [sys.executable, "-m", "kedro"]
    done = subprocess.run(
        [*kedro, "viz", "build"], cwd=project, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    api = project / "build" / "api"
    return {p.name: json.loads(p.read_text()) for p in (api / "pipelines").iterdir()}


def test_every_dataset_has_a_layer(viz) -> None:
    for name in (*PIPELINES, "full"):
        data = [n for n in viz[name]["nodes"] if n["type"] == "data"]
        assert data, name
        without = sorted(n["name"] for n in data if n.get("layer") not in LAYERS)
        assert not without, f"{name}: datasets without a Kedro-Viz layer: {without}"


def test_pipelines_form_one_connected_lineage(viz) -> None:
    names: dict[str, str] = {}
    edges: set[tuple[str, str]] = set()
    for pipeline in PIPELINES:
        names.update({n["id"]: n["name"] for n in viz[pipeline]["nodes"]})
        edges |= {(e["source"], e["target"]) for e in viz[pipeline]["edges"]}
    undirected: dict[str, set[str]] = defaultdict(set)
    forward: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        undirected[a].add(b)
        undirected[b].add(a)
        forward[names[a]].add(names[b])

    def reach(start: str, graph: dict[str, set[str]]) -> set[str]:
        seen, todo = {start}, deque([start])
        while todo:
            for nxt in graph[todo.popleft()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        return seen

    component = reach(next(iter(names)), undirected)
    assert component == set(names), f"not connected: {sorted(names[i] for i in set(names) - component)}"
    # the directed path: snapshots -> processing -> runs -> dataset -> training -> models -> inference
    downstream = reach("snapshots_huggingface", forward)
    for step in ("select_processing_videos", "runs_index", "build_run_features", "training_table"):
        assert step in downstream, step
    assert "training_table" in reach("runs_index", forward)  # the dataset reads processing's runs
    assert {"forecast_models", "model_bundle"} <= reach("training_table", forward)
    assert "predictions" in reach("forecast_models", forward)
    # No hidden I/O: the result store is a catalog dataset every pipeline that reads runs takes
    assert {"select_processing_videos", "build_run_features", "predict_videos"} <= forward["result_store"]
    assert not any(name.startswith("params:result_store") for name in names.values())
