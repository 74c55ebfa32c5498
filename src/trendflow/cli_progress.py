"""The `trendflow process` console: a progress bar over the profile's real components, then one line.

The bar (stderr, only on a terminal) counts finished components out of the profile's component count
and names the one running; after the run, one summary line goes to stderr whatever the terminal:

    success local/abc123/20260101T000000Z-1a2b: 9/9 components (8 ok, 1 empty) in 12.4 s

stdout keeps its contract: the last line is the run's JSON summary.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

ProgressCallback = Callable[[str, str], None]


def component_count(profile: str) -> int | None:
    """How many components the profile runs (None when the profile is unknown: the run says why)."""
    from trendflow.contracts.errors import TrendFlowError
    from trendflow.dataprocessor.graph import ComponentGraph

    try:
        return len(ComponentGraph.load().profile(profile).order)
    except TrendFlowError:
        return None


@contextmanager
def component_progress(console: Console, total: int | None) -> Iterator[ProgressCallback]:
    """A callback for `process_video(progress=...)` driving a bar of `total` components."""
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("components"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("starting", total=total)
        done: set[str] = set()

        def on_progress(component: str, status: str) -> None:
            if status == "running":
                bar.update(task, description=component)
                return
            done.add(component)
            # A resumed run may finish components the profile count did not foresee: grow the total.
            grown = max(total or 0, len(done)) if total is not None else None
            bar.update(task, completed=len(done), total=grown)

        yield on_progress


def summary_line(outcome: Any) -> str:
    """One line: status, run, component counts by status, duration, cache hit."""
    run = outcome.identity
    where = f"{run.platform_id}/{run.video_id}/{run.run_id}" if run is not None else "no run"
    manifest = outcome.manifest
    parts = [outcome.status, where]
    if manifest is not None and manifest.components:
        counts = Counter(c.status for c in manifest.components)
        finished = sum(n for status, n in counts.items() if status in ("ok", "empty"))
        by_status = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        parts[-1] += f": {finished}/{len(manifest.components)} components ({by_status})"
    if manifest is not None and manifest.duration_sec is not None:
        parts.append(f"in {manifest.duration_sec:.1f} s")
    if outcome.cache_hit:
        parts.append("(cache hit: nothing recomputed)")
    if outcome.error_code:
        parts.append(f"[{outcome.error_code}]")
    return " ".join(parts)
