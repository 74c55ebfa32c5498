"""Smoke test inside the trendflow image (deploy/podman/smoke.Containerfile runs it as the image's user).

Starts the bundled Triton and a worker from the image, sends one `baseline` job through Redis (the
host's, SMOKE_REDIS_URL), prints /health, /health/live, the job, a few /metrics lines and whether
`kedro registry list` is quiet. Exit status 0 when the job succeeded and Kedro printed nothing on stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

TRITON_PORTS = ["--http-port=18000", "--grpc-port=18001", "--metrics-port=18002"]
SHOWN = ("trendflow_jobs_total", "trendflow_job_duration_seconds_count", "trendflow_queue_length")


def get(url: str, timeout: float = 15) -> tuple[int | None, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return None, str(exc)


def wait_for(url: str, timeout_s: float) -> tuple[int | None, str, float]:
    start = time.time()
    code, body = None, ""
    while time.time() - start < timeout_s:
        code, body = get(url, 5)
        if code == 200:
            break
        time.sleep(1)
    return code, body, time.time() - start


def main() -> int:
    print("uid", os.getuid(), "cwd", os.getcwd(), "python", sys.version.split()[0], flush=True)
    env = {
        **os.environ,
        "TRENDFLOW_REDIS_URL": os.environ["SMOKE_REDIS_URL"],
        "TRENDFLOW_STORE": "/tmp/store",
        "TRENDFLOW_QUEUE": f"smoke-{uuid.uuid4().hex[:6]}",
        "TRENDFLOW_TRITON_URL": "127.0.0.1:18001",
        "TRENDFLOW_HEALTH_PORT": "18765",
        "TRENDFLOW_WORKER_PROFILES": "baseline",
    }
    with open("/tmp/triton.log", "w") as tlog, open("/tmp/worker.log", "w") as wlog:
        triton = subprocess.Popen(
            ["trendflow", "serve-models", "--host=0.0.0.0", *TRITON_PORTS], stdout=tlog, stderr=tlog
        )
        code, _, took = wait_for("http://127.0.0.1:18000/v2/health/ready", 120)
        print("triton ready", code, f"{took:.1f}s", flush=True)
        if code != 200:
            for log in Path("/tmp").rglob("tritonserver.log"):
                print("SERVER LOG", log, log.read_text()[-4000:], flush=True)
            triton.terminate()
            return 1
        worker = subprocess.Popen(
            ["trendflow", "worker", "--concurrency=2"], env=env, stdout=wlog, stderr=wlog
        )
        code, body, took = wait_for("http://127.0.0.1:18765/health", 120)
        print("worker /health", code, f"{took:.1f}s", body[:300], flush=True)
        print("worker /health/live", get("http://127.0.0.1:18765/health/live"), flush=True)
        status = run_one_job(env)
        code, text = get("http://127.0.0.1:18765/metrics")
        print("metrics", code, *[line for line in text.splitlines() if line.startswith(SHOWN)], sep="\n  ")
        worker.terminate()
        worker.wait(60)
        triton.terminate()
        triton.wait(60)
    out = subprocess.run(["kedro", "registry", "list"], capture_output=True, text=True, cwd="/app")
    print("kedro registry list:", out.returncode, out.stdout.split(), "stderr:", repr(out.stderr[-300:]))
    ok = status == "success" and out.returncode == 0 and not out.stderr.strip()
    print("SMOKE", "OK" if ok else "FAILED", flush=True)
    return 0 if ok else 1


def run_one_job(env: dict[str, str]) -> str:
    os.environ.update(env)
    from trendflow.batch.dispatcher import Dispatcher, TrackedJob
    from trendflow.batch.jobs import plan_jobs
    from trendflow.batch.video_list import VideoEntry
    from trendflow.testing.media import make_video
    from trendflow.worker.config import WorkerSettings

    video = make_video(Path("/tmp/smoke.mp4"), duration=6.0, width=160, height=120)
    dispatcher = Dispatcher(WorkerSettings.from_env())
    jobs = [TrackedJob(payload=p.payload) for p in plan_jobs([VideoEntry(source=str(video))], "baseline")]
    for job in jobs:
        dispatcher.submit(job)
    start = time.time()
    [done] = dispatcher.follow(jobs, poll_s=0.5, timeout_s=600, no_worker_timeout_s=120)
    result = done.result
    print(
        "job",
        result.status,
        result.error_code,
        f"{time.time() - start:.1f}s",
        result.duration_sec,
        flush=True,
    )
    return result.status


if __name__ == "__main__":
    sys.exit(main())
