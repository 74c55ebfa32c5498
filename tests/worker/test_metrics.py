"""Worker metrics: a real worker (prefork pool of 2) over a real Redis, scraped over HTTP.

The jobs run in pool processes and `/metrics` is served by the health companion: what the
scrape shows crossed process boundaries through prometheus_client's multiprocess folder.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from trendflow.batch.dispatcher import Dispatcher, TrackedJob
from trendflow.batch.jobs import plan_jobs
from trendflow.batch.video_list import VideoEntry
from trendflow.contracts.errors import MAX_RETRIES, ErrorCode
from trendflow.dataprocessor.graph import ComponentGraph
from trendflow.worker.config import WorkerSettings
from trendflow.worker.metrics import default_multiprocess_dir
from trendflow.worker.processes import WorkerProcess, free_port


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    """Sum of the samples named `name` whose labels include `labels`."""
    return sum(
        v for (n, lbls), v in samples.items() if n == name and set(labels.items()) <= set(dict(lbls).items())
    )


def run_jobs(settings: WorkerSettings, paths: list[Path], profile: str) -> list[TrackedJob]:
    dispatcher = Dispatcher(settings)
    jobs = [
        TrackedJob(payload=p.payload) for p in plan_jobs([VideoEntry(source=str(x)) for x in paths], profile)
    ]
    for job in jobs:
        dispatcher.submit(job)
    return dispatcher.follow(jobs, poll_s=0.1, timeout_s=240, no_worker_timeout_s=60)


def test_worker_metrics_count_jobs_components_and_queue_wait_across_pool_processes(
    queue_settings: WorkerSettings, worker_factory, tiny_videos: dict[str, Path]
) -> None:
    worker: WorkerProcess = worker_factory(queue_settings, concurrency=2)
    before = scrape(worker.health_port)
    assert value(before, "trendflow_jobs_total") == 0
    assert value(before, "trendflow_queue_length", queue=queue_settings.queue) == 0

    done = run_jobs(
        queue_settings, [tiny_videos["valid_a"], tiny_videos["valid_b"], tiny_videos["broken"]], "signals"
    )
    assert [j.result.status for j in done] == ["success", "success", "error"]
    samples = scrape(worker.health_port)

    assert value(samples, "trendflow_jobs_total", status="success", error_code="none", profile="signals") == 2
    assert value(samples, "trendflow_jobs_total", status="error", error_code="invalid_media") == 1
    assert value(samples, "trendflow_job_duration_seconds_count") == 3
    assert value(samples, "trendflow_job_duration_seconds_sum", status="success") > 0
    assert value(samples, "trendflow_queue_wait_seconds_count", profile="signals") == 3
    # Every component of the profile ran twice (two computed runs); the failed run has none
    # past the segmenter.
    profile = ComponentGraph.load().profile("signals")
    timed = {
        dict(lbls)["component"] for (n, lbls), _ in samples.items() if n.startswith("trendflow_component")
    }
    assert set(profile.order) <= timed
    for name in profile.order:
        assert value(samples, "trendflow_component_duration_seconds_count", component=name) >= 2
    assert value(samples, "trendflow_job_retries_total") == 0
    assert value(samples, "trendflow_oom_events_total") == 0
    # The values came from the pool's processes, not from the companion or the main process.
    files = list(default_multiprocess_dir(worker.hostname).glob("*.db"))
    assert files and all(f.stem.split("_")[-1].isdigit() for f in files)


def test_retries_are_counted_per_error_code(
    queue_settings: WorkerSettings, worker_factory, tiny_videos: dict[str, Path]
) -> None:
    settings = queue_settings.model_copy(
        update={"profiles": ("baseline",), "triton_url": f"127.0.0.1:{free_port()}"}
    )
    worker = worker_factory(settings)
    [job] = run_jobs(settings, [tiny_videos["valid_b"]], "baseline")
    assert job.result.error_code is ErrorCode.TRITON_UNAVAILABLE
    samples = scrape(worker.health_port)
    budget = MAX_RETRIES[ErrorCode.TRITON_UNAVAILABLE]
    assert value(samples, "trendflow_job_retries_total", error_code="triton_unavailable") == budget
    # Retried attempts are not jobs: one job, one final outcome; every attempt has a duration.
    assert value(samples, "trendflow_jobs_total") == 1
    assert value(samples, "trendflow_jobs_total", error_code="triton_unavailable", profile="baseline") == 1
    assert value(samples, "trendflow_job_duration_seconds_count", status="error") == budget + 1


def test_out_of_memory_is_counted_by_component_and_forked_processes_add_up(tmp_path: Path) -> None:
    """Multiprocess mode without Celery: forked children record, a fresh process renders the sum."""
    script = textwrap.dedent(
        f"""
        import multiprocessing, os
        from trendflow.worker import metrics
        metrics.prepare_multiprocess_dir({str(tmp_path / "prom")!r})
        from trendflow.contracts.manifest import ComponentRecord
        from trendflow.worker.payload import JobResult

        def child(i):
            result = JobResult(requested_run_id=f"r{{i}}", status="error", error_code="out_of_memory",
                               profile="baseline", duration_sec=1.5, queue_wait_sec=0.5)
            metrics.record_attempt(result, None)
            metrics.record_final(result)

        procs = [multiprocessing.get_context("fork").Process(target=child, args=(i,)) for i in range(3)]
        [p.start() for p in procs]
        [p.join() for p in procs]
        assert all(p.exitcode == 0 for p in procs)
        print(metrics.render().decode())
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(out.stdout)
        for s in family.samples
    }
    assert value(samples, "trendflow_oom_events_total", component="job") == 3
    assert value(samples, "trendflow_jobs_total", status="error", error_code="out_of_memory") == 3
    assert value(samples, "trendflow_job_duration_seconds_sum") == 4.5
    assert len(list((tmp_path / "prom").glob("*.db"))) >= 3  # one file per process and kind
