"""Serving benchmark: the image encoder via Triton vs the same ONNX in-process, and the full profile.

Part 1 (always): for fp32 and int8, at batch 1 / 8 / 32, throughput (frames/s) and p50/p95
latency per request, (a) through Triton over gRPC with `--concurrency` requests in flight (the
dynamic batcher merges them) and (b) onnxruntime in this process with the same threads;
`ratio_triton_vs_inprocess` = Triton throughput / in-process throughput (target >= 0.8 at 32).

Part 2 (`--video FILE`, e.g. the 10-minute 720p film from benchmarks/make_test_video.py): the
whole `--profile` (default baseline: signals + neural) through the orchestrator, wall time, ratio
to an ffmpeg decode of every frame of the same file (target <= 4), and the slowest component.

    .venv/bin/python benchmarks/serving.py [--video /tmp/trendflow_bench/film_10min.mp4]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from trendflow.serving import DEFAULT_REPOSITORY
from trendflow.serving.client import TritonClient
from trendflow.serving.recipes.common import ort_session, sample_frames
from trendflow.serving.triton_server import TritonServer

MODEL = "image_encoder"
VARIANTS = {"fp32": "1", "int8": "2"}


def latency_stats(latencies: list[float], frames: int, wall: float) -> dict[str, float]:
    ms = np.asarray(latencies) * 1000
    return {
        "throughput_fps": round(frames / wall, 2),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "requests": len(latencies),
    }


def bench_inprocess(version: str, batch: np.ndarray, min_seconds: float) -> dict[str, float]:
    session = ort_session(DEFAULT_REPOSITORY / MODEL / version / "weights" / "model.onnx")
    pixels = batch.astype(np.float32)
    session.run(None, {"image": pixels})  # warm-up
    latencies: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < min_seconds or len(latencies) < 5:
        t0 = time.perf_counter()
        session.run(None, {"image": pixels})
        latencies.append(time.perf_counter() - t0)
    return latency_stats(latencies, len(latencies) * len(batch), time.perf_counter() - start)


def bench_triton(
    client: TritonClient, version: str, batch: np.ndarray, min_seconds: float, concurrency: int
) -> dict[str, float]:
    client.infer(MODEL, version, {"image": batch})  # warm-up (and the model config cache)
    latencies: list[float] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + min_seconds

    def worker() -> None:
        # One client per thread, like one worker process per video.
        own = TritonClient(client.url, timeout_s=120)
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            own.infer(MODEL, version, {"image": batch})
            with lock:
                latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latency_stats(latencies, len(latencies) * len(batch), time.perf_counter() - start)


def server_rss_mb(server: TritonServer) -> float:
    assert server._proc is not None
    root = psutil.Process(server._proc.pid)
    procs = [root, *root.children(recursive=True)]
    return round(sum(p.memory_info().rss for p in procs) / 2**20, 1)


def image_encoder_part(batches: list[int], seconds: float, concurrency: int) -> dict[str, Any]:
    frames = sample_frames()
    results: list[dict[str, Any]] = []
    with TritonServer(repository=DEFAULT_REPOSITORY) as server:
        client = TritonClient(server.grpc_url, timeout_s=120)
        for precision, version in VARIANTS.items():
            for size in batches:
                batch = np.resize(frames, (size, *frames.shape[1:]))
                inproc = bench_inprocess(version, batch, seconds)
                triton = bench_triton(client, version, batch, seconds, concurrency)
                results.append(
                    {
                        "precision": precision,
                        "batch": size,
                        "triton": triton,
                        "inprocess": inproc,
                        "ratio_triton_vs_inprocess": round(
                            triton["throughput_fps"] / inproc["throughput_fps"], 3
                        ),
                    }
                )
                print(json.dumps(results[-1]), file=sys.stderr)
        rss = server_rss_mb(server)
    at_32 = [r["ratio_triton_vs_inprocess"] for r in results if r["batch"] == 32]
    return {
        "model": MODEL,
        "concurrency": concurrency,
        "results": results,
        "server_rss_mb": rss,
        "min_ratio_at_batch_32": min(at_32) if at_32 else None,
        "target_ratio_at_batch_32": 0.8,
    }


def ffmpeg_decode_seconds(video: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-threads", "0", "-i", str(video), "-f", "null", "-"],
        check=True,
        timeout=1800,
    )
    return time.perf_counter() - start


def full_profile_part(video: Path, profile: str) -> dict[str, Any]:
    from trendflow.dataprocessor.run import ProcessRequest, Services, process_video
    from trendflow.serving.model_resolution import resolve_profile_models
    from trendflow.storage.store import ResultStore

    decode = ffmpeg_decode_seconds(video)
    with TritonServer(repository=DEFAULT_REPOSITORY) as server, tempfile.TemporaryDirectory() as store:
        request = ProcessRequest(
            source=str(video),
            store=ResultStore(store),
            profile=profile,
            force=True,
            services=Services(triton=TritonClient(server.grpc_url, timeout_s=600)),
            model_resolver=resolve_profile_models,
        )
        start = time.perf_counter()
        outcome = process_video(request)
        wall = time.perf_counter() - start
    components = {}
    if outcome.manifest is not None:
        components = {c.name: c.duration_sec or 0.0 for c in outcome.manifest.components}
    slowest = max(components, key=components.get) if components else None
    return {
        "video": str(video),
        "profile": profile,
        "status": outcome.status,
        "error_code": str(outcome.error_code) if outcome.error_code else None,
        "wall_sec": round(wall, 2),
        "ffmpeg_decode_sec": round(decode, 2),
        "ratio_vs_ffmpeg_decode": round(wall / decode, 2),
        "target_ratio": 4.0,
        "slowest_component": slowest,
        "component_sec": {k: round(v, 2) for k, v in sorted(components.items(), key=lambda kv: -kv[1])},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--seconds", type=float, default=4.0, help="Measuring time per configuration.")
    parser.add_argument("--concurrency", type=int, default=4, help="Triton requests in flight.")
    parser.add_argument("--video", type=Path, help="Also run the full profile on this file.")
    parser.add_argument("--profile", default="baseline")
    parser.add_argument("--skip-image-encoder", action="store_true")
    args = parser.parse_args()
    report: dict[str, Any] = {
        "benchmark": "serving",
        "cpu_count": psutil.cpu_count(),
        "load_avg_1m": os.getloadavg()[0],
    }
    start = time.perf_counter()
    if not args.skip_image_encoder:
        batches = [int(b) for b in args.batches.split(",")]
        report["image_encoder"] = image_encoder_part(batches, args.seconds, args.concurrency)
    if args.video:
        report["full_profile"] = full_profile_part(args.video, args.profile)
    report["time_sec"] = round(time.perf_counter() - start, 2)
    report["peak_rss_mb_client"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
