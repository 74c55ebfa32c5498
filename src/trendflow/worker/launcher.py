"""`trendflow worker`: one Celery worker process plus its health and metrics server.

The health server runs in a spawned companion process that watches the worker's pid (a thread
in the worker would be forked into the pool's job processes); it also serves `/metrics`, which it
reads from the folder every process of this worker writes to (trendflow.worker.metrics).
Scratch left behind by a killed predecessor is removed before the worker takes its first job.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Sequence

from trendflow.events import log_event
from trendflow.worker.celery_app import make_celery
from trendflow.worker.config import WorkerSettings
from trendflow.worker.execution import clean_stale_scratch
from trendflow.worker.health import serve_health
from trendflow.worker.metrics import (
    MULTIPROC_ENV,
    default_multiprocess_dir,
    prepare_multiprocess_dir,
    remove_multiprocess_dir,
)

logger = logging.getLogger(__name__)


def worker_argv(
    settings: WorkerSettings,
    concurrency: int,
    queues: Sequence[str] | None,
    hostname: str | None,
    loglevel: str,
    pool: str,
) -> list[str]:
    return [
        "worker",
        f"--concurrency={concurrency}",
        f"--queues={','.join(queues or [settings.queue])}",
        f"--hostname={hostname or f'trendflow-{os.getpid()}@%h'}",
        f"--loglevel={loglevel}",
        f"--pool={pool}",
        # No gossip/mingle: workers share nothing but the queue, and start a second sooner.
        "--without-gossip",
        "--without-mingle",
        # Heartbeats stay on: with task events they tell Flower which workers are online.
    ]


def node_name(hostname: str | None) -> str:
    """The Celery node name, with `%h` expanded (the health server pings this exact name)."""
    from celery.utils.nodenames import default_nodename, host_format

    return host_format(default_nodename(hostname or f"trendflow-{os.getpid()}@%h"))


def start_health_process(settings: WorkerSettings, nodename: str) -> multiprocessing.process.BaseProcess:
    """The health server in a spawned companion process (see trendflow.worker.health)."""
    context = multiprocessing.get_context("spawn")
    process = context.Process(
        target=serve_health, args=(settings, nodename, os.getpid()), name="trendflow-health", daemon=True
    )
    process.start()
    return process


def run_worker(
    settings: WorkerSettings,
    concurrency: int = 1,
    queues: Sequence[str] | None = None,
    hostname: str | None = None,
    loglevel: str = "INFO",
    pool: str = "prefork",
) -> None:
    """Start the health companion, then run the Celery worker in this process until it stops."""
    os.makedirs(settings.scratch_root, exist_ok=True)
    removed = clean_stale_scratch(settings.scratch_root, settings.job_time_limit_s)
    if removed:
        log_event(logger, "stale_scratch_removed", count=len(removed), scratch=settings.scratch_root)

    # Before the pool forks and the companion spawns: both record/read metrics in this folder.
    nodename = node_name(hostname)
    own_metrics_dir = MULTIPROC_ENV not in os.environ  # one we pick is ours to remove at exit
    metrics_dir = prepare_multiprocess_dir(
        os.environ.get(MULTIPROC_ENV) or default_multiprocess_dir(nodename)
    )
    health = start_health_process(settings, nodename)
    log_event(
        logger, "health_server_started", host=settings.health_host, port=settings.health_port, node=nodename
    )
    app = make_celery(settings)
    try:
        app.worker_main(argv=worker_argv(settings, concurrency, queues, nodename, loglevel, pool))
    finally:
        health.terminate()
        health.join(timeout=5)
        if own_metrics_dir:
            remove_multiprocess_dir(metrics_dir)
