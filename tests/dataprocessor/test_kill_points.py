"""Fault injection: SIGKILL a real `trendflow process` at 22 distinct points, on the local store and
on the S3 endpoint, resume through the CLI, and get arrays identical to an uninterrupted run.

Points cover the decode (mid-decode, mid-audio extraction), every kind of store write (NPZ,
metadata.json, manifest.json, run_state.json; a PUT on S3), the journal and checkpoints, the
component boundaries, the end of the run, and a resume that is itself killed. The checks are
those of test_resume.py: same NPZ files and arrays, no temp file, a contiguous journal, every
state level agreeing. A few cases run by default; the rest are marked slow (CI).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.dataprocessor.test_resume import (  # noqa: F401  (media, reference: module fixtures)
    _only_run,
    _victim,
    check_resumed_run,
    media,
    reference,
)
from trendflow.dataprocessor.state import RunStateManager
from trendflow.storage.store import ResultStore

SLOW = pytest.mark.slow
KILL_POINTS = [
    "before_component:segmenter",
    "mid_decode:3",
    "mid_audio_extract:started",
    "mid_store_write:metadata.json",
    "after_component:segmenter",
    "before_component:test_frame_energy",
    "after_component:test_frame_mean",
    "after_component:test_frame_energy",
    "before_component:test_audio_rms",
    "after_component:test_text_length",
    "mid_npz_write:test_frame_energy",
    "mid_npz_write:test_audio_rms",
    "mid_store_write:test_frame_mean.npz",
    "mid_store_write:manifest.json#2",
    "mid_store_write:run_state.json",
    "mid_checkpoint:1",
    "mid_checkpoint:2",
    "mid_journal_append:3",
    "mid_journal_append:14",
    "before_finish:run",
    "during_resume:recovered",
    "during_resume:planned",
]
DEFAULT = {
    ("local", "mid_decode:3"),
    ("local", "mid_audio_extract:started"),
    ("local", "during_resume:planned"),
    ("s3", "mid_store_write:test_frame_mean.npz"),
}
CASES = [
    pytest.param(kind, point, marks=() if (kind, point) in DEFAULT else SLOW, id=f"{kind}-{point}")
    for kind in ("local", "s3")
    for point in KILL_POINTS
]
FIRST_KILL = "after_component:test_frame_mean"  # where a run dies before its resume is killed


def _store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[ResultStore, dict[str, str]]:
    env = {"TRENDFLOW_STATE_CHECKPOINT_EVERY": "5"}
    if kind == "local":
        return ResultStore(str(tmp_path / "store")), env
    options = request.getfixturevalue("s3_options")
    bucket = request.getfixturevalue("s3_bucket")
    env |= {
        "TRENDFLOW_S3_KEY": options["key"],
        "TRENDFLOW_S3_SECRET": options["secret"],
        "TRENDFLOW_S3_ENDPOINT_URL": options["endpoint_url"],
    }
    return ResultStore(f"s3://{bucket}/results", storage_options=dict(options)), env


@pytest.mark.parametrize(("kind", "point"), CASES)
def test_kill_point_resumes_to_identical_arrays(
    kind: str,
    point: str,
    media: dict[str, Path],  # noqa: F811
    reference: dict[str, Any],  # noqa: F811
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    store, env = _store(kind, tmp_path, request)
    during_resume = point.startswith("during_resume:")
    killed = _victim(
        store.root_uri, media["video"], media["graph"], FIRST_KILL if during_resume else point, env
    )
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    layout = _only_run(store)
    before, _ = RunStateManager.recover(store, layout)
    assert before.state.status == "running"
    location = store.local_path(layout.run_dir) if store.is_local else f"{store.root_uri}/{layout.run_dir}"
    resume = ["process", "--resume", location]
    attempts = 2
    if during_resume:
        again = _victim("", media["video"], media["graph"], point, env, args=resume)
        assert again.returncode == -9, again.stderr.decode()[-2000:]
        attempts = 3
    finished = _victim("", media["video"], media["graph"], "", env, args=resume)
    assert finished.returncode == 0, finished.stderr.decode()[-2000:]
    check_resumed_run(store, layout, reference, attempts=attempts)
