"""SYNTHETIC run artifacts: contract-valid NPZs, manifest and frames metadata for one video.

Arrays follow the NPZ convention (every feature array has a boolean `__mask`); a video without
audio gets `empty` audio components (`no_audio_track`, NaN/empty arrays, False masks). The numbers
come from the video's latent row (synthetic.make_videos), so the known signal reaches the run
features. Everything is labelled synthetic (platform `synthetic`, manifest `source.kind`).
"""

from __future__ import annotations

import hashlib
import math
import os
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from trendflow.contracts.identity import RunIdentity
from trendflow.contracts.manifest import ComponentRecord, Manifest, ProfileComponent, ProfileInfo
from trendflow.contracts.metadata import ComponentSampling, FramesMetadata, SourceFacts
from trendflow.contracts.npz_meta import MASK_SUFFIX, NpzMeta, Producer
from trendflow.contracts.versions import SAMPLING_POLICY_VERSION
from trendflow.dataprocessor.outputs import OutputArray
from trendflow.dataset.components import Tier0Component, profile_components
from trendflow.dataset.runs import mp_context
from trendflow.dataset.synthetic_config import SyntheticConfig
from trendflow.dataset.text_features import text_statistics
from trendflow.storage.layout import RunLayout
from trendflow.storage.npz_io import write_npz
from trendflow.storage.store import ResultStore

SYNTHETIC_PLATFORM = "synthetic"
PRODUCER = Producer(name="trendflow.dataset.synthetic", version="1.0.0")


def _masked(arrays: dict[str, np.ndarray], valid: bool = True) -> dict[str, np.ndarray]:
    out = dict(arrays)
    for name, arr in arrays.items():
        shape = arr.shape[:1] if arr.ndim >= 1 else ()
        out[name + MASK_SUFFIX] = np.full(shape, valid, dtype=bool)
    return out


MODEL_UNITS = 8  # units of the components without a latent recipe (model outputs: wide vectors)


def _declared_arrays(c: Tier0Component, rng: np.random.Generator, dur: float) -> dict[str, np.ndarray]:
    """Noise in the declared form of a component the corpus has no latent recipe for (the
    model-served components of `baseline`): every feature array, its mask, its positions."""
    n = MODEL_UNITS
    ts = np.linspace(0.0, dur, n)
    out: dict[str, np.ndarray] = {}
    for o in c.component.outputs:
        if o.optional:
            continue
        out[o.name] = _declared_value(o, rng, n, ts)
    return _masked(out)


def _declared_value(o: OutputArray, rng: np.random.Generator, n: int, ts: np.ndarray) -> np.ndarray:
    f32 = np.float32
    if o.kind == "position":
        return ts if o.dim is None else np.sort(rng.uniform(0.0, ts[-1], (n, o.dim)), axis=0)
    if o.kind == "scalar":
        return np.array(float(abs(rng.standard_normal())))
    if o.kind == "category":
        return np.array("synthetic")
    if o.kind == "series":
        return np.abs(rng.standard_normal(n)).astype(f32)
    if o.kind == "run_vector":
        return rng.standard_normal((1, o.dim or 1)).astype(f32)
    return rng.standard_normal((n, o.dim or 1)).astype(f32)  # vector


def _component_arrays(
    row: dict[str, Any], shift: float, components: tuple[Tier0Component, ...]
) -> dict[str, tuple[dict[str, np.ndarray], str | None]]:
    """Arrays of every component for one video (`shift` perturbs a superseded run)."""
    rng = np.random.default_rng(int(row["unit_seed"]))
    n = int(row["units"])
    dur = float(row["duration_sec"])
    ts = np.linspace(0.0, dur, n, dtype=np.float64)
    f32 = np.float32

    def series(center: float, spread: float) -> np.ndarray:
        return (center + shift * spread * 3 + spread * rng.standard_normal(n)).astype(f32)

    out: dict[str, tuple[dict[str, np.ndarray], str | None]] = {}
    out["frame_stats"] = (
        _masked(
            {
                "timestamps_sec": ts,
                "brightness": np.clip(series(row["brightness"], 0.05), 0, 1),
                "contrast": np.clip(series(row["contrast"], 0.03), 0, 1),
                "saturation": np.clip(series(row["saturation"], 0.05), 0, 1),
                "colorfulness": series(row["colorfulness"], 4.0),
                "sharpness": series(row["sharpness"], row["sharpness"] * 0.1),
            }
        ),
        None,
    )
    n_cuts = int(min(400, round(row["cut_rate"] * dur / 60.0)))
    cut_times = np.sort(rng.uniform(0, dur, n_cuts))
    bounds = np.concatenate([[0.0], cut_times, [dur]])
    out["shot_cuts"] = (
        _masked(
            {
                "cut_times_sec": cut_times,
                "shot_lengths_sec": np.diff(bounds).astype(f32),
                "cut_rate_per_min": np.array(n_cuts / dur * 60.0),
                "num_shots": np.array(float(n_cuts + 1)),
            }
        ),
        None,
    )
    flow = np.abs(series(row["motion"], 0.4))
    out["motion"] = (
        _masked(
            {
                "timestamps_sec": ts,
                "flow_magnitude_mean": flow,
                "flow_magnitude_p90": (flow * 1.8).astype(f32),
                "moving_fraction": np.clip(series(row["motion"] / 6.0, 0.05), 0, 1),
            }
        ),
        None,
    )
    na = int(max(8, min(120, dur // 2)))
    ta = np.linspace(0.0, dur, na)
    if row["has_audio"]:
        rms = (row["loudness"] + 4.0 * rng.standard_normal(na)).astype(f32)
        out["loudness"] = (
            _masked(
                {
                    "timestamps_sec": ta,
                    "rms_dbfs": rms,
                    "silence_ratio": np.array(float(row["silence"])),
                    "dynamic_range_db": np.array(float(np.percentile(rms, 95) - np.percentile(rms, 5))),
                    "loudness_mean_dbfs": np.array(float(row["loudness"])),
                }
            ),
            None,
        )
        mfcc = (rng.standard_normal((na, 13)) * 5 + np.linspace(-100, 20, 13)).astype(f32)
        out["spectral"] = (
            _masked(
                {
                    "timestamps_sec": ta,
                    "mfcc": mfcc,
                    "spectral_centroid_hz": (1500 + 300 * rng.standard_normal(na)).astype(f32),
                    "spectral_rolloff_hz": (4000 + 600 * rng.standard_normal(na)).astype(f32),
                    "zcr": np.abs(0.08 + 0.02 * rng.standard_normal(na)).astype(f32),
                }
            ),
            None,
        )
        beats = np.arange(0.0, dur, 60.0 / row["tempo"])
        out["tempo"] = (
            _masked(
                {
                    "tempo_bpm": np.array(float(row["tempo"])),
                    "beat_times_sec": beats,
                    "onset_rate_per_sec": np.array(float(row["tempo"] / 60.0 * 1.5)),
                }
            ),
            None,
        )
    stats = text_statistics(row["title"], None, row["tags"])
    text = {k: np.array(float(v)) for k, v in stats.items()}
    text_masks = {k + MASK_SUFFIX: np.array(bool(np.isfinite(v))) for k, v in stats.items()}
    text["language"] = np.array("en")
    text["language_confidence"] = np.array(0.9 + 0.05 * float(rng.random()))
    out["text_stats"] = (
        {**text, **text_masks, "language__mask": np.array(True), "language_confidence__mask": np.array(True)},
        None,
    )
    pub = pd.Timestamp(row["published_at"])
    out["temporal"] = (
        _masked(
            {
                "duration_sec": np.array(dur),
                "publish_hour_utc": np.array(float(pub.hour)),
                "publish_weekday": np.array(float(pub.weekday())),
                "publish_month": np.array(float(pub.month)),
            }
        ),
        None,
    )
    for c in components:  # the profile's model-served components: declared form, noise
        if c.name not in out and not (c.processor == "audio" and not row["has_audio"]):
            out[c.name] = (_declared_arrays(c, rng, dur), None)
    if not row["has_audio"]:  # the declared valid-empty form of every audio component
        for c in components:
            if c.processor == "audio":
                out[c.name] = (c.component.empty_arrays(), "no_audio_track")
    return out


def write_run(
    store: ResultStore,
    row: dict[str, Any],
    cfg: SyntheticConfig,
    run_id: str,
    created_at: datetime,
    status: str = "success",
    shift: float = 0.0,
) -> str:
    run = RunIdentity(
        platform_id=SYNTHETIC_PLATFORM,
        video_id=row["video_id"],
        run_id=run_id,
        config_hash=cfg.config_hash,
        sampling_policy_version=SAMPLING_POLICY_VERSION,
        dataprocessor_version="synthetic",
        created_at=created_at,
    )
    layout = RunLayout.of(run)
    records = []
    components = profile_components(cfg.profile)
    arrays_by_comp = _component_arrays(row, shift, components) if status == "success" else {}
    for c in components:
        comp, processor = c.name, c.processor
        started = created_at + timedelta(seconds=1)
        if status != "success":
            records.append(
                ComponentRecord(
                    name=comp,
                    processor=processor,
                    required=True,
                    status="error",
                    error_code="component_failed",
                    error="synthetic failure",
                    producer=PRODUCER,
                    schema_version="1.0.0",
                    started_at=started,
                    finished_at=started,
                )
            )
            continue
        arrays, empty_reason = arrays_by_comp[comp]
        meta = NpzMeta(
            run=run,
            component=comp,
            processor=processor,
            producer=PRODUCER,
            component_schema_version="1.0.0",
            status="empty" if empty_reason else "ok",
            empty_reason=empty_reason,
        )
        ref = write_npz(store, layout.npz(processor, comp), layout.run_dir, arrays, meta)
        records.append(
            ComponentRecord(
                name=comp,
                processor=processor,
                required=c.required,
                status="empty" if empty_reason else "ok",
                empty_reason=empty_reason,
                artifacts=[ref],
                producer=PRODUCER,
                schema_version="1.0.0",
                started_at=started,
                finished_at=started,
                duration_sec=0.0,
                units_processed=int(row["units"]),
            )
        )
    finished = created_at + timedelta(seconds=30)
    source: dict[str, Any] = {"kind": "synthetic", "uri": f"synthetic://{row['video_id']}"}
    if row["channel_visibility"] == "run":
        source["channel_id"] = row["channel_id"]
    manifest = Manifest(
        run=run,
        profile=ProfileInfo(
            name="synthetic-baseline",
            components=[
                ProfileComponent(name=c.name, processor=c.processor, required=c.required) for c in components
            ],
        ),
        status=status,
        error_code="component_failed" if status == "error" else None,
        error="synthetic failure" if status == "error" else None,
        source=source,
        started_at=created_at,
        updated_at=finished,
        finished_at=finished,
        duration_sec=30.0,
        components=records,
    )
    if status == "success":
        n = int(row["units"])
        dur = float(row["duration_sec"])
        frames = FramesMetadata(
            run=run,
            source=SourceFacts(
                container="synthetic",
                video_codec="synthetic",
                audio_codec="synthetic" if row["has_audio"] else None,
                duration_sec=dur,
                fps=30.0,
                width=1280,
                height=720,
                has_audio=bool(row["has_audio"]),
                bytes=0,
                sha256="0" * 64,
            ),
            analysis_fps=round(max(n / dur, 0.01), 6),
            analysis_width=640,
            analysis_height=360,
            frames_file="frames.npy",
            union_timestamps_sec=[round(float(t), 4) for t in np.linspace(0.0, dur, n)],
            components={"frame_stats": ComponentSampling(frame_indices=list(range(n)))},
            sampling_policy_version=SAMPLING_POLICY_VERSION,
        )
        store.write_bytes(layout.metadata, frames.model_dump_json().encode())
    store.write_bytes(layout.manifest, manifest.model_dump_json(indent=2).encode())
    return layout.run_dir


def _run_plan(row: dict[str, Any]) -> list[tuple[str, datetime, str, float]]:
    """(run_id, created_at, status, shift) of every run of one video."""
    s1 = (pd.Timestamp(row["published_at"]) + pd.Timedelta(hours=float(row["age_at_s1_h"]))).floor("s")
    created = (s1 + pd.Timedelta(minutes=30)).to_pydatetime().astimezone(UTC)
    tag = hashlib.sha256(row["video_id"].encode()).hexdigest()[:8]
    stamp = created.strftime("%Y%m%dT%H%M%SZ")
    plan = row["run_plan"]
    if plan == "none":
        return []
    if plan == "failed":
        return [(f"{stamp}-{tag}", created, "error", 0.0)]
    runs = [(f"{stamp}-{tag}", created, "success", 0.0)]
    if plan == "superseded":  # an older run with different numbers: the newest must win
        old = created - timedelta(hours=6)
        runs.append((f"{old.strftime('%Y%m%dT%H%M%SZ')}-{tag}", old, "success", 1.0))
    return runs


class _ScratchStore(ResultStore):
    """The result store without fsync per file: synthetic artifacts can be regenerated, so
    the generator trades durability for speed (still temp file + rename, so never torn)."""

    def write_bytes(self, rel: str, data: bytes) -> str:
        if not self.is_local:
            return super().write_bytes(rel, data)
        path = self.full_path(rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
        return hashlib.sha256(data).hexdigest()


def _write_chunk(args: tuple[str, dict | None, SyntheticConfig, list[dict[str, Any]]]) -> int:
    root, options, cfg, rows = args
    store = _ScratchStore(root, options)
    count = 0
    for row in rows:
        for run_id, created, status, shift in _run_plan(row):
            write_run(store, row, cfg, run_id, created, status, shift)
            count += 1
    return count


def write_runs(
    store: ResultStore,
    cfg: SyntheticConfig,
    videos: pd.DataFrame,
    snapshots: pd.DataFrame,
    storage_options: dict | None = None,
    n_jobs: int = 1,
) -> int:
    titles = snapshots.drop_duplicates("video_id").set_index("video_id")[["title", "tags"]]
    rows = []
    for rec in videos.to_dict("records"):
        rec["title"] = titles.at[rec["video_id"], "title"]
        rec["tags"] = titles.at[rec["video_id"], "tags"]
        rows.append(rec)
    size = max(1, math.ceil(len(rows) / max(1, n_jobs * 4)))
    chunks = [(store.root_uri, storage_options, cfg, rows[i : i + size]) for i in range(0, len(rows), size)]
    if n_jobs <= 1 or len(chunks) <= 1:
        return sum(_write_chunk(c) for c in chunks)
    with ProcessPoolExecutor(max_workers=n_jobs, mp_context=mp_context()) as pool:
        return sum(pool.map(_write_chunk, chunks))
