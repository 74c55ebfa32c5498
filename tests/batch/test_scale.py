"""Scale: 120 short generated videos, unattended, through 2 real workers (issue 5)."""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from trendflow.batch.report import runs_index_frame
from trendflow.batch.runner import BatchOptions, run_batch
from trendflow.worker.config import WorkerSettings

N_VIDEOS = 120
SIZES = [(96, 72), (160, 120), (176, 144), (320, 180), (320, 240), (180, 320), (426, 240), (640, 360)]


def generate(folder: Path, seed: int = 5) -> dict[Path, str | None]:
    """Video -> expected error code (None: valid). Varied length, size, rate, audio; 10 invalid."""
    from trendflow.testing.media import make_video

    rng = random.Random(seed)
    plan: list[tuple[Path, dict, str | None]] = []
    for i in range(N_VIDEOS):
        path = folder / f"v{i:03d}.mp4"
        if i % 17 == 3:  # 7 too short
            plan.append((path, {"duration": rng.choice([1.5, 3.0, 4.0]) + i / 1000}, "video_too_short"))
        elif i % 40 == 11:  # 3 that are not videos at all
            plan.append((path, {}, "invalid_media"))
        else:
            width, height = rng.choice(SIZES)
            # i / 1000 s more: every clip has its own content hash, so 120 videos are 120 jobs.
            spec = {"duration": round(rng.uniform(5.5, 14.0), 1) + i / 1000, "width": width, "height": height,
                    "fps": rng.choice([15.0, 24.0, 25.0, 30.0]), "audio": rng.random() < 0.7}  # fmt: skip
            plan.append((path, spec, None))

    def make(item: tuple[Path, dict, str | None]) -> None:
        path, spec, expected = item
        if expected == "invalid_media":
            path.write_bytes(random.Random(str(path)).randbytes(4096))
        else:
            make_video(path, width=spec.pop("width", 160), height=spec.pop("height", 120), **spec)

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(make, plan))
    return {path: expected for path, _, expected in plan}


@pytest.mark.slow
def test_120_videos_through_two_workers(
    queue_settings: WorkerSettings, worker_factory, tmp_path: Path
) -> None:
    videos = generate(tmp_path / "videos")
    video_list = tmp_path / "videos.csv"
    video_list.write_text("source\n" + "".join(f"{p}\n" for p in videos))
    settings = queue_settings.model_copy(update={"job_time_limit_s": 300, "visibility_timeout_s": 360})
    workers = [worker_factory(settings, name="scale-a"), worker_factory(settings, name="scale-b")]

    started = time.monotonic()
    report = run_batch(video_list, settings, BatchOptions(profile="signals", poll_s=0.5, timeout_s=1800),
                       tmp_path / "state.jsonl")  # fmt: skip
    elapsed = time.monotonic() - started

    index = runs_index_frame(report.rows())
    assert len(index) == N_VIDEOS
    by_source = index.set_index("source")
    for path, expected in videos.items():
        row = by_source.loc[str(path)]
        if expected is None:
            assert row["status"] == "success", (path, row["error_code"], row["error"])
        else:
            assert (row["status"], row["error_code"]) == ("error", expected), path
    assert set(index["worker"].dropna()) == {w.hostname for w in workers}
    print(f"\n120 videos through 2 workers: {elapsed:.0f}s, {N_VIDEOS / elapsed * 60:.1f} videos/min")
