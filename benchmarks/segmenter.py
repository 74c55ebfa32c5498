"""Segmenter benchmark: `segment()` wall time vs `ffmpeg -i FILE -f null -` on the same file.

The reference decodes every frame with ffmpeg's own threading; the segmenter decodes once,
keeps the profile's union of frames (resized, RGB, written to disk) and extracts the audio.
Runs alternate (reference, segmenter, reference, ...) so that a busy machine hurts both alike;
the best run of each is reported.

    .venv/bin/python benchmarks/segmenter.py --video /work/shared/data/videos/trailer_bbb.mp4
    .venv/bin/python benchmarks/segmenter.py            # generates a 10-min 720p H.264+AAC file

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from trendflow.contracts.identity import RunIdentity, compute_config_hash, new_run_id, utc_now
from trendflow.contracts.versions import SAMPLING_POLICY_VERSION
from trendflow.dataprocessor.graph import ComponentGraph
from trendflow.dataprocessor.segmenter import segment
from trendflow.dataprocessor.sources import resolve_source
from trendflow.testing.media import make_video

DEFAULT_VIDEO = Path(tempfile.gettempdir()) / "trendflow_bench" / "testsrc2_720p_10min.mp4"


def cpu_seconds() -> float:
    """User + system CPU of this process and its finished children (ffmpeg): robust to a busy machine."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def ffmpeg_null(path: Path) -> tuple[float, float]:
    start, cpu = time.perf_counter(), cpu_seconds()
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "null", "-"], check=True, timeout=1800
    )
    return time.perf_counter() - start, cpu_seconds() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=None)
    parser.add_argument("--profile", default="signals")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    video = args.video or DEFAULT_VIDEO
    if not video.exists():
        make_video(video, duration=600, width=1280, height=720, fps=24, audio=True, timeout_sec=1800)

    profile = ComponentGraph.load().profile(args.profile)
    source = resolve_source(str(video), Path(tempfile.gettempdir()))
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
    reference, ours, reference_cpu, ours_cpu = [], [], [], []
    metadata = None
    frames_bytes = 0
    for _ in range(args.repeats):
        wall, cpu = ffmpeg_null(video)
        reference.append(wall)
        reference_cpu.append(cpu)
        frames_dir = Path(tempfile.mkdtemp(prefix="tf_seg_bench_"))
        try:
            start, cpu = time.perf_counter(), cpu_seconds()
            metadata = segment(source, identity, profile, frames_dir)
            ours.append(time.perf_counter() - start)
            ours_cpu.append(cpu_seconds() - cpu)
            frames_bytes = (frames_dir / metadata.frames_file).stat().st_size
        finally:
            shutil.rmtree(frames_dir, ignore_errors=True)
    assert metadata is not None
    best, ref = min(ours), min(reference)
    print(
        json.dumps(
            {
                "video": str(video),
                "profile": args.profile,
                "cpu_count": os.cpu_count(),
                "duration_sec": metadata.source.duration_sec,
                "source": f"{metadata.source.width}x{metadata.source.height} {metadata.source.video_codec} "
                f"{metadata.source.fps:g} fps",
                "union_frames": len(metadata.union_timestamps_sec),
                "analysis": f"{metadata.analysis_width}x{metadata.analysis_height} "
                f"@ {metadata.analysis_fps:g} fps",
                "frames_file_mb": round(frames_bytes / 2**20, 1),
                "decode": metadata.decode.model_dump() if metadata.decode else None,
                "segment_wall_sec": [round(t, 2) for t in ours],
                "ffmpeg_null_wall_sec": [round(t, 2) for t in reference],
                "ratio_segment_vs_ffmpeg_null": round(best / ref, 3),
                "segment_cpu_sec": [round(t, 2) for t in ours_cpu],
                "ffmpeg_null_cpu_sec": [round(t, 2) for t in reference_cpu],
                "cpu_ratio_segment_vs_ffmpeg_null": round(min(ours_cpu) / min(reference_cpu), 3),
                "throughput_video_sec_per_sec": round(metadata.source.duration_sec / best, 1),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "load_avg_1min": os.getloadavg()[0],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
