"""Queue execution (SPEC 11): the Celery app, the `process_video` task, its retry policy, the
worker launcher and its health server. Settings come from `TRENDFLOW_*` variables
(`trendflow.worker.config`); docs/queue.md describes a deployment."""
