"""Per-component wall and CPU time of the Tier-0 signal components on one video.

The real segmenter prepares frames and audio with the `signals` profile's budgets; then every
signal component runs twice in this process: the first run includes one-off costs (imports, the
langid model, the mel filterbank), the second is the steady state of a warm worker. Components run
one after another here (the orchestrator runs them in parallel threads), so the sum is an upper
bound of their share of a run.

    .venv/bin/python benchmarks/signal_components.py --video /work/shared/data/videos/trailer_bbb.mp4

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from trendflow.contracts.identity import RunIdentity, compute_config_hash, new_run_id, utc_now
from trendflow.contracts.versions import SAMPLING_POLICY_VERSION
from trendflow.dataprocessor.component import PrivacyPolicy, RunContext, component_class
from trendflow.dataprocessor.frame_store import FrameStore
from trendflow.dataprocessor.graph import ComponentGraph
from trendflow.dataprocessor.segmenter import segment
from trendflow.dataprocessor.sources import resolve_source
from trendflow.storage.layout import RunLayout
from trendflow.storage.npz_io import check_masks

SIGNAL_COMPONENTS = [
    "frame_stats",
    "shot_cuts",
    "motion",
    "loudness",
    "spectral",
    "tempo",
    "text_stats",
    "temporal",
]


def _timed(fn: Any) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=Path("/work/shared/data/videos/trailer_bbb.mp4"))
    parser.add_argument("--profile", default="signals")
    args = parser.parse_args()
    profile = ComponentGraph.load().profile(args.profile)
    scratch = Path(tempfile.mkdtemp(prefix="tf_signals_bench_"))
    try:
        source = resolve_source(str(args.video), scratch)
        identity = RunIdentity(
            platform_id="local",
            video_id="bench",
            run_id=new_run_id(),
            config_hash=compute_config_hash(
                profile.canonical(), SAMPLING_POLICY_VERSION, profile.model_mapping()
            ),
            sampling_policy_version=SAMPLING_POLICY_VERSION,
            dataprocessor_version="bench",
            created_at=utc_now(),
        )
        frames_dir = scratch / "frames_dir"
        metadata, segment_wall, segment_cpu = _timed(lambda: segment(source, identity, profile, frames_dir))
        audio_path = frames_dir / metadata.audio.path if metadata.audio else None
        ctx = RunContext(
            identity=identity,
            store=None,  # type: ignore[arg-type]  # components never write
            layout=RunLayout.of(identity),
            source_info=source.info,
            policy=PrivacyPolicy(),
            metadata=metadata,
            frames=FrameStore(frames_dir, metadata),
            audio_loader=lambda: np.load(audio_path, mmap_mode="r") if audio_path else None,
        )
        rows = []
        for name in SIGNAL_COMPONENTS:
            if name not in profile.components:
                continue
            spec = profile.components[name]
            timings = []
            for _ in range(2):
                ctx._audio = None  # each run reads the track like a fresh run would
                component = component_class(name)(spec)
                output, wall, cpu = _timed(lambda component=component: component.run(ctx))
                check_masks(output.arrays)
                timings.append((wall, cpu))
            rows.append(
                {
                    "component": name,
                    "units": output.units_processed,
                    "empty_reason": output.empty_reason,
                    "first_wall_sec": round(timings[0][0], 3),
                    "first_cpu_sec": round(timings[0][1], 3),
                    "warm_wall_sec": round(timings[1][0], 3),
                    "warm_cpu_sec": round(timings[1][1], 3),
                }
            )
        report = {
            "benchmark": "signal_components",
            "video": str(args.video),
            "profile": args.profile,
            "duration_sec": metadata.source.duration_sec,
            "analysis": f"{metadata.analysis_width}x{metadata.analysis_height}"
            f" @ {metadata.analysis_fps:g} fps",
            "union_frames": len(metadata.union_timestamps_sec),
            "cpu_count": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
            "segmenter_wall_sec": round(segment_wall, 3),
            "segmenter_cpu_sec": round(segment_cpu, 3),
            "components": rows,
            "components_warm_wall_sum_sec": round(sum(r["warm_wall_sec"] for r in rows), 3),
            "components_first_wall_sum_sec": round(sum(r["first_wall_sec"] for r in rows), 3),
            "ratio_components_warm_vs_segmenter": round(
                sum(r["warm_wall_sec"] for r in rows) / segment_wall, 3
            ),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
        print(json.dumps(report))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
