"""Build a long H.264 test film with real shot cuts from a short source clip.

The source is cut into segments of random length (seeded), the segments are shuffled and joined
with ffmpeg's concat filter, and the result is re-encoded as 720p H.264 + AAC. Every join is a
hard cut on top of the cuts the source already has, so a shot detector has plenty to find.

    .venv/bin/python benchmarks/make_test_video.py --source /work/shared/data/videos/trailer_bbb.mp4 \
        --out /tmp/trendflow_bench/film_10min.mp4 --duration 600

Prints one JSON object (output path, duration, segments, encode wall time). An existing output
with the same parameters is reused (the parameters are stored next to it).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import tempfile
import time
from pathlib import Path


def probe_duration(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return float(out.stdout.strip())


def plan_segments(
    source_sec: float, total_sec: float, seed: int, min_len: float = 3.0, max_len: float = 14.0
) -> list[tuple[float, float]]:
    """(start, length) pairs inside the source whose lengths add up to `total_sec`."""
    rng = random.Random(seed)
    segments: list[tuple[float, float]] = []
    remaining = total_sec
    while remaining > 0.5:
        length = min(remaining, rng.uniform(min_len, max_len))
        start = rng.uniform(0.0, max(0.0, source_sec - length - 0.1))
        segments.append((round(start, 3), round(length, 3)))
        remaining -= length
    return segments


def build(source: Path, out: Path, duration: float, seed: int, timeout_s: int = 1800) -> dict:
    params = {"source": str(source), "duration": duration, "seed": seed, "version": 1}
    params_file = out.with_suffix(".json")
    if out.exists() and params_file.exists() and json.loads(params_file.read_text()) == params:
        return {"out": str(out), "reused": True, **params, "duration_sec": probe_duration(out)}
    out.parent.mkdir(parents=True, exist_ok=True)
    source_sec = probe_duration(source)
    segments = plan_segments(source_sec, duration, seed)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        # The source's audio may end before its video: pad it so every segment has sound.
        padded = Path(tmp) / "padded.mkv"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-i", str(source), "-map", "0:v:0", "-map", "0:a:0",
             "-c:v", "copy", "-af", "apad", "-c:a", "pcm_s16le", "-ar", "44100", "-shortest",
             str(padded)],
            check=True, timeout=timeout_s,
        )  # fmt: skip
        inputs: list[str] = []
        chains: list[str] = []
        for i, (start, length) in enumerate(segments):
            inputs += ["-ss", f"{start}", "-t", f"{length}", "-i", str(padded)]
            chains.append(
                f"[{i}:v]scale=1280:720,fps=24,setsar=1,setpts=PTS-STARTPTS[v{i}];"
                f"[{i}:a]aresample=44100,asetpts=PTS-STARTPTS[a{i}]"
            )
        joined = "".join(f"[v{i}][a{i}]" for i in range(len(segments)))
        graph = ";".join(chains) + f";{joined}concat=n={len(segments)}:v=1:a=1[v][a]"
        script = Path(tmp) / "graph.txt"
        script.write_text(graph)
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", *inputs, "-filter_complex_script", str(script),
             "-map", "[v]", "-map", "[a]", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23",
             "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart",
             str(out)],
            check=True, timeout=timeout_s,
        )  # fmt: skip
    params_file.write_text(json.dumps(params))
    return {
        "out": str(out),
        "reused": False,
        **params,
        "segments": len(segments),
        "join_times_sec": [round(sum(s[1] for s in segments[:i]), 3) for i in range(1, len(segments))],
        "duration_sec": probe_duration(out),
        "encode_wall_sec": round(time.perf_counter() - started, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--duration", type=float, default=600.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(json.dumps(build(args.source, args.out, args.duration, args.seed)))


if __name__ == "__main__":
    main()
