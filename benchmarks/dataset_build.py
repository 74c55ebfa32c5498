"""Benchmark: dataset build time and peak memory for 1k to 100k runs (SYNTHETIC artifacts).

    python benchmarks/dataset_build.py                    # 1k and 10k runs, 100 snapshots/video
    python benchmarks/dataset_build.py --sizes 1000 10000 100000 --snapshots-per-video 25 \
        --workdir /tmp/tf-dataset-bench --keep            # the 100k-run target (about 9 GB of runs)
    python benchmarks/dataset_build.py --sizes 200 --snapshots-per-video 20   # a quick check

For each size it generates (untimed) a SYNTHETIC corpus: N videos with one run each (8 component
NPZs + manifest + frames metadata) and `snapshots-per-video` snapshot rows per video (10k videos x
100 = 1M snapshot rows), then times `build_training_table` (the code of the Kedro nodes) in a
child process pinned to `--cores` CPUs with `--n-jobs` workers. It samples the summed PSS (RSS
with shared pages split between processes, /proc/<pid>/smaps_rollup; RSS where that is missing)
of that process and its workers every 50 ms, and reports its CPU time (user + system, workers
included), which a busy machine disturbs less than wall time, with the load average before and
after each size. Targets: 10k runs in <= 60 s, 100k runs in <= 360 s, both <= 4 GB on 2 cores,
cost linear in the number of runs: `scaling` gives, for each size step, the size ratio and the
wall, CPU and memory ratios (linear = the size ratio; per-run cost ratios near 1); `scaling`
is the same from the smallest to the largest size.
Results: benchmarks/results/dataset_build.json.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
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


def _pss(proc) -> tuple[int, str]:
    """Proportional set size of one process in bytes (RSS where smaps_rollup is missing)."""
    try:
        with open(f"/proc/{proc.pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024, "pss"
    except OSError:
        pass
    return proc.memory_info().rss, "rss"


def _peak_memory(pid: int, stop: threading.Event, out: dict) -> None:
    import psutil

    peak, kinds = 0, set()
    try:
        proc = psutil.Process(pid)
        while not stop.is_set():
            total = 0
            for p in [proc, *proc.children(recursive=True)]:
                with contextlib.suppress(psutil.Error, ValueError):
                    value, kind = _pss(p)
                    total += value
                    kinds.add(kind)
            peak = max(peak, total)
            time.sleep(0.05)
    except psutil.Error:
        pass
    out["peak_memory_mb"] = round(peak / 2**20, 1)
    out["memory_measure"] = "+".join(sorted(kinds))  # "pss" unless a process had no smaps_rollup


def measure(root: Path, n_jobs: int, cores: int) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_build, args=(str(root), n_jobs, cores, queue))
    proc.start()
    stop, mem = threading.Event(), {}
    watcher = threading.Thread(target=_peak_memory, args=(proc.pid, stop, mem))
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


def _load() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def scaling(sizes: dict[str, dict]) -> list[dict]:
    """Each step between consecutive sizes: how wall time, CPU time and memory grew against the
    number of runs (linear cost: time ratios equal the size ratio, per-run ratios near 1)."""
    steps = []
    ordered = sorted(sizes, key=int)
    for lo_key, hi_key in itertools.pairwise(ordered):
        lo, hi = sizes[lo_key], sizes[hi_key]
        size_ratio = int(hi_key) / int(lo_key)
        wall = hi["total_sec"] / max(lo["total_sec"], 1e-9)
        cpu = hi["cpu_sec"] / max(lo["cpu_sec"], 1e-9)
        steps.append(
            {
                "from": int(lo_key),
                "to": int(hi_key),
                "size_ratio": size_ratio,
                "time_ratio": round(wall, 2),
                "cpu_ratio": round(cpu, 2),
                "per_run_time_ratio": round(wall / size_ratio, 2),
                "per_run_cpu_ratio": round(cpu / size_ratio, 2),
                "memory_ratio": round(hi["peak_memory_mb"] / max(lo["peak_memory_mb"], 1e-9), 2),
            }
        )
    return steps


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
            load_before = _load()
            res = {**gen, **measure(root, args.n_jobs, args.cores)}
            res["load_avg_before"], res["load_avg_after"] = load_before, _load()
            res["ms_per_run"] = round(1000 * res["build_sec"] / max(n, 1), 2)
            res["cpu_ms_per_run"] = round(1000 * res["cpu_sec"] / max(n, 1), 2)
            results["sizes"][str(n)] = res
            print(
                f"[{n} runs] build {res['build_sec']} s (+{res['load_normalize_sec']} s load), "
                f"CPU {res['cpu_sec']} s, peak {res['peak_memory_mb']} MB, load {res['load_avg_after']}",
                file=sys.stderr,
                flush=True,
            )
            if not (args.keep or args.reuse):
                shutil.rmtree(root, ignore_errors=True)
    finally:
        if not (args.keep or args.reuse) and args.workdir is None:
            shutil.rmtree(base, ignore_errors=True)
    steps = scaling(results["sizes"])
    if steps:  # smallest -> largest size, then each step
        ordered = sorted(results["sizes"], key=int)
        results["scaling"] = scaling({k: results["sizes"][k] for k in (ordered[0], ordered[-1])})[0]
        results["scaling_steps"] = steps
    results["targets"] = {}
    for size, limit in (("10000", 60), ("100000", 360)):
        res = results["sizes"].get(size)
        if res:
            results["targets"][f"{int(size) // 1000}k_total_sec<={limit}"] = res["total_sec"] <= limit
            results["targets"][f"{int(size) // 1000}k_peak_memory_mb<=4096"] = res["peak_memory_mb"] <= 4096
    results["machine"] = {
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "platform": sys.platform,
        "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "load_avg_1_5_15m": _load(),
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
