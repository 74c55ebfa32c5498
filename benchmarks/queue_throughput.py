"""Queue execution benchmark: throughput with 1 and 2 workers, and the per-job cost of the queue.

    .venv/bin/python benchmarks/queue_throughput.py --videos 12 [--redis-url redis://127.0.0.1:6379/0]

Starts its own redis-server (unless --redis-url) and real worker processes (`trendflow worker`,
prefork, concurrency 1, profile `signals`). Two kinds of job, both real `process_video` runs:
- `cpu`: tiny local files (6 s, 160x120): decode + signal features, CPU-bound;
- `io`: the same files fetched by URL from an HTTP server on loopback limited to --kbps per
  connection (a slow origin, as YouTube/CDN downloads are): the job mostly waits on the network.

Measured (each phase on a fresh result store, so nothing is a cache hit; one warm-up job per
worker first, because the first job of a fresh process pays imports and JIT compilation):
- in-process reference: `execute_job` in this process, one job after another;
- dispatch overhead: one job at a time through the queue with 1 worker; overhead = round trip
  (submit -> result seen) minus the job's own processing time, split into queue wait
  (submit -> worker starts the job) and ack/result (job done -> dispatcher sees the result);
- throughput: all jobs submitted at once, jobs per minute, with 1 and with 2 workers.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# This file is named like the stdlib `queue` module; run as a script, its folder comes first on
# sys.path and would shadow it (redis and Celery import `queue`). Drop that entry first.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import psutil  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from trendflow.batch.dispatcher import Dispatcher, TrackedJob  # noqa: E402
from trendflow.batch.jobs import plan_jobs  # noqa: E402
from trendflow.batch.video_list import VideoEntry  # noqa: E402
from trendflow.contracts.identity import utc_now  # noqa: E402
from trendflow.testing.media import make_video  # noqa: E402
from trendflow.worker.config import WorkerSettings  # noqa: E402
from trendflow.worker.execution import execute_job  # noqa: E402
from trendflow.worker.payload import JobPayload  # noqa: E402
from trendflow.worker.processes import WorkerProcess, free_port  # noqa: E402


# -- inputs ------------------------------------------------------------------------------------
def make_videos(folder: Path, count: int) -> list[Path]:
    """Distinct tiny clips (different sizes/lengths, so distinct content hashes)."""
    folder.mkdir(parents=True, exist_ok=True)
    return [
        make_video(folder / f"v{i:03d}.mp4", duration=6.0 + 0.1 * i, width=160 + 2 * (i % 8), height=120)
        for i in range(count + 2)  # + warm-up clips
    ]


class ThrottledFiles(BaseHTTPRequestHandler):
    """Serves a folder at `rate` bytes/s per connection (class attributes set by `serve`)."""

    folder: Path
    rate: float

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        path = self.folder / Path(self.path.split("?", 1)[0]).name
        if not path.is_file():
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        data = path.read_bytes()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not body:
            return
        chunk = 16 * 1024
        try:
            for start in range(0, len(data), chunk):
                self.wfile.write(data[start : start + chunk])
                time.sleep(chunk / self.rate)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading (a probe request); nothing to serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(folder: Path, kbps: float) -> tuple[ThreadingHTTPServer, str]:
    handler = type("Handler", (ThrottledFiles,), {"folder": folder, "rate": kbps * 1024})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def payloads(videos: list[Path], base_url: str | None) -> list[JobPayload]:
    entries = [
        VideoEntry(source=f"{base_url}/{p.name}", platform_id="web", video_id=p.stem) if base_url
        else VideoEntry(source=str(p))
        for p in videos
    ]  # fmt: skip
    planned = plan_jobs(entries, "signals")
    return [j.payload for j in planned if j.payload is not None]


def fresh(payload: JobPayload, force: bool = False) -> JobPayload:
    """The same job under a new run id; `force` recomputes even when the store has a run of it."""
    run_id = f"{payload.run_id[:17]}-{uuid.uuid4().hex[:8]}"
    return payload.model_copy(update={"run_id": run_id, "submitted_at": None, "force": force})


# -- phases ------------------------------------------------------------------------------------
def in_process(settings: WorkerSettings, jobs: list[JobPayload], warmup: JobPayload) -> dict[str, Any]:
    execute_job(warmup, settings)
    durations = []
    started = time.perf_counter()
    for job in jobs:
        result = execute_job(job, settings)
        assert result.status == "success" and not result.cache_hit, result
        durations.append(result.duration_sec)
    wall = time.perf_counter() - started
    return {"jobs": len(jobs), "wall_sec": round(wall, 3), "jobs_per_min": round(len(jobs) / wall * 60, 2),
            "median_job_sec": round(statistics.median(durations), 4)}  # fmt: skip


class RssSampler(threading.Thread):
    """Peak summed RSS of the worker process trees (main + pool children + health companion)."""

    def __init__(self, workers: list[WorkerProcess]) -> None:
        super().__init__(daemon=True)
        self.workers, self.peak_mb, self._halt = workers, 0.0, threading.Event()

    def run(self) -> None:
        while not self._halt.wait(0.2):
            total = 0
            for worker in self.workers:
                try:
                    root = psutil.Process(worker.proc.pid)
                    total += sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
                except psutil.Error:
                    pass
            self.peak_mb = max(self.peak_mb, total / 2**20)

    def stop(self) -> float:
        self._halt.set()
        self.join()
        return round(self.peak_mb, 1)


def with_workers(settings: WorkerSettings, count: int, logs: Path, body) -> tuple[Any, float]:  # type: ignore[no-untyped-def]
    workers = [
        WorkerProcess(settings, name=f"bench{i}-{uuid.uuid4().hex[:4]}", log_dir=logs) for i in range(count)
    ]
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.wait_ready(timeout_s=120)
        sampler = RssSampler(workers)
        sampler.start()
        try:
            return body(), sampler.stop()
        except BaseException:
            sampler.stop()
            raise
    finally:
        for worker in workers:
            worker.stop(timeout_s=30)


def warm(dispatcher: Dispatcher, warmups: list[JobPayload]) -> None:
    jobs = [TrackedJob(payload=fresh(p)) for p in warmups]
    for job in jobs:
        dispatcher.submit(job)
    dispatcher.follow(jobs, poll_s=0.05, timeout_s=600)


def overhead(dispatcher: Dispatcher, jobs: list[JobPayload]) -> dict[str, Any]:
    rows = []
    for payload in jobs:
        job = TrackedJob(payload=fresh(payload, force=True))  # real processing, not a cache hit
        submitted = utc_now()
        job.payload = job.payload.model_copy(update={"submitted_at": submitted})
        dispatcher.submit(job)
        dispatcher.follow([job], poll_s=0.002, timeout_s=600)
        result = job.result
        assert result.status == "success", result
        seen = job.observed_at
        round_trip = (seen - submitted).total_seconds()
        rows.append({
            "round_trip_sec": round_trip,
            "processing_sec": result.duration_sec,
            "overhead_sec": round_trip - result.duration_sec,
            "queue_wait_sec": (result.started_at - submitted).total_seconds(),
            "ack_sec": (seen - result.finished_at).total_seconds(),
        })  # fmt: skip

    def med(key: str) -> float:
        return round(statistics.median(r[key] for r in rows) * 1000, 2)

    overheads = sorted(r["overhead_sec"] for r in rows)
    return {
        "jobs": len(rows),
        "median_overhead_ms": med("overhead_sec"),
        "p90_overhead_ms": round(overheads[int(0.9 * (len(overheads) - 1))] * 1000, 2),
        "median_queue_wait_ms": med("queue_wait_sec"),
        "median_ack_ms": med("ack_sec"),
        "median_processing_ms": med("processing_sec"),
    }


def throughput(dispatcher: Dispatcher, jobs: list[JobPayload]) -> dict[str, Any]:
    tracked = [TrackedJob(payload=fresh(p)) for p in jobs]
    started = time.perf_counter()
    for job in tracked:
        dispatcher.submit(job)
    dispatcher.follow(tracked, poll_s=0.02, timeout_s=1800)
    wall = time.perf_counter() - started
    failed = [j.result for j in tracked if j.result.status != "success" or j.result.cache_hit]
    assert not failed, failed
    return {
        "jobs": len(tracked),
        "median_job_sec": round(statistics.median(j.result.duration_sec for j in tracked), 4),
        "wall_sec": round(wall, 3),
        "jobs_per_min": round(len(tracked) / wall * 60, 2),
        "workers_used": len({j.result.worker for j in tracked}),
    }


def phase_settings(base: WorkerSettings, work: Path, name: str) -> WorkerSettings:
    return base.model_copy(
        update={"store_root": str(work / f"store-{name}"), "queue": f"bench-{name}-{uuid.uuid4().hex[:6]}"}
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--videos", type=int, default=12, help="jobs per phase")
    parser.add_argument("--kbps", type=float, default=64.0, help="download rate of the io jobs (KiB/s)")
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
    work = Path(tempfile.mkdtemp(prefix="trendflow-bench-queue-"))
    redis_proc = None
    redis_url = args.redis_url
    if redis_url is None:
        port = free_port()
        redis_proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--maxmemory-policy", "noeviction"], stdout=subprocess.DEVNULL,
        )  # fmt: skip
        redis_url = f"redis://127.0.0.1:{port}/0"
        time.sleep(0.5)
    base = WorkerSettings(redis_url=redis_url, scratch_root=str(work / "scratch"), profiles=("signals",),
                          health_port=0, job_time_limit_s=600)  # fmt: skip
    try:
        clips = make_videos(work / "videos", args.videos)
        warm_clips, bench_clips = clips[:2], clips[2:]
        http, base_url = serve(work / "videos", args.kbps)
        report: dict[str, Any] = {
            "benchmark": "queue",
            "videos": args.videos,
            "video": "6-7 s, 160x120-174x120, 25 fps, H.264 + AAC (generated)",
            "profile": "signals",
            "cpu_count": os.cpu_count(),
            "io_download_kib_per_s": args.kbps,
            "video_bytes_median": int(statistics.median(p.stat().st_size for p in bench_clips)),
        }
        for kind, url in (("cpu", None), ("io", base_url)):
            jobs, warmups = payloads(bench_clips, url), payloads(warm_clips, url)
            ref_settings = phase_settings(base, work, f"{kind}-inproc")
            report[f"{kind}_in_process"] = in_process(
                ref_settings, [fresh(j) for j in jobs], fresh(warmups[0])
            )
            for count in (1, 2):
                settings = phase_settings(base, work, f"{kind}-{count}w")
                dispatcher = Dispatcher(settings)

                def body(
                    dispatcher: Dispatcher = dispatcher,
                    count: int = count,
                    jobs: list[JobPayload] = jobs,
                    warmups: list[JobPayload] = warmups,
                ) -> dict[str, Any]:
                    warm(dispatcher, warmups[:count])
                    out: dict[str, Any] = {"throughput": throughput(dispatcher, jobs)}
                    if count == 1:
                        out["overhead"] = overhead(dispatcher, jobs)
                    return out

                result, peak = with_workers(settings, count, work / "logs", body)
                result["workers_peak_rss_mb"] = peak
                report[f"{kind}_queue_{count}_worker{'s' if count > 1 else ''}"] = result
        http.shutdown()
        for kind in ("cpu", "io"):
            one = report[f"{kind}_queue_1_worker"]["throughput"]["jobs_per_min"]
            two = report[f"{kind}_queue_2_workers"]["throughput"]["jobs_per_min"]
            report[f"{kind}_speedup_2_vs_1_workers"] = round(two / one, 3)
            report[f"{kind}_queue_vs_in_process_1_worker"] = round(
                one / report[f"{kind}_in_process"]["jobs_per_min"], 3
            )
        report["median_dispatch_overhead_ms"] = report["cpu_queue_1_worker"]["overhead"]["median_overhead_ms"]
        report["benchmark_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        print(json.dumps(report))
    finally:
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(timeout=10)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
