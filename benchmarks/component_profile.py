"""Measure every component's resources on the sample trailer and write them into docs/components.md.

    .venv/bin/python benchmarks/component_profile.py [--video data/01_raw/samples/trailer_bbb.mp4]
        [--profile signals] [--no-write]

After a warm-up run on a short generated clip (imports, model loading and numba compilation are
one-time costs of a worker process), processes the video through the orchestrator with the
profile's components run one at a time
(`workers: 1`, so each figure belongs to one component: peak RSS is the process peak while that
component ran), reads the figures back through the run state (the same Level 3 sections
`trendflow stats` uses), and replaces the table between `<!-- resources:begin -->` and
`<!-- resources:end -->` in docs/components.md (appended with a heading when the markers are
missing). Prints one JSON object with the same figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from trendflow.dataprocessor.component import component_class
from trendflow.dataprocessor.graph import DEFAULT_GRAPH, ComponentGraph
from trendflow.dataprocessor.run import ProcessRequest, process_video
from trendflow.dataprocessor.state import RunStateManager
from trendflow.storage.layout import RunLayout
from trendflow.storage.store import ResultStore
from trendflow.testing.media import make_video

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "01_raw" / "samples" / "trailer_bbb.mp4"
DOC = REPO / "docs" / "components.md"
BEGIN, END = "<!-- resources:begin -->", "<!-- resources:end -->"


def sequential_graph(profile: str, directory: Path) -> Path:
    """The project graph with the profile's components run one at a time."""
    raw = yaml.safe_load(DEFAULT_GRAPH.read_text())
    graph = ComponentGraph.from_dict(raw)
    analysis = graph.profile(profile).analysis.model_dump()
    analysis["workers"] = 1  # not part of config_hash: results are the same, figures are per component
    raw["profiles"][profile]["analysis"] = analysis
    path = directory / "component_graph.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def measure(video: Path, profile_name: str, workdir: Path) -> dict[str, Any]:
    graph_path = sequential_graph(profile_name, workdir)
    profile = ComponentGraph.load(graph_path).profile(profile_name)
    sidecar = video.with_name(video.stem + ".metadata.json")
    store = ResultStore(str(workdir / "store"))
    request = ProcessRequest(
        source=str(video),
        store=store,
        profile=profile_name,
        graph_path=graph_path,
        metadata_file=sidecar if sidecar.exists() else None,
    )
    # Warm-up on a short generated clip: imports, model loading and numba compilation happen once
    # per worker process and are not any component's per-video cost.
    clip = make_video(workdir / "warmup.mp4", duration=6.0, width=320, height=240, fps=12)
    warmup = ProcessRequest(
        source=str(clip),
        store=store,
        profile=profile_name,
        graph_path=graph_path,
        metadata_file=request.metadata_file,
    )
    process_video(warmup)
    start = time.perf_counter()
    outcome = process_video(request)
    wall = time.perf_counter() - start
    if outcome.identity is None:
        raise SystemExit(f"run failed before it started: {outcome.summary()}")
    state, _ = RunStateManager.recover(store, RunLayout.of(outcome.identity))
    rows = []
    for name in profile.order:
        spec = profile.components[name]
        section = state.component_state(name)
        schema = "1.0.0" if name == "segmenter" else component_class(name).schema_version
        per_unit = (
            1000 * section.duration_sec / section.units_processed
            if section.units_processed and section.duration_sec
            else None
        )
        rows.append(
            {
                "component": name,
                "processor": spec.processor,
                "unit": spec.unit,
                "depends_on": list(spec.depends_on),
                "batching": spec.batching,
                "schema_version": schema,
                "status": section.status,
                "error_code": str(section.error_code) if section.error_code else None,
                "units_processed": section.units_processed,
                "batch_sizes": section.batch_sizes,
                "wall_sec": section.duration_sec,
                "cpu_sec": section.cpu_time_sec,
                "peak_rss_mb": section.peak_rss_mb,
                "ms_per_unit": round(per_unit, 2) if per_unit is not None else None,
            }
        )
    return {
        "benchmark": "component_profile",
        "video": str(video.relative_to(REPO)) if video.is_relative_to(REPO) else str(video),
        "profile": profile_name,
        "run_status": outcome.status,
        "run_error_code": str(outcome.error_code) if outcome.error_code else None,
        "run_wall_sec": round(wall, 3),
        "run_peak_rss_mb": outcome.manifest.peak_rss_mb if outcome.manifest else None,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f} at the end",
        "components": rows,
    }


def _cell(value: Any, digits: int = 2) -> str:
    if value is None or value == []:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, list):
        return ", ".join(map(str, value[:6])) + (", ..." if len(value) > 6 else "")
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "-"
    return str(value)


def render(result: dict[str, Any]) -> str:
    lines = [
        BEGIN,
        f"Measured by `benchmarks/component_profile.py` on `{result['video']}` with the "
        f"`{result['profile']}` profile after a warm-up run, components one at a time "
        f"({result['machine']}). Run "
        f"{result['run_status']} in {result['run_wall_sec']:.1f} s, process peak RSS "
        f"{_cell(result['run_peak_rss_mb'], 0)} MB. Peak RSS is the whole process's while the component "
        "ran (frames and audio of the run included); CPU is the component's thread. Regenerate after "
        "changing a component.",
        "",
        "| component | processor | unit | depends on | batching hint | schema | status | units | batch sizes "
        "| wall s | CPU s | peak RSS MB | ms/unit |",
        "|---|---|---|---|---|---|---|---|---|---:|---:|---:|---:|",
    ]
    for row in result["components"]:
        status = row["status"] + (f" ({row['error_code']})" if row["error_code"] else "")
        lines.append(
            f"| {row['component']} | {row['processor']} | {row['unit']} | {_cell(row['depends_on'])} "
            f"| {_cell(row['batching'])} | {row['schema_version']} | {status} "
            f"| {_cell(row['units_processed'])} | {_cell(row['batch_sizes'])} "
            f"| {_cell(row['wall_sec'])} | {_cell(row['cpu_sec'])} "
            f"| {_cell(row['peak_rss_mb'], 0)} | {_cell(row['ms_per_unit'])} |"
        )
    lines.append(END)
    return "\n".join(lines)


def write_doc(block: str, doc: Path = DOC) -> None:
    text = doc.read_text() if doc.exists() else "# Components\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = (
            text.rstrip("\n") + "\n\n## Resource profile (measured on the sample trailer)\n\n" + block + "\n"
        )
    doc.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--video", type=Path, default=SAMPLE)
    parser.add_argument("--profile", default="signals")
    parser.add_argument("--no-write", action="store_true", help="Print only; leave docs/components.md alone.")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="trendflow-component-profile-"))
    try:
        result = measure(args.video.resolve(), args.profile, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if not args.no_write:
        write_doc(render(result))
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
