"""Prometheus metrics of a worker: jobs, durations, retries, out-of-memory events, queue wait.

Design (prefork pool): jobs run in pool processes forked from the worker's main process, and the
HTTP endpoint lives in the health companion (a spawned process, see trendflow.worker.health). No
single process sees every job, so the worker runs prometheus_client in *multiprocess mode*: the
launcher points `PROMETHEUS_MULTIPROC_DIR` at an empty folder before any metric exists, every
process that records a value writes it to its own memory-mapped file there (`counter_<pid>.db`,
...), and the companion's `GET /metrics` sums those files (`MultiProcessCollector`). Counters and
histograms of pool processes that were replaced (`--max-tasks-per-child`, a killed child) keep
counting: their files stay. A restarted worker empties the folder, which Prometheus sees as a
counter reset (`rate()` and `increase()` handle it).

Without `PROMETHEUS_MULTIPROC_DIR` (the benchmark, `execute_job` called in-process) the same
calls update the process's default registry, so nothing here needs a worker to be importable.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from trendflow.worker.payload import JobResult

logger = logging.getLogger(__name__)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
NAMESPACE = "trendflow"
# Jobs take seconds (a cache hit) to most of an hour (a 20-minute video with every model).
JOB_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, float("inf"))
COMPONENT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, float("inf"))
QUEUE_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 300, 600, 1800, 3600, 4 * 3600, float("inf"))


def default_multiprocess_dir(nodename: str) -> Path:
    """Where a worker keeps its metric files unless PROMETHEUS_MULTIPROC_DIR says otherwise: one
    folder per node name, outside the scratch folder (which is emptied after every job)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", nodename)
    return Path(tempfile.gettempdir()) / "trendflow-metrics" / safe


def prepare_multiprocess_dir(path: str | Path) -> Path:
    """Empty `path` and export it as PROMETHEUS_MULTIPROC_DIR (before any metric is created).

    Called by the worker launcher in its main process, so the pool processes (forked) and the
    health companion (spawned, it inherits the environment) all use the same folder.
    """
    folder = Path(path)
    if folder.is_dir():
        for entry in folder.glob("*.db"):
            entry.unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ[MULTIPROC_ENV] = str(folder)
    # prometheus_client picks its value storage when `values` is imported; a library imported
    # before the launcher ran may have imported it already (single-process storage).
    if values.ValueClass is values.MutexValue:
        values.ValueClass = values.get_value_class()
    return folder


def remove_multiprocess_dir(path: str | Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


@functools.lru_cache(maxsize=1)
def _metrics() -> dict[str, Any]:
    """Created on first use (after `prepare_multiprocess_dir`), once per process."""
    return {
        "jobs": Counter(
            "jobs",
            "Jobs that ended, by final status and error code (retried attempts are in job_retries).",
            ["status", "error_code", "profile"],
            namespace=NAMESPACE,
        ),
        "job_duration": Histogram(
            "job_duration_seconds",
            "Wall time of one job attempt in the worker, from start to result.",
            ["status", "profile"],
            namespace=NAMESPACE,
            buckets=JOB_BUCKETS,
        ),
        "component_duration": Histogram(
            "component_duration_seconds",
            "Wall time of one component of a computed run (cache hits excluded).",
            ["component", "status"],
            namespace=NAMESPACE,
            buckets=COMPONENT_BUCKETS,
        ),
        "queue_wait": Histogram(
            "queue_wait_seconds",
            "Time from submission (payload submitted_at) to the worker starting the job.",
            ["profile"],
            namespace=NAMESPACE,
            buckets=QUEUE_BUCKETS,
        ),
        "retries": Counter(
            "job_retries",
            "Attempts that ended with a transient error and were sent back to the queue.",
            ["error_code"],
            namespace=NAMESPACE,
        ),
        "oom": Counter(
            "oom_events",
            "Out-of-memory events: a job or one of its components ended with out_of_memory.",
            ["component"],
            namespace=NAMESPACE,
        ),
    }


def _code(code: Any) -> str:
    return str(code) if code else "none"


def record_attempt(result: JobResult, manifest: Any | None = None) -> None:
    """One attempt ended: its duration, queue wait, components and out-of-memory events.

    `manifest` is the run's manifest when this attempt computed it (not for a cache hit).
    """
    m = _metrics()
    profile = result.profile or "unknown"
    if result.duration_sec is not None:
        m["job_duration"].labels(result.status, profile).observe(result.duration_sec)
    if result.queue_wait_sec is not None:
        m["queue_wait"].labels(profile).observe(max(0.0, result.queue_wait_sec))
    oom_components = []
    for component in getattr(manifest, "components", None) or []:
        if component.duration_sec is not None:
            m["component_duration"].labels(component.name, component.status).observe(component.duration_sec)
        if _code(component.error_code) == "out_of_memory":
            oom_components.append(component.name)
    for name in oom_components:
        m["oom"].labels(name).inc()
    if _code(result.error_code) == "out_of_memory" and not oom_components:
        m["oom"].labels("job").inc()


def record_retry(error_code: Any) -> None:
    _metrics()["retries"].labels(_code(error_code)).inc()


def record_final(result: JobResult) -> None:
    """The job's final outcome (after its last attempt)."""
    _metrics()["jobs"].labels(result.status, _code(result.error_code), result.profile or "unknown").inc()


class QueueLengthCollector:
    """`trendflow_queue_length`: jobs waiting in the worker's Redis queue, read at scrape time."""

    def __init__(self, redis_url: str, queue: str, timeout_s: float = 2.0) -> None:
        self.redis_url, self.queue, self.timeout_s = redis_url, queue, timeout_s

    def collect(self) -> Iterator[GaugeMetricFamily]:
        import redis

        family = GaugeMetricFamily(
            f"{NAMESPACE}_queue_length", "Jobs waiting in the Redis queue (LLEN).", labels=["queue"]
        )
        client = redis.Redis.from_url(
            self.redis_url, socket_timeout=self.timeout_s, socket_connect_timeout=self.timeout_s
        )
        try:
            family.add_metric([self.queue], float(client.llen(self.queue)))
        except redis.RedisError as exc:  # the scrape still answers; /health says why
            logger.debug("queue length unavailable: %s", exc)
            return
        finally:
            client.close()
        yield family


def render(extra_collectors: tuple[Any, ...] = ()) -> bytes:
    """The exposition text: every process's values (multiprocess mode) plus `extra_collectors`;
    without multiprocess mode, what this process recorded."""
    folder = os.environ.get(MULTIPROC_ENV)
    if not folder or not Path(folder).is_dir():
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=folder)
    for collector in extra_collectors:
        registry.register(collector)
    return generate_latest(registry)
