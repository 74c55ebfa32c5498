"""The Hugging Face snapshot source: Hub-layout folders, save_to_disk folders, a Hub cache, Hub errors.

Nothing here reaches the network: the Hub case loads from a Hub cache the test fills itself (with
HF_HUB_OFFLINE=1), and the error cases talk to a local HTTP server standing in for the Hub API
(HF_ENDPOINT) that answers the way huggingface.co does for a missing or a gated repo.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.dataset.huggingface import HFSpec, kind_of
from trendflow.dataset.kedro_datasets import SnapshotSourceDataset

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("hf_probe.py")
MAPPING = {"vid": "video_id", "ts": "snapshot_at", "view_count": "views", "like_count": "likes"}
README = """---
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*.{ext}
  - split: holdout
    path: data/holdout-*.{ext}
- config_name: tiny
  data_files: data/train-*.{ext}
---
# Snapshots
"""


def frame(ids: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "vid": [i for i in ids for _ in range(2)],
            "ts": ["2024-05-01T00:00:00Z", "2024-05-15T00:00:00Z"] * len(ids),
            "view_count": [10, 500] * len(ids),
            "like_count": [1, 9] * len(ids),
            "comments": [0, 2] * len(ids),
        }
    )


def write(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        df.to_parquet(path, index=False)
    elif path.suffix == ".csv":
        df.to_csv(path, index=False)
    else:
        df.to_json(path, orient="records", lines=True)


def hub_layout(root: Path, ext: str) -> Path:
    """A folder laid out like a Hub dataset repo: README.md with configs + data files."""
    write(frame(["vidA", "vidB"]), root / "data" / f"train-00000-of-00001.{ext}")
    write(frame(["vidC"]), root / "data" / f"holdout-00000-of-00001.{ext}")
    (root / "README.md").write_text(README.format(ext=ext))
    return root


@pytest.mark.parametrize("ext", ["parquet", "csv", "jsonl"])
def test_hub_layout_folder(tmp_path, ext):
    folder = hub_layout(tmp_path / "repo", ext)
    ds = SnapshotSourceDataset(kind="huggingface", filepath=str(folder), column_mapping=MAPPING)
    df, report = ds.load().read()
    assert sorted(set(df.video_id)) == ["vidA", "vidB"]  # the train split of the default config
    assert report["rows_out"] == 4 and set(df.platform_id) == {"youtube"}
    assert len(ds.load().fingerprint()) == 64

    holdout = SnapshotSourceDataset(
        kind="huggingface", filepath=str(folder), column_mapping=MAPPING, load_args={"split": "holdout"}
    )
    assert set(holdout.load().read()[0].video_id) == {"vidC"}
    with pytest.raises(TrendFlowError, match=r"no split 'test'.*\['holdout', 'train'\]") as err:
        SnapshotSourceDataset(
            kind="huggingface", filepath=str(folder), column_mapping=MAPPING, load_args={"split": "test"}
        ).load().read()
    assert err.value.code is ErrorCode.CONFIG_ERROR


def test_plain_folder_of_files_and_single_file(tmp_path):
    write(frame(["vidA"]), tmp_path / "plain" / "part-0.parquet")
    write(frame(["vidB"]), tmp_path / "plain" / "part-1.parquet")
    df, _ = (
        SnapshotSourceDataset(kind="huggingface", filepath=str(tmp_path / "plain"), column_mapping=MAPPING)
        .load()
        .read()
    )
    assert sorted(set(df.video_id)) == ["vidA", "vidB"]
    write(frame(["vidZ"]), tmp_path / "one.jsonl")
    df, _ = (
        SnapshotSourceDataset(
            kind="huggingface", filepath=str(tmp_path / "one.jsonl"), column_mapping=MAPPING
        )
        .load()
        .read()
    )
    assert set(df.video_id) == {"vidZ"}


def test_named_config(tmp_path):
    folder = hub_layout(tmp_path / "repo", "parquet")
    ds = SnapshotSourceDataset(
        kind="huggingface", filepath=str(folder), column_mapping=MAPPING, load_args={"config": "tiny"}
    )
    assert sorted(set(ds.load().read()[0].video_id)) == ["vidA", "vidB"]
    with pytest.raises(TrendFlowError) as err:
        SnapshotSourceDataset(
            kind="huggingface", filepath=str(folder), column_mapping=MAPPING, load_args={"config": "nope"}
        ).load().read()
    assert err.value.code is ErrorCode.CONFIG_ERROR and "nope" in err.value.message


def test_save_to_disk_folder(tmp_path):
    datasets = pytest.importorskip("datasets")
    path = tmp_path / "saved"
    datasets.Dataset.from_pandas(frame(["vidS"])).save_to_disk(str(path))
    assert kind_of(str(path)) == "save_to_disk"
    df, _ = (
        SnapshotSourceDataset(kind="huggingface", filepath=str(path), column_mapping=MAPPING).load().read()
    )
    assert set(df.video_id) == {"vidS"}


def test_missing_columns_name_what_is_wrong(tmp_path):
    folder = hub_layout(tmp_path / "repo", "parquet")
    with pytest.raises(
        TrendFlowError, match=r"lack required columns \['video_id', 'snapshot_at'.*'vid'"
    ) as err:
        SnapshotSourceDataset(kind="huggingface", filepath=str(folder)).load().read()
    assert err.value.code is ErrorCode.INVALID_REQUEST
    with pytest.raises(TrendFlowError, match=r"column_mapping names columns the source lacks: \['nope'\]"):
        SnapshotSourceDataset(
            kind="huggingface", filepath=str(folder), column_mapping={**MAPPING, "nope": "title"}
        ).load().read()


def test_not_a_folder_nor_a_repo_id(tmp_path):
    ds = SnapshotSourceDataset(kind="huggingface", filepath=str(tmp_path / "missing" / "x" / "y"))
    assert not ds.exists()
    with pytest.raises(TrendFlowError) as err:
        ds.load().read()
    assert err.value.code is ErrorCode.SOURCE_NOT_FOUND
    assert kind_of("acme/snaps") == "hub"


def test_token_never_in_repr_or_describe(monkeypatch):
    spec = HFSpec.from_options("acme/snaps", {}, {"token": "hf_SECRETSECRET"})
    assert spec.token == "hf_SECRETSECRET" and "SECRET" not in repr(spec)
    ds = SnapshotSourceDataset(
        kind="huggingface", filepath="acme/snaps", credentials={"token": "hf_SECRETSECRET"}
    )
    assert "SECRET" not in repr(ds) and "SECRET" not in str(ds._describe())
    monkeypatch.setenv("HF_TOKEN", "hf_FROMENV")
    assert HFSpec.from_options("acme/snaps", {}, None).token == "hf_FROMENV"
    with pytest.raises(TrendFlowError, match="unknown load_args"):
        HFSpec.from_options("acme/snaps", {"revison": "main"}, None)


# -- Hub repo ids, in fresh processes (the HF libraries read their environment at import) --------
def fill_hub_cache(cache: Path, repo_id: str, commit: str = "c0ffee" * 6 + "c0ff") -> None:
    """The layout huggingface_hub writes: datasets--owner--name/{refs/main, snapshots/<commit>/...}."""
    root = cache / f"datasets--{repo_id.replace('/', '--')}"
    hub_layout(root / "snapshots" / commit, "parquet")
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(commit)


def probe(cases: list[dict], env: dict[str, str], tmp_path: Path) -> list[dict]:
    full_env = {
        **os.environ,
        "HF_HOME": str(tmp_path / "hf_home"),
        "HF_DATASETS_CACHE": str(tmp_path / "datasets_cache"),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        **env,
    }
    full_env.pop("HF_TOKEN", None)
    done = subprocess.run(
        [sys.executable, str(PROBE), json.dumps(cases)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_hub_repo_from_the_hub_cache_offline(tmp_path):
    cache = tmp_path / "hub"
    repo = "acme/trending-snapshots"
    fill_hub_cache(cache, repo)
    env = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "HF_ENDPOINT": "http://127.0.0.1:9"}
    hit, holdout, missing, bad_revision = probe(
        [
            {"filepath": "acme/trending-snapshots", "column_mapping": MAPPING},
            {
                "filepath": "acme/trending-snapshots",
                "column_mapping": MAPPING,
                "load_args": {"split": "holdout"},
            },
            {"filepath": "acme/not-cached", "column_mapping": MAPPING},
            {
                "filepath": "acme/trending-snapshots",
                "load_args": {"revision": "v9"},
                "column_mapping": MAPPING,
            },
        ],
        env,
        tmp_path,
    )
    assert hit["rows"] == 4 and hit["videos"] == ["vidA", "vidB"] and len(hit["fingerprint"]) == 64
    assert holdout["videos"] == ["vidC"]
    assert missing["error_code"] == "source_not_found"
    assert "acme/not-cached" in missing["message"] and "HF_HUB_OFFLINE=1" in missing["message"]
    assert bad_revision["error_code"] == "source_not_found" and "'v9'" in bad_revision["message"]


class HubStandIn:
    """Answers the Hub API like huggingface.co does for a missing and a gated dataset repo."""

    def __init__(self) -> None:
        self.auth_headers: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _answer(self) -> None:
                server.auth_headers.append(self.headers.get("Authorization"))
                if "gated" in self.path:
                    status, code, text = 401, "GatedRepo", "Access to dataset acme/gated is restricted."
                else:
                    status, code, text = 404, "RepoNotFound", "Repository not found"
                body = json.dumps({"error": text}).encode()
                self.send_response(status)
                self.send_header("X-Error-Code", code)
                self.send_header("X-Error-Message", text)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = _answer

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> HubStandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_hub_repo_missing_or_gated_are_typed_errors(tmp_path):
    with HubStandIn() as hub:
        env = {"HF_ENDPOINT": hub.url, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "0"}
        missing, gated, gated_token = probe(
            [
                {"filepath": "acme/missing"},
                {"filepath": "acme/gated"},
                {"filepath": "acme/gated", "credentials": {"token": "hf_SECRETSECRET"}},
            ],
            env,
            tmp_path,
        )
    assert (
        missing["error_code"] == "source_not_found" and "'acme/missing' does not exist" in missing["message"]
    )
    assert gated["error_code"] == "config_error"
    assert "gated and no token was given" in gated["message"] and "HF_TOKEN" in gated["message"]
    assert "gated and the token given has no access" in gated_token["message"]
    assert all("SECRET" not in json.dumps(o) for o in (missing, gated, gated_token))
    assert "Bearer hf_SECRETSECRET" in hub.auth_headers  # the token did reach the Hub


def test_runtime_parameter_picks_the_dataset(tmp_path) -> None:
    """`--params hf_dataset=<folder or repo id>` reaches the catalog entry unchanged (no abs path)."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    folder = hub_layout(tmp_path / "repo", "parquet")
    bootstrap_project(ROOT)
    runtime = {"hf_dataset": str(folder), "hf_split": "holdout"}
    with KedroSession.create(project_path=ROOT, runtime_params=runtime) as session:
        handle = session.load_context().catalog.load("snapshots_huggingface")
    assert handle.filepath == str(folder) and handle.load_args["split"] == "holdout"
    handle.column_mapping = MAPPING
    assert set(handle.read()[0].video_id) == {"vidC"}
    with KedroSession.create(project_path=ROOT, runtime_params={"hf_dataset": "acme/snaps"}) as session:
        assert session.load_context().catalog.load("snapshots_huggingface").filepath == "acme/snaps"
