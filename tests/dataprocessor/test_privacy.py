"""SPEC 13 end to end: raw title/description/tags never reach an NPZ unless a policy says so."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.media import VIDEOS
from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.dataprocessor.component import PrivacyPolicy
from trendflow.dataprocessor.run import ProcessRequest, process_video
from trendflow.storage.store import ResultStore

SECRET_TITLE = "Zyxwvut Quokka Parade"
SECRET_DESCRIPTION = "Unmistakable description about quokkas and the harbour"
SECRET_TAG = "quokkafestival"


@pytest.fixture
def sidecar(tmp_path: Path) -> Path:
    path = tmp_path / "meta.json"
    path.write_text(
        json.dumps(
            {
                "title": SECRET_TITLE,
                "description": SECRET_DESCRIPTION,
                "tags": [SECRET_TAG, "nature"],
                "published_at": "2026-01-02T03:04:05Z",
            }
        )
    )
    return path


def _npz_texts(store_root: Path) -> str:
    """Every NPZ member (arrays and meta), decoded leniently into one searchable string."""
    chunks = []
    for npz in store_root.rglob("*.npz"):
        with zipfile.ZipFile(npz) as archive:
            for name in archive.namelist():
                raw = archive.read(name)
                chunks.append(raw.decode("utf-8", "ignore"))
                chunks.append(raw.decode("utf-32-le", "ignore"))  # numpy unicode arrays
    return "\n".join(chunks)


def _run(store_root: Path, sidecar: Path, policy: PrivacyPolicy) -> dict:
    outcome = process_video(
        ProcessRequest(
            source=str(VIDEOS / "bikes.mp4"),
            store=ResultStore(str(store_root)),
            profile="signals",
            metadata_file=sidecar,
            policy=policy,
        )
    )
    assert outcome.status == "success", outcome.summary()
    return outcome.summary()


def test_no_raw_text_in_any_npz_or_manifest_by_default(tmp_path: Path, sidecar: Path) -> None:
    store_root = tmp_path / "store"
    _run(store_root, sidecar, PrivacyPolicy())
    texts = _npz_texts(store_root)
    assert list(store_root.rglob("*.npz")), "the run wrote NPZ files"
    for secret in (SECRET_TITLE, "Quokka", SECRET_DESCRIPTION, "harbour", SECRET_TAG):
        assert secret not in texts
    for text_file in [*store_root.rglob("*.json"), *store_root.rglob("*.jsonl")]:
        content = text_file.read_text()
        for secret in (SECRET_TITLE, SECRET_DESCRIPTION, SECRET_TAG):
            assert secret not in content, f"raw text leaked into {text_file.name}"


def test_keeping_raw_text_needs_a_retention_limit() -> None:
    with pytest.raises(TrendFlowError) as err:
        PrivacyPolicy(keep_raw_text=True)
    assert err.value.code is ErrorCode.INVALID_REQUEST


def test_explicit_policy_keeps_raw_text_with_retention_recorded(tmp_path: Path, sidecar: Path) -> None:
    store_root = tmp_path / "store"
    _run(store_root, sidecar, PrivacyPolicy(keep_raw_text=True, raw_text_retention_days=30))
    assert SECRET_TITLE in _npz_texts(store_root)
    (text_npz,) = store_root.rglob("text_stats.npz")
    with zipfile.ZipFile(text_npz) as archive:
        meta = json.loads(str(np.load(io.BytesIO(archive.read("meta.npy")), allow_pickle=False)))
    assert meta["raw_text_retention_days"] == 30
