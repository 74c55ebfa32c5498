"""Crash recovery: SIGKILL a real `trendflow process` at many points, resume, compare with a clean run.

The victim is a real subprocess running the CLI; TRENDFLOW_FAULT_INJECT makes it kill itself with
SIGKILL at one point (nothing can clean up, as with the OOM killer or a lost machine). The resumed
run must end `success` with NPZ arrays identical to an uninterrupted run's, list no temp file as an
artifact, keep every component whose artifact survived, and leave a journal that tells the story.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tests.dataprocessor.resume_components  # noqa: F401  (registers the test components)
from tests.dataprocessor.resume_components import write_test_graph
from trendflow.dataprocessor.run import ProcessRequest, process_video, resume_run
from trendflow.dataprocessor.state import GlobalStateManager, RunStateManager, read_journal, verify_artifacts
from trendflow.dataprocessor.state.models import StateEvent
from trendflow.storage.layout import RunLayout
from trendflow.storage.npz_io import read_npz
from trendflow.storage.store import TMP_MARKER, ResultStore
from trendflow.testing.media import make_video

REPO = Path(__file__).resolve().parents[2]
PROFILE = "crash_test"
VICTIM = (
    "import sys, tests.dataprocessor.resume_components; from trendflow.cli import main; "
    "sys.argv[0] = 'trendflow'; main()"
)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("media")
    return {
        "video": make_video(base / "clip.mp4", duration=6.0, width=160, height=120, fps=12),
        "graph": write_test_graph(base / "graph.yaml"),
    }


@pytest.fixture(scope="module")
def reference(media: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An uninterrupted run: the arrays every resumed run must reproduce."""
    store = ResultStore(str(tmp_path_factory.mktemp("reference")))
    outcome = process_video(
        ProcessRequest(source=str(media["video"]), store=store, profile=PROFILE, graph_path=media["graph"])
    )
    assert outcome.status == "success", outcome.summary()
    return _artifacts(store, RunLayout.of(outcome.identity))


def _artifacts(store: ResultStore, layout: RunLayout) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for rel in store.find(layout.run_dir, suffix=".npz"):
        arrays, meta = read_npz(store, rel)
        out[rel[len(layout.run_dir) + 1 :]] = (arrays, meta.model_dump(exclude={"run"}))
    return out


def _victim(
    store_root: str,
    video: Path,
    graph: Path,
    fault: str,
    extra_env: dict[str, str] | None = None,
    args: list[str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'src'}",
        "TRENDFLOW_TEST_GRAPH": str(graph),
        "TRENDFLOW_FAULT_INJECT": fault,
        **(extra_env or {}),
    }
    command = args or ["process", str(video), "--store", store_root, "--profile", PROFILE]
    return subprocess.run(
        [sys.executable, "-c", VICTIM, *command],
        env=env,
        cwd=REPO,
        capture_output=True,
        timeout=300,
        check=False,
    )


def _only_run(store: ResultStore) -> RunLayout:
    runs = [e for e in GlobalStateManager(store).read().runs.values()]
    assert len(runs) == 1, runs
    return RunLayout(runs[0].platform_id, runs[0].video_id, runs[0].run_id)


def _attempts(events: list[StateEvent]) -> list[list[StateEvent]]:
    """The journal split at each `run_resumed`."""
    parts: list[list[StateEvent]] = [[]]
    for event in events:
        if event.event == "run_resumed":
            parts.append([])
        parts[-1].append(event)
    return parts


def check_resumed_run(
    store: ResultStore, layout: RunLayout, reference: dict[str, Any], attempts: int = 2
) -> None:
    # Same NPZ files, identical arrays, same meta apart from the run identity.
    resumed = _artifacts(store, layout)
    assert sorted(resumed) == sorted(reference)
    for rel, (arrays, meta) in reference.items():
        got_arrays, got_meta = resumed[rel]
        assert got_meta == meta, rel
        assert sorted(got_arrays) == sorted(arrays), rel
        for key in arrays:
            np.testing.assert_array_equal(got_arrays[key], arrays[key], err_msg=f"{rel}:{key}")
    # The manifest lists only real, verified artifacts; no temp file is left behind.
    manifest = json.loads(store.read_bytes(layout.manifest))
    assert manifest["status"] == "success"
    artifacts = [a for c in manifest["components"] for a in c["artifacts"]]
    assert not any(TMP_MARKER in a["path"] for a in artifacts)
    from trendflow.contracts.manifest import ArtifactRef

    assert verify_artifacts(store, layout.run_dir, [ArtifactRef(**a) for a in artifacts]) == []
    assert not [p for p in store.find(layout.run_dir) if TMP_MARKER in p]
    # The journal: contiguous sequence numbers, one start, one resume per attempt, a success at the end.
    events = read_journal(store, layout.run_dir).events
    assert [e.seq for e in events] == list(range(len(events)))
    names = [e.event for e in events]
    assert names.count("run_started") == 1 and names.count("run_resumed") == attempts - 1
    finished = [e for e in events if e.event == "run_finished"]
    assert finished[-1].payload["status"] == "success"
    assert events[-1].event == "run_indexed" and events[-1].payload["status"] == "success"
    # Every level agrees.
    state, _ = RunStateManager.recover(store, layout)
    assert state.state.status == "success" and state.state.attempt == attempts
    assert all(p.status == "ok" for p in state.state.processors.values())
    entry = GlobalStateManager(store).read().runs[f"{layout.run_dir}"]
    assert entry.status == "success" and entry.attempt == attempts


def check_valid_work_was_kept(before: RunStateManager, events: list[StateEvent]) -> None:
    """Every component the crashed attempt finished (artifact intact, dependencies kept) is reused,
    everything else is recomputed."""
    last = _attempts(events)[-1]
    reused = {e.subject.split("/")[1] for e in last if e.event == "component_reused"}
    recomputed = {e.subject.split("/")[1] for e in last if e.event == "component_finished"}
    invalid = {e.subject.split("/")[1] for e in last if e.event == "artifact_invalid"}
    done_before = {
        name
        for p in before.processors.values()
        for name, c in p.state.components.items()
        if c.status in ("ok", "empty") and name != "segmenter"
    }
    assert reused.isdisjoint(recomputed)
    assert reused - {"segmenter"} == done_before - invalid, (reused, done_before, invalid)
    assert {"segmenter", *recomputed, *reused} >= {
        c for p in before.processors.values() for c in p.state.components
    }


SLOW = pytest.mark.slow
FAULTS = [
    pytest.param("before_component:segmenter", marks=SLOW),
    pytest.param("after_component:segmenter", marks=SLOW),
    "after_component:test_frame_mean",
    pytest.param("before_component:test_frame_energy", marks=SLOW),
    pytest.param("after_component:test_frame_energy", marks=SLOW),
    "mid_npz_write:test_frame_energy",
    pytest.param("mid_npz_write:test_audio_rms", marks=SLOW),
    "mid_checkpoint:2",
    "mid_journal_append:14",
    "before_finish:run",
]


@pytest.mark.parametrize("fault", FAULTS)
def test_killed_run_resumes_to_the_uninterrupted_result(
    fault: str, media: dict[str, Path], reference: dict[str, Any], tmp_path: Path
) -> None:
    store = ResultStore(str(tmp_path / "store"))
    proc = _victim(
        store.root_uri, media["video"], media["graph"], fault, {"TRENDFLOW_STATE_CHECKPOINT_EVERY": "5"}
    )
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    layout = _only_run(store)
    before, report = RunStateManager.recover(store, layout)
    assert before.state.status == "running"
    if fault.startswith("after_component:"):  # the journal has the outcome the manifest may lack
        assert before.component_state(fault.split(":")[1]).status == "ok"

    outcome = resume_run(store, layout.run_dir, graph_path=media["graph"])

    assert outcome.status == "success" and outcome.resumed, outcome.summary()
    assert outcome.identity is not None and outcome.identity.run_id == layout.run_id
    check_resumed_run(store, layout, reference)
    events = read_journal(store, layout.run_dir).events
    check_valid_work_was_kept(before, events)
    resumed = next(e for e in events if e.event == "run_resumed")
    assert resumed.payload["attempt"] == 2 and resumed.payload["last_seq"] == report.last_seq
    if fault.startswith("mid_npz_write:"):
        component = fault.split(":")[1]
        orphans = [e.payload["path"] for e in events if e.event == "orphan_removed"]
        # Another thread may have been inside an atomic write too (a checkpoint): also an orphan.
        mine = [p for p in orphans if p.endswith(f"-{component}.npz")]
        assert len(mine) == 1 and mine[0].split("/")[-1].startswith(TMP_MARKER)
    if fault.startswith("mid_journal_append:"):
        assert resumed.payload["torn_bytes"] > 0
    if fault == "before_finish:run":  # nothing left to compute: not even the segmenter re-runs
        last = _attempts(events)[-1]
        assert not [e for e in last if e.event == "component_started"]


def test_a_resume_killed_again_still_finishes(
    media: dict[str, Path], reference: dict[str, Any], tmp_path: Path
) -> None:
    store = ResultStore(str(tmp_path / "store"))
    assert (
        _victim(store.root_uri, media["video"], media["graph"], "after_component:test_frame_mean").returncode
        == -9
    )
    layout = _only_run(store)
    # Second attempt through the CLI's --resume with a store-relative run dir; killed as well.
    args = ["process", "--resume", layout.run_dir, "--store", store.root_uri]
    assert (
        _victim("", media["video"], media["graph"], "after_component:segmenter", args=args).returncode == -9
    )
    # Third attempt, through the CLI with the run folder itself, and no fault.
    proc = _victim(
        "", media["video"], media["graph"], "", args=["process", "--resume", store.local_path(layout.run_dir)]
    )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    summary = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    assert summary["status"] == "success" and summary["resumed"] and summary["run_id"] == layout.run_id
    check_resumed_run(store, layout, reference, attempts=3)


def test_redelivered_job_with_the_same_run_id_resumes(
    media: dict[str, Path], reference: dict[str, Any], tmp_path: Path
) -> None:
    store = ResultStore(str(tmp_path / "store"))
    assert (
        _victim(store.root_uri, media["video"], media["graph"], "before_component:test_audio_rms").returncode
        == -9
    )
    layout = _only_run(store)
    outcome = process_video(
        ProcessRequest(
            source=str(media["video"]),
            store=store,
            profile=PROFILE,
            graph_path=media["graph"],
            run_id=layout.run_id,
            retry_count=1,
        )
    )
    assert outcome.status == "success" and outcome.resumed
    check_resumed_run(store, layout, reference)
    state, _ = RunStateManager.recover(store, layout)
    assert state.state.retry_count == 1
    assert "retry" in [e.event for e in read_journal(store, layout.run_dir).events]


def test_damaged_artifact_of_a_finished_run_is_recomputed(
    media: dict[str, Path], reference: dict[str, Any], tmp_path: Path
) -> None:
    store = ResultStore(str(tmp_path / "store"))
    first = process_video(
        ProcessRequest(source=str(media["video"]), store=store, profile=PROFILE, graph_path=media["graph"])
    )
    layout = RunLayout.of(first.identity)
    store.write_bytes(layout.path("visual/test_frame_mean.npz"), b"bit rot")
    outcome = resume_run(store, layout.run_dir, graph_path=media["graph"])
    assert outcome.status == "success"
    check_resumed_run(store, layout, reference)
    last = _attempts(read_journal(store, layout.run_dir).events)[-1]
    invalid = [e.subject for e in last if e.event == "artifact_invalid"]
    recomputed = {e.subject for e in last if e.event == "component_finished"}
    assert invalid == ["visual/test_frame_mean"]
    # Its dependent is recomputed too; unrelated components are kept.
    assert {"visual/test_frame_mean", "visual/test_frame_energy", "segmenter/segmenter"} == recomputed


@pytest.mark.parametrize(
    "fault", ["after_component:test_frame_mean", pytest.param("mid_checkpoint:2", marks=SLOW)]
)
def test_killed_run_on_s3_resumes_through_the_cli(
    fault: str, media: dict[str, Path], reference: dict[str, Any], s3_options: dict[str, str], s3_bucket: str
) -> None:
    store = ResultStore(f"s3://{s3_bucket}/results", storage_options=dict(s3_options))
    env = {
        "TRENDFLOW_S3_KEY": s3_options["key"],
        "TRENDFLOW_S3_SECRET": s3_options["secret"],
        "TRENDFLOW_S3_ENDPOINT_URL": s3_options["endpoint_url"],
        "TRENDFLOW_STATE_CHECKPOINT_EVERY": "5",
    }
    assert _victim(store.root_uri, media["video"], media["graph"], fault, env).returncode == -9
    layout = _only_run(store)
    assert store.listdir(f"{layout.run_dir}/state_events")  # the journal is S3 segments
    proc = _victim(
        "",
        media["video"],
        media["graph"],
        "",
        env,
        args=["process", "--resume", f"{store.root_uri}/{layout.run_dir}"],
    )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    check_resumed_run(store, layout, reference)


def test_resume_refuses_another_video_sidecar_or_profile(
    media: dict[str, Path], reference: dict[str, Any], tmp_path: Path
) -> None:
    import yaml

    store = ResultStore(str(tmp_path / "store"))
    sidecar = tmp_path / "meta.json"
    sidecar.write_text(json.dumps({"title": "A title", "tags": ["a", "b"]}))
    first = process_video(
        ProcessRequest(
            source=str(media["video"]),
            store=store,
            profile=PROFILE,
            graph_path=media["graph"],
            metadata_file=sidecar,
        )
    )
    assert first.status == "success"
    layout = RunLayout.of(first.identity)
    other = make_video(tmp_path / "other.mp4", duration=5.5, width=160, height=120, fps=12)
    wrong_video = resume_run(
        store, layout.run_dir, str(other), graph_path=media["graph"], metadata_file=sidecar
    )
    assert (
        wrong_video.error_code == "invalid_request" and "resume with the run's own video" in wrong_video.error
    )
    assert json.loads(store.read_bytes(layout.manifest))["status"] == "error"

    other_sidecar = tmp_path / "meta2.json"
    other_sidecar.write_text(json.dumps({"title": "Another title"}))
    wrong_sidecar = resume_run(store, layout.run_dir, graph_path=media["graph"], metadata_file=other_sidecar)
    assert wrong_sidecar.error_code == "invalid_request" and "--metadata" in wrong_sidecar.error

    changed = yaml.safe_load(media["graph"].read_text())
    changed["components"]["test_frame_energy"]["sampling"] = {"count": 11}
    changed_graph = tmp_path / "changed.yaml"
    changed_graph.write_text(yaml.safe_dump(changed))
    wrong_profile = resume_run(store, layout.run_dir, graph_path=changed_graph, metadata_file=sidecar)
    assert wrong_profile.error_code == "config_error"

    # The recorded uri (the same local file) and the same sidecar: the run finishes again.
    outcome = resume_run(store, layout.run_dir, graph_path=media["graph"], metadata_file=sidecar)
    assert outcome.status == "success"
    state, _ = RunStateManager.recover(store, layout)
    assert state.state.attempt == 5 and state.state.status == "success"
    assert "info_sha256" in state.state.source
    for name in ("run_state.json", "state_events.jsonl", "state_text.json"):  # SPEC 13: no raw text in state
        assert b"A title" not in store.read_bytes(layout.path(name))


def test_cli_resume_locations(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from trendflow.cli import app, split_run_location

    assert split_run_location("s3://bucket/results/local/vid/run1", "ignored") == (
        "s3://bucket/results",
        "local/vid/run1",
    )
    run = tmp_path / "store" / "local" / "vid" / "run1"
    run.mkdir(parents=True)
    assert split_run_location(str(run), "elsewhere") == (str(tmp_path / "store"), "local/vid/run1")
    assert split_run_location("local/vid/run1", str(tmp_path / "store")) == (
        str(tmp_path / "store"),
        "local/vid/run1",
    )
    result = CliRunner().invoke(app, ["process", "--store", str(tmp_path / "store")])
    assert result.exit_code == 1
    assert json.loads(result.output.strip().splitlines()[-1])["error_code"] == "invalid_request"
    missing = CliRunner().invoke(
        app, ["process", "--resume", "local/vid/nothing", "--store", str(tmp_path / "store")]
    )
    assert missing.exit_code == 1 and "no run state" in missing.output
