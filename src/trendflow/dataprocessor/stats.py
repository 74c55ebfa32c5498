"""Scheduler feedback: resource figures per component across the runs of a result store.

`trendflow stats --store DIR [--json]`. Runs are enumerated through Level 1 state and each run's
components are read through its Level 2/3 managers (checkpoint + journal replay, read-only),
so a crashed run's finished components count too. Timing figures use only components that
actually ran (`attempts > 0`): a component that was never started because a dependency failed
has no timing, only a status and an error code.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from datetime import datetime

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from rich.table import Table

from trendflow.contracts.errors import TrendFlowError
from trendflow.contracts.identity import utc_now
from trendflow.dataprocessor.state.global_state import GlobalStateManager
from trendflow.dataprocessor.state.managers import RunStateManager
from trendflow.dataprocessor.state.models import DONE_STATUSES, ComponentState, RunEntry
from trendflow.storage.layout import RunLayout
from trendflow.storage.store import ResultStore

logger = logging.getLogger(__name__)


class ComponentStats(BaseModel):
    model_config = ConfigDict(extra="forbid")

    component: str
    processor: str
    count: int = Field(description="Finished executions (any status) across runs.")
    measured: int = Field(description="Executions with resource figures (the component actually ran).")
    statuses: dict[str, int]
    error_codes: dict[str, int]
    wall_sec_p50: float | None = None
    wall_sec_p95: float | None = None
    cpu_sec_p50: float | None = None
    cpu_sec_p95: float | None = None
    peak_rss_mb_p95: float | None = None
    peak_rss_mb_max: float | None = None
    units_p50: float | None = None
    wall_ms_per_unit_p50: float | None = None
    batch_size_p50: float | None = None
    batch_size_max: int | None = None
    oom_events: int = 0
    oom_rss_mb_max: float | None = None
    batch_halvings: int = Field(0, description="Out-of-memory retries with half the batch (all runs).")


class StatsReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    store: str
    generated_at: datetime
    profile: str | None = None
    runs: int
    runs_by_status: dict[str, int]
    run_errors: dict[str, int] = Field(
        default_factory=dict, description="Failed runs by `error_code[:reason]` (Level 1)."
    )
    runs_rejected: int = Field(0, description="Runs rejected before they started (e.g. a failed download).")
    runs_unreadable: int = 0
    components: list[ComponentStats]


def _pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 4) if values else None


def summarize_component(name: str, processor: str, states: list[ComponentState]) -> ComponentStats:
    ran = [s for s in states if s.attempts > 0 and s.duration_sec is not None]
    walls = [s.duration_sec for s in ran if s.duration_sec is not None]
    cpus = [s.cpu_time_sec for s in ran if s.cpu_time_sec is not None]
    rss = [s.peak_rss_mb for s in ran if s.peak_rss_mb is not None]
    units = [float(s.units_processed) for s in ran if s.units_processed]
    per_unit = [
        1000 * s.duration_sec / s.units_processed for s in ran if s.units_processed and s.duration_sec
    ]
    batches = [b for s in ran for b in s.batch_sizes]
    ooms = [
        s
        for s in states
        if s.oom_rss_mb is not None
        or s.oom_retries
        or s.error_code in ("out_of_memory", "insufficient_gpu_memory")
    ]
    oom_rss = [s.oom_rss_mb for s in ooms if s.oom_rss_mb is not None]
    return ComponentStats(
        component=name,
        processor=processor,
        count=len(states),
        measured=len(ran),
        statuses=dict(sorted(Counter(s.status for s in states).items())),
        error_codes=dict(sorted(Counter(str(s.error_code) for s in states if s.error_code).items())),
        wall_sec_p50=_pct(walls, 50),
        wall_sec_p95=_pct(walls, 95),
        cpu_sec_p50=_pct(cpus, 50),
        cpu_sec_p95=_pct(cpus, 95),
        peak_rss_mb_p95=_pct(rss, 95),
        peak_rss_mb_max=max(rss) if rss else None,
        units_p50=_pct(units, 50),
        wall_ms_per_unit_p50=_pct(per_unit, 50),
        batch_size_p50=_pct([float(b) for b in batches], 50),
        batch_size_max=max(batches) if batches else None,
        oom_events=len(ooms),
        oom_rss_mb_max=max(oom_rss) if oom_rss else None,
        batch_halvings=sum(s.oom_retries for s in states),
    )


def collect_stats(store: ResultStore, profile: str | None = None) -> StatsReport:
    index = GlobalStateManager(store).read()
    states: dict[tuple[str, str], list[ComponentState]] = defaultdict(list)
    order: dict[tuple[str, str], int] = {}
    runs = [e for e in index.runs.values() if profile is None or e.profile == profile]
    unreadable = 0
    for entry in runs:
        if entry.attempt == 0:  # rejected before it started: Level 1 only, no component ran
            continue
        layout = RunLayout(entry.platform_id, entry.video_id, entry.run_id)
        try:
            manager, _ = RunStateManager.recover(store, layout)
        except TrendFlowError as exc:
            logger.warning("skipping run %s: %s", layout.run_dir, exc.message)
            unreadable += 1
            continue
        for processor, level3 in manager.processors.items():
            for name in level3.state.components:
                component = level3.component(name)
                if component.status in DONE_STATUSES:
                    states[(processor, name)].append(component)
                    order.setdefault((processor, name), len(order))  # first seen = execution order
    components = [
        summarize_component(name, processor, states[(processor, name)])
        for processor, name in sorted(states, key=lambda k: order[k])
    ]
    return StatsReport(
        store=store.root_uri,
        generated_at=utc_now(),
        profile=profile,
        runs=len(runs),
        runs_by_status=dict(sorted(Counter(e.status for e in runs).items())),
        run_errors=dict(sorted(Counter(_error_label(e) for e in runs if e.status == "error").items())),
        runs_rejected=sum(e.attempt == 0 for e in runs),
        runs_unreadable=unreadable,
        components=components,
    )


def _error_label(entry: RunEntry) -> str:
    code = str(entry.error_code) if entry.error_code else "unknown"
    return f"{code}:{entry.error_reason}" if entry.error_reason else code


def _fmt(value: float | int | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def render_table(report: StatsReport) -> Table:
    by_status = ", ".join(f"{k} {v}" for k, v in report.runs_by_status.items()) or "none"
    title = f"{report.store}: {report.runs} runs ({by_status})"
    if report.run_errors:
        title += "; errors: " + ", ".join(f"{k} {v}" for k, v in report.run_errors.items())
    table = Table(title=title, title_justify="left")
    for column in (
        "component",
        "processor",
        "count",
        "wall p50 s",
        "wall p95 s",
        "cpu p50 s",
        "peak RSS MB",
        "ms/unit p50",
        "batch p50/max",
        "errors",
        "OOM",
    ):
        table.add_column(
            column, justify="left" if column in ("component", "processor", "errors") else "right"
        )
    for c in report.components:
        errors = ", ".join(f"{code} {n}" for code, n in c.error_codes.items()) or "-"
        oom = f"{c.oom_events} ({_fmt(c.oom_rss_mb_max, 0)} MB)" if c.oom_events else "0"
        if c.batch_halvings:
            oom += f", {c.batch_halvings} halved"
        table.add_row(
            c.component,
            c.processor,
            str(c.count),
            _fmt(c.wall_sec_p50),
            _fmt(c.wall_sec_p95),
            _fmt(c.cpu_sec_p50),
            _fmt(c.peak_rss_mb_max, 0),
            _fmt(c.wall_ms_per_unit_p50, 1),
            f"{_fmt(c.batch_size_p50, 0)}/{_fmt(c.batch_size_max)}",
            errors,
            oom,
        )
    return table
