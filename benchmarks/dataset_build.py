"""Benchmark: dataset build time and peak memory for 1k and 10k runs (SYNTHETIC artifacts).

    python benchmarks/dataset_build.py                    # 1k and 10k runs, 100 snapshots/video
    python benchmarks/dataset_build.py --sizes 200 --snapshots-per-video 20   # a quick check

For each size it generates (untimed) a SYNTHETIC corpus: N videos with one run each (8 component
NPZs + manifest + frames metadata) and `snapshots-per-video` snapshot rows per video (10k videos x
100 = 1M snapshot rows), then times `build_training_table` (the code of the Kedro nodes) in a
child process pinned to `--cores` CPUs with `--n-jobs` workers. It samples the summed PSS (RSS
with shared pages split between processes) of that process and its workers every 50 ms, and
reports its CPU time (user + system, workers included), which a busy machine disturbs less than
wall time. Target: 10k runs in <= 60 s and <= 4 GB on 2 cores, cost linear in the number of
runs (the 1k -> 10k time ratio is reported; 10 is linear).
Results: benchmarks/results/dataset_build.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import platform
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
# Run as a script, this folder is sys.path[0]: keep sibling scripts (e.g. benchmarks/queue.py)
# from shadowing standard modules that multiprocessing imports.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]


def _generate(root: Path, n: int, per_video: int, n_jobs: int) -> dict:
    from trendflow.dataset.synthetic import SyntheticConfig, generate_corpus
    from trendflow.storage.store import ResultStore

    history_days = 25.0
    cfg = SyntheticConfig(
        n_videos=n,
        n_channels=max(10, n // 10),
        seed=1000 + n,
        snapshot_every_hours=history_days * 24 / (per_video - 1) * (1 - 1e-9),
        snapshot_jitter_hours=0.5,
        history_days=history_days,
        frac_short_history=0.0,
        frac_no_run=0.0,
        frac_failed_run=0.0,
        frac_superseded_run=0.0,
    )
    t0 = time.perf_counter()
    snapshots, info = generate_corpus(ResultStore(str(root / "store")), cfg, n_jobs=n_jobs)
    snapshots.to_parquet(root / "snapshots.parquet", index=False)
    return {
        "generate_sec": round(time.perf_counter() - t0, 2),
        "runs": info["runs_written"],
        "snapshot_rows": len(snapshots),
    }


def _build(root: str, n_jobs: int, cores: int, queue: mp.Queue) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:cores]))
    import pandas as pd

    from trendflow.dataset.build import build_training_table
    from trendflow.dataset.snapshots import normalize_snapshots
    from trendflow.storage.store import ResultStore

    t0 = time.perf_counter()
    raw = pd.read_parquet(Path(root) / "snapshots.parquet")
    snapshots, _ = normalize_snapshots(raw, "benchmark")
    t1 = time.perf_counter()
    params = {
        "run_features": {"n_jobs": n_jobs},
        "enrichment": {"enabled": False, "cache_path": str(Path(root) / "cache.jsonl")},
    }
    _table, meta = build_training_table(snapshots, ResultStore(str(Path(root) / "store")), params)
    t2 = time.perf_counter()
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    queue.put(
        {
            "cpu_sec": round(own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime, 2),
            "load_normalize_sec": round(t1 - t0, 2),
            "build_sec": round(t2 - t1, 2),
            "total_sec": round(t2 - t0, 2),
            "rows": meta["rows"],
            "columns": meta["columns"],
            "videos_with_run": meta["runs"]["counts"].get("videos_with_run", 0),
        }
    )


def _peak_rss(pid: int, stop: threading.Event, out: dict) -> None:
    import psutil

    peak = 0
    try:
        proc = psutil.Process(pid)
        while not stop.is_set():
            total = 0
            for p in [proc, *proc.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += p.memory_info().rss
            peak = max(peak, total)
            time.sleep(0.02)
    except psutil.Error:
        pass
    out["peak_memory_mb"] = round(peak / 2**20, 1)


def measure(root: Path, n_jobs: int, cores: int) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_build, args=(str(root), n_jobs, cores, queue))
    proc.start()
    stop, mem = threading.Event(), {}
    watcher = threading.Thread(target=_peak_rss, args=(proc.pid, stop, mem))
    watcher.start()
    result = None
    while result is None:
        try:
            result = queue.get(timeout=1.0)
        except Exception:  # queue.Empty: the child may have died without answering
            if not proc.is_alive():
                break
    proc.join()
    stop.set()
    watcher.join()
    if proc.exitcode != 0 or result is None:
        raise RuntimeError(f"build process failed with exit code {proc.exitcode}")
    return {**result, **mem}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--snapshots-per-video", type=int, default=100)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--workdir", default=None, help="where corpora are generated (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the generated corpora")
    ap.add_argument("--reuse", action="store_true", help="reuse corpora kept by --keep")
    ap.add_argument("--output", default="benchmarks/results/dataset_build.json")
    args = ap.parse_args(argv)

    base = Path(args.workdir or tempfile.mkdtemp(prefix="tf-dataset-bench-"))
    results = {
        "synthetic": True,
        "cores": args.cores,
        "n_jobs": args.n_jobs,
        "snapshots_per_video": args.snapshots_per_video,
        "sizes": {},
    }
    try:
        for n in args.sizes:
            root = base / f"runs_{n}"
            if args.reuse and (root / "snapshots.parquet").exists():
                gen = json.loads((root / "corpus.json").read_text())
            else:
                if root.exists():
                    shutil.rmtree(root)
                root.mkdir(parents=True)
                gen = _generate(root, n, args.snapshots_per_video, args.n_jobs)
                (root / "corpus.json").write_text(json.dumps(gen))
            print(
                f"[{n} runs] generated {gen['runs']} runs, {gen['snapshot_rows']} snapshot rows "
                f"in {gen['generate_sec']} s",
                file=sys.stderr,
                flush=True,
            )
            res = {**gen, **measure(root, args.n_jobs, args.cores)}
            res["ms_per_run"] = round(1000 * res["build_sec"] / max(n, 1), 2)
            results["sizes"][str(n)] = res
            print(
                f"[{n} runs] build {res['build_sec']} s (+{res['load_normalize_sec']} s load), "
                f"peak {res['peak_memory_mb']} MB",
                file=sys.stderr,
                flush=True,
            )
            if not (args.keep or args.reuse):
                shutil.rmtree(root, ignore_errors=True)
    finally:
        if not (args.keep or args.reuse) and args.workdir is None:
            shutil.rmtree(base, ignore_errors=True)
    sizes = sorted(results["sizes"], key=int)
    if len(sizes) >= 2:
        lo, hi = results["sizes"][sizes[0]], results["sizes"][sizes[-1]]
        results["scaling"] = {
            "from": int(sizes[0]),
            "to": int(sizes[-1]),
            "size_ratio": int(sizes[-1]) / int(sizes[0]),
            "time_ratio": round(hi["total_sec"] / max(lo["total_sec"], 1e-9), 2),
            "memory_ratio": round(hi["peak_memory_mb"] / max(lo["peak_memory_mb"], 1e-9), 2),
        }
    big = results["sizes"].get("10000")
    if big:
        results["targets"] = {
            "10k_total_sec<=60": big["total_sec"] <= 60,
            "10k_peak_memory_mb<=4096": big["peak_memory_mb"] <= 4096,
        }
    results["machine"] = {
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "platform": sys.platform,
        "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
