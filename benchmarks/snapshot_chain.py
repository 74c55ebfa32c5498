"""The whole chain from a snapshot dataset to trained models, timed: one `kedro run --pipelines=full`.

Two runs, each in a fresh copy of the project (its own data/, mlflow.db) with its own Redis:

- `hub`: a local folder laid out like a Hugging Face dataset repo (README.md `configs` +
  parquet), built from YouTube trending CSVs; `processing.video_list=snapshots` queues at most
  `--max-videos` of its videos as YouTube watch URLs. Offline, every download fails with its typed
  code (retries shortened with TRENDFLOW_RETRY_BASE_S) and the table still builds, with masks and
  `run__missing_reason`.
- `samples`: the bundled sample videos (processing_videos.csv) through the queue, then the SYNTHETIC
  corpus + the samples' snapshot curves -> table -> training.

    python benchmarks/snapshot_chain.py --trending data/01_raw/samples/trending --max-videos 20
    python benchmarks/snapshot_chain.py --algorithms catboost,lightgbm   # a shorter training step

Prints one JSON object (times, row counts, runs_index and Level 1 status counts, the load average
and a same-process CPU reference to compare runs on a busy machine); logs go to stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
README = """---
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*.parquet
---
# YouTube trending snapshots (Hub layout, built by benchmarks/snapshot_chain.py)
"""


def reference_sec() -> float:
    """A fixed CPU workload (sha256 over 256 MiB), timed: the machine's speed right now."""
    block = b"\x5a" * (1 << 20)
    start = time.perf_counter()
    digest = hashlib.sha256()
    for _ in range(256):
        digest.update(block)
    return round(time.perf_counter() - start, 3)


def level1(project: Path) -> dict:
    """Level 1 state of the project's result store, as `trendflow stats` reads it."""
    sys.path.insert(0, str(ROOT / "src"))
    from trendflow.dataprocessor.stats import collect_stats
    from trendflow.storage.store import ResultStore

    report = collect_stats(ResultStore(str(project / "data" / "02_intermediate" / "result_store")))
    return {
        "runs": report.runs,
        "status": report.runs_by_status,
        "run_errors": report.run_errors,
        "rejected_before_start": report.runs_rejected,
    }


def log(msg: str) -> None:
    print(f"[snapshot_chain] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_project(root: Path) -> Path:
    root.mkdir(parents=True)
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    shutil.copytree(ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("credentials*", "local"))
    (root / "conf" / "local").mkdir()
    shutil.copytree(ROOT / "data" / "01_raw" / "samples", root / "data" / "01_raw" / "samples")
    (root / "src").mkdir()
    return root


def hub_folder(trending: Path, target: Path) -> dict:
    """Trending CSVs -> canonical snapshots -> a Hub-layout dataset folder; original column names
    for the counters, so the run also exercises `column_mapping`-free canonical names."""
    sys.path.insert(0, str(ROOT / "src"))
    from trendflow.dataset.trending import import_trending

    snapshots, _ = import_trending(str(trending))
    (target / "data").mkdir(parents=True)
    snapshots.to_parquet(target / "data" / "train-00000-of-00001.parquet", index=False)
    (target / "README.md").write_text(README)
    return {"rows": len(snapshots), "videos": int(snapshots["video_id"].nunique())}


PROCESSING_NODES = {
    "select_processing_videos",
    "plan_processing_jobs",
    "dispatch_processing_jobs",
    "follow_processing_jobs",
    "build_runs_index",
}
DATASET_NODES = {
    "load_snapshots",
    "build_snapshot1_and_targets",
    "build_run_features",
    "enrich_channels_and_split",
    "assemble_training_table",
}


def stage_seconds(log_text: str) -> dict[str, float]:
    """Seconds per pipeline from Kedro's node log lines (1 s resolution of the log's clock)."""
    stamp = re.compile(r"^\[(\d\d/\d\d/\d\d \d\d:\d\d:\d\d)\]")
    now, started, spent = None, {}, {"processing": 0.0, "dataset": 0.0, "training": 0.0}
    for line in log_text.splitlines():
        if match := stamp.match(line):
            now = datetime.strptime(match.group(1), "%m/%d/%y %H:%M:%S")
        if now is None:
            continue
        if match := re.search(r"Running node: (\w+)", line):
            started[match.group(1)] = now
        elif (match := re.search(r"Completed node: (\w+)", line)) and match.group(1) in started:
            name = match.group(1)
            stage = (
                "processing"
                if name in PROCESSING_NODES
                else "dataset"
                if name in DATASET_NODES
                else "training"
            )
            spent[stage] += (now - started[name]).total_seconds()
    return spent


def kedro_run(project: Path, env: dict, args: list[str]) -> float:
    cmd = [sys.executable, "-m", "kedro", "run", *args]
    log(" ".join(cmd[2:]))
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    (project / "kedro_run.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        log((done.stdout + done.stderr)[-4000:])
        raise SystemExit(f"kedro run failed ({done.returncode}); log: {project / 'kedro_run.log'}")
    return round(seconds, 1)


def outcome(project: Path) -> dict:
    data = project / "data"
    index = pd.read_parquet(data / "03_primary" / "runs_index.parquet")
    table = pd.read_parquet(data / "05_model_input" / "training_table.parquet")
    metadata = json.loads((data / "05_model_input" / "dataset_metadata.json").read_text())
    metrics = pd.read_csv(data / "08_reporting" / "training_metrics.csv")
    statuses = index["status"].value_counts().to_dict()
    codes = index.dropna(subset=["error_code"]).groupby(["error_code"], dropna=False).size().to_dict()
    processing_sec = None
    if index["finished_at"].notna().any():
        processing_sec = round((index["finished_at"].max() - index["submitted_at"].min()).total_seconds(), 1)
    return {
        "level1": level1(project),
        "runs_index": {
            "rows": len(index),
            "status": {str(k): int(v) for k, v in statuses.items()},
            "error_codes": {str(k): int(v) for k, v in codes.items()},
            "retries": int(index["retry_count"].sum()),
            "queue_wall_sec": processing_sec,
        },
        "table": {
            "rows": len(table),
            "columns": table.shape[1],
            "rows_with_run": int(table["run__present"].sum()),
            "synthetic_rows": int(table["synthetic"].sum()) if "synthetic" in table else 0,
            "run_missing_reasons": {
                str(k): int(v) for k, v in table["run__missing_reason"].value_counts(dropna=True).items()
            },
            "fingerprint": metadata.get("dataset_fingerprint"),
        },
        "training": {
            "metric_rows": len(metrics),
            "tasks": int(metrics[["target", "horizon"]].drop_duplicates().shape[0])
            if {"target", "horizon"} <= set(metrics.columns)
            else None,
            "bundle": (data / "06_models" / "model_bundle").is_dir(),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trending", default=str(ROOT / "data" / "01_raw" / "samples" / "trending"))
    parser.add_argument("--max-videos", type=int, default=20)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--only", choices=["hub", "samples"], default=None)
    parser.add_argument(
        "--algorithms", default=None, help="comma list of training algorithms (default: the conf's)"
    )
    args = parser.parse_args()
    # `kedro run --params` splits on commas: a list goes in as a YAML block list
    training = (
        "training.algorithms=" + "".join(f"\n- {a}" for a in args.algorithms.split(","))
        if args.algorithms
        else ""
    )
    work = Path(args.workdir or tempfile.mkdtemp(prefix="trendflow-chain-"))
    redis_dir = work / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(redis_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    env = {
        **os.environ,
        "KEDRO_DISABLE_TELEMETRY": "1",
        "MLFLOW_ALLOW_FILE_STORE": "true",
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        "TRENDFLOW_REDIS_URL": f"redis://127.0.0.1:{port}/0",
        "TRENDFLOW_RETRY_BASE_S": "1",  # offline downloads fail fast; keep their retries short
        "TRENDFLOW_RETRY_MAX_S": "4",
        "TRENDFLOW_YTDLP_LONG_BACKOFF_S": "5",
        "TRENDFLOW_SCRATCH": str(work / "scratch"),
        "COLUMNS": "250",  # Kedro's rich log lines unwrapped, for the stage times
    }
    result: dict = {
        "max_videos": args.max_videos,
        "algorithms": args.algorithms or "conf/base",
        "workdir": str(work),
        "load_avg_1m_start": round(os.getloadavg()[0], 2),
        "reference_sec_start": reference_sec(),
    }
    try:
        time.sleep(0.5)
        if args.only in (None, "hub"):
            project = make_project(work / "hub")
            folder = work / "hf_trending"
            result["hub_dataset"] = hub_folder(Path(args.trending), folder)
            env["TRENDFLOW_QUEUE"] = f"chain-{uuid.uuid4().hex[:8]}"
            params = (
                f"dataset.snapshot_source=huggingface,hf_dataset={folder},"
                f"processing.video_list=snapshots,processing.max_videos={args.max_videos}"
            ) + (f",{training}" if training else "")
            seconds = kedro_run(
                project, env, ["--env", "trending", "--pipelines", "full", "--params", params]
            )
            stages = stage_seconds((project / "kedro_run.log").read_text())
            result["hub"] = {"full_run_sec": seconds, "stage_sec": stages, **outcome(project)}
        if args.only in (None, "samples"):
            project = make_project(work / "samples")
            env["TRENDFLOW_QUEUE"] = f"chain-{uuid.uuid4().hex[:8]}"
            seconds = kedro_run(
                project, env, ["--pipelines", "full", *(["--params", training] if training else [])]
            )
            stages = stage_seconds((project / "kedro_run.log").read_text())
            result["samples"] = {"full_run_sec": seconds, "stage_sec": stages, **outcome(project)}
    finally:
        redis.terminate()
        redis.wait(10)
    result["load_avg_1m_end"] = round(os.getloadavg()[0], 2)
    result["reference_sec_end"] = reference_sec()
    reference = (result["reference_sec_start"] + result["reference_sec_end"]) / 2
    for name in ("hub", "samples"):
        if name in result:
            result[name]["full_run_over_reference"] = round(result[name]["full_run_sec"] / reference, 1)
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
