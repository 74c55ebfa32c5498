"""visual/shot_cuts against PySceneDetect's ContentDetector: cut-time F1 and wall times.

ContentDetector runs as users run it (every frame, OpenCV backend, default threshold 27 and
15-frame minimum scene). Ours runs as production runs it: the real segmenter with the `signals`
profile (frames at the shot_cuts budget of component_graph.yaml, 4 fps, at the analysis short
side), then the shot_cuts component on its FrameStore. The segmenter's time is the decode every
component of a run shares, so the wall-time ratio is an upper bound. Cuts match one-to-one
(closest first) within the tolerance.

    .venv/bin/pip install --no-deps scenedetect   # benchmark-only; keeps opencv-python out
    .venv/bin/python benchmarks/shot_cuts_vs_scenedetect.py --video /work/shared/data/videos/trailer_bbb.mp4
    .venv/bin/python benchmarks/shot_cuts_vs_scenedetect.py --with-film   # + a generated 10-min film

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

from trendflow.contracts.identity import RunIdentity, compute_config_hash, new_run_id, utc_now
from trendflow.contracts.versions import SAMPLING_POLICY_VERSION
from trendflow.dataprocessor.component import PrivacyPolicy, RunContext, component_class
from trendflow.dataprocessor.frame_store import FrameStore
from trendflow.dataprocessor.graph import ComponentGraph, Profile
from trendflow.dataprocessor.processors.visual.shot_cuts import ShotCuts
from trendflow.dataprocessor.segmenter import segment
from trendflow.dataprocessor.sources import resolve_source
from trendflow.storage.layout import RunLayout

TRAILER = Path("/work/shared/data/videos/trailer_bbb.mp4")
FILM = Path("/tmp/trendflow_bench/film_10min.mp4")


def match_cuts(reference: list[float], detected: list[float], tolerance: float) -> dict[str, Any]:
    """One-to-one matching, closest pairs first; F1/precision/recall of the detected cuts."""
    pairs = sorted(
        (abs(r - d), i, j)
        for i, r in enumerate(reference)
        for j, d in enumerate(detected)
        if abs(r - d) <= tolerance
    )
    used_ref: set[int] = set()
    used_det: set[int] = set()
    errors: list[float] = []
    for distance, i, j in pairs:
        if i not in used_ref and j not in used_det:
            used_ref.add(i)
            used_det.add(j)
            errors.append(distance)
    tp = len(errors)
    precision = tp / len(detected) if detected else 1.0
    recall = tp / len(reference) if reference else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "f1": round(f1, 4),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "true_positives": tp,
        "mean_abs_error_sec": round(sum(errors) / len(errors), 4) if errors else None,
        "missed_sec": [round(reference[i], 3) for i in range(len(reference)) if i not in used_ref],
        "extra_sec": [round(detected[j], 3) for j in range(len(detected)) if j not in used_det],
    }


def run_content_detector(path: Path) -> tuple[list[float], float]:
    from scenedetect import ContentDetector, detect

    started, cpu = time.perf_counter(), time.process_time()
    scenes = detect(str(path), ContentDetector())
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return [float(start.seconds) for start, _ in scenes[1:]], wall, cpu


def run_ours(path: Path, profile: Profile) -> dict[str, Any]:
    """The production path: the segmenter (signals profile) then the shot_cuts component."""
    scratch = Path(tempfile.mkdtemp(prefix="tf_shotcuts_bench_"))
    try:
        source = resolve_source(str(path), scratch)
        identity = RunIdentity(
            platform_id="local",
            video_id="bench",
            run_id=new_run_id(),
            config_hash=compute_config_hash(profile.canonical(), SAMPLING_POLICY_VERSION, {}),
            sampling_policy_version=SAMPLING_POLICY_VERSION,
            dataprocessor_version="bench",
            created_at=utc_now(),
        )
        wall, cpu = time.perf_counter(), time.process_time()
        metadata = segment(source, identity, profile, scratch / "frames_dir")
        segment_wall, segment_cpu = time.perf_counter() - wall, time.process_time() - cpu
        ctx = RunContext(
            identity=identity,
            store=None,  # type: ignore[arg-type]  # components never write
            layout=RunLayout.of(identity),
            source_info=source.info,
            policy=PrivacyPolicy(),
            metadata=metadata,
            frames=FrameStore(scratch / "frames_dir", metadata),
        )
        wall, cpu = time.perf_counter(), time.process_time()
        output = component_class("shot_cuts")(profile.components["shot_cuts"]).run(ctx)
        component_wall, component_cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "cuts": output.arrays["cut_times_sec"].tolist(),
        "frames": output.units_processed,
        "skip_frame": metadata.decode.skip_frame if metadata.decode else None,
        "segmenter_wall_sec": round(segment_wall, 3),
        "segmenter_cpu_sec": round(segment_cpu, 3),
        "component_wall_sec": round(component_wall, 3),
        "component_cpu_sec": round(component_cpu, 3),
    }


def benchmark(videos: list[Path], tolerance: float) -> dict[str, Any]:
    profile = ComponentGraph.load().profile("signals")
    spec = profile.components["shot_cuts"]
    results = []
    for path in videos:
        reference, reference_wall, reference_cpu = run_content_detector(path)
        ours = run_ours(path, profile)
        ours_wall = ours["segmenter_wall_sec"] + ours["component_wall_sec"]
        ours_cpu = ours["segmenter_cpu_sec"] + ours["component_cpu_sec"]
        results.append(
            {
                "video": str(path),
                "reference_cuts": len(reference),
                "detected_cuts": len(ours["cuts"]),
                **match_cuts(reference, ours["cuts"], tolerance),
                "content_detector_wall_sec": round(reference_wall, 3),
                "content_detector_cpu_sec": round(reference_cpu, 3),
                **{f"ours_{k}": v for k, v in ours.items() if k != "cuts"},
                # The segmenter's decode is shared by every component of a run: an upper bound.
                "wall_ratio_ours_vs_content_detector": round(ours_wall / reference_wall, 3),
                "cpu_ratio_ours_vs_content_detector": round(ours_cpu / reference_cpu, 3),
            }
        )
    return {
        "benchmark": "shot_cuts_vs_scenedetect",
        "tolerance_sec": tolerance,
        "sampling": spec.sampling.model_dump() if spec.sampling else None,
        "analysis_short_side": profile.analysis.max_short_side,
        "params": ShotCuts.parse_params(spec.params).model_dump(),
        "target_f1": 0.85,
        "all_meet_target": all(r["f1"] >= 0.85 for r in results),
        "cpu_count": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "videos": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, action="append", default=[])
    parser.add_argument("--with-film", action="store_true", help=f"also build and use {FILM}")
    parser.add_argument("--tolerance", type=float, default=0.5)
    args = parser.parse_args()
    videos = list(args.video) or [TRAILER]
    if args.with_film:
        from make_test_video import build  # benchmarks/ is on sys.path when run as a script

        build(TRAILER, FILM, duration=600.0, seed=7)
        videos.append(FILM)
    print(json.dumps(benchmark(videos, args.tolerance)))


if __name__ == "__main__":
    main()
