"""SYNTHETIC corpus for the demo, the tests and the benchmark: channels, videos, snapshot curves
and matching, contract-valid run artifacts, with a known signal.

Everything it makes is labelled synthetic: platform_id `synthetic`, video ids `syn...`, channel
ids `UCsyn...`, titles starting with "[synthetic]", manifest `source.kind = "synthetic"`, and
`synthetic: true` in the dataset metadata.

The signal (what a model can learn):
    z = 0.8*cut_rate + 0.6*motion + 0.5*brightness - 0.5*silence + 0.3*exclamations
        + 0.4*has_audio + channel_quality + noise(0.35)        (standardized features)
    reach M = exp(9 + 1.1*z), time constant tau = 60h * exp(0.35*tempo - 0.25*loudness + noise)
    views(age) = M * (1 - exp(-age / tau)) * (1 + small noise), made monotone
    likes = views * 0.03 * exp(0.25*z2), comments = views * 0.003 * exp(0.2*z2)
so the growth after snapshot1 depends on the content features, the channel and the age at
snapshot1, and not only on the views at snapshot1.

Defects it plants on purpose, so the build's edge cases are exercised: videos without audio
(audio NPZs `empty` with `no_audio_track`), videos with no run, with only a failed run, with an
older superseded run (different numbers: the build must take the newest), channel ids only in
the run manifest, channel ids nowhere, and short histories (no 21d snapshot).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import logging
import math
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd

from trendflow.dataset.synthetic_config import SyntheticConfig
from trendflow.dataset.synthetic_runs import SYNTHETIC_PLATFORM, write_runs
from trendflow.storage.layout import MANIFEST
from trendflow.storage.store import ResultStore

log = logging.getLogger(__name__)

_WORDS = [
    "amazing",
    "guide",
    "review",
    "vlog",
    "music",
    "travel",
    "cooking",
    "tech",
    "game",
    "news",
    "tutorial",
    "live",
    "challenge",
    "story",
    "best",
    "new",
    "how",
    "why",
    "top",
    "day",
]


def _channel_id(seed: int, c: int) -> str:
    raw = hashlib.sha256(f"synthetic-channel:{seed}:{c}".encode()).digest()
    return "UCsyn" + base64.urlsafe_b64encode(raw).decode()[:17]


def _z(x: np.ndarray) -> np.ndarray:
    sd = x.std()
    return (x - x.mean()) / (sd if sd > 0 else 1.0)


def make_videos(cfg: SyntheticConfig) -> pd.DataFrame:
    """One row per video: latent content, channel, publish time, run plan (vectorized)."""
    rng = np.random.default_rng(cfg.seed)
    n = cfg.n_videos
    start = pd.Timestamp(cfg.start).tz_convert("UTC")
    channel_quality = rng.normal(0.0, 0.6, cfg.n_channels)
    channel_subs = np.exp(rng.normal(10.0, 1.5, cfg.n_channels))
    ch = rng.integers(0, cfg.n_channels, n)
    v = pd.DataFrame({"video_index": np.arange(n), "channel_index": ch})
    v["video_id"] = [f"syn{cfg.seed}v{i:07d}" for i in range(n)]
    v["channel_id"] = [_channel_id(cfg.seed, int(c)) for c in ch]
    v["channel_subscriber_count"] = np.round(channel_subs[ch])
    v["published_at"] = start + pd.to_timedelta(
        np.round(rng.uniform(0, cfg.span_days * 24 * 3600, n)), unit="s"
    )
    v["age_at_s1_h"] = rng.uniform(1.0, 72.0, n)
    v["duration_sec"] = rng.uniform(20.0, 1100.0, n).round(2)
    v["brightness"] = rng.uniform(0.25, 0.75, n)
    v["contrast"] = rng.uniform(0.1, 0.4, n)
    v["saturation"] = rng.uniform(0.2, 0.8, n)
    v["colorfulness"] = rng.uniform(10.0, 80.0, n)
    v["sharpness"] = np.exp(rng.normal(4.0, 0.5, n))
    v["cut_rate"] = np.exp(rng.normal(np.log(8.0), 0.5, n))
    v["motion"] = rng.uniform(0.5, 5.0, n)
    v["has_audio"] = rng.random(n) >= cfg.frac_no_audio
    v["loudness"] = rng.uniform(-35.0, -12.0, n)
    v["silence"] = rng.beta(2.0, 6.0, n)
    v["tempo"] = rng.uniform(70.0, 170.0, n)
    v["exclamations"] = rng.integers(0, 3, n)
    v["n_words"] = rng.integers(2, 9, n)
    v["tags_count"] = rng.integers(0, 25, n)
    v["category"] = rng.choice(["1", "10", "17", "20", "22", "24", "28"], n)
    audio = v["has_audio"].to_numpy()
    silence_eff = np.where(audio, v["silence"], 1.0)
    z = (
        0.8 * _z(np.log(v["cut_rate"].to_numpy()))
        + 0.6 * _z(v["motion"].to_numpy())
        + 0.5 * _z(v["brightness"].to_numpy())
        - 0.5 * _z(silence_eff)
        + 0.3 * (v["exclamations"].to_numpy() - 1.0)
        + 0.4 * (audio.astype(float) - 0.9)
        + channel_quality[ch]
        + rng.normal(0.0, 0.35, n)
    )
    v["z"] = z
    v["reach"] = np.exp(9.0 + 1.1 * z)
    tempo_z = _z(v["tempo"].to_numpy()) * audio
    loud_z = _z(v["loudness"].to_numpy()) * audio
    v["tau_h"] = 60.0 * np.exp(0.35 * tempo_z - 0.25 * loud_z + rng.normal(0.0, 0.15, n))
    z2 = 0.5 * _z(v["exclamations"].to_numpy().astype(float)) + 0.5 * _z(v["tempo"].to_numpy()) * audio
    v["like_rate"] = 0.03 * np.exp(0.25 * z2 + rng.normal(0, 0.1, n))
    v["comment_rate"] = 0.003 * np.exp(0.2 * z2 + rng.normal(0, 0.1, n))
    short = rng.random(n) < cfg.frac_short_history
    v["history_days"] = np.where(short, rng.uniform(3.0, 12.0, n), cfg.history_days)
    # run plan and channel visibility
    u = rng.random(n)
    plan = np.full(n, "ok", dtype=object)
    plan[u < cfg.frac_no_run + cfg.frac_failed_run + cfg.frac_superseded_run] = "superseded"
    plan[u < cfg.frac_no_run + cfg.frac_failed_run] = "failed"
    plan[u < cfg.frac_no_run] = "none"
    v["run_plan"] = plan
    w = rng.random(n)
    vis = np.full(n, "snapshot", dtype=object)
    vis[w < cfg.frac_channel_in_run_only + cfg.frac_channel_unknown] = "run"
    vis[w < cfg.frac_channel_unknown] = "unknown"
    vis[(vis == "run") & np.isin(plan, ["none", "failed"])] = "unknown"
    v["channel_visibility"] = vis
    v["units"] = rng.integers(cfg.units_min, cfg.units_max + 1, n)
    v["unit_seed"] = rng.integers(0, 2**31 - 1, n)
    return v


def _title_text(unit_seed: int, n_words: int, exclamations: int) -> str:
    rng = np.random.default_rng(unit_seed + 1)
    words = " ".join(rng.choice(_WORDS, n_words))
    return f"[synthetic] {words.capitalize()}" + "!" * exclamations


def _tags_text(unit_seed: int, tags_count: int) -> str:
    rng = np.random.default_rng(unit_seed + 2)
    return "|".join(rng.choice(_WORDS, tags_count))


def make_snapshots(cfg: SyntheticConfig, videos: pd.DataFrame) -> pd.DataFrame:
    """Snapshot rows for every video: snapshot1 at age a, then every `snapshot_every_hours`."""
    rng = np.random.default_rng(cfg.seed + 1)
    every = cfg.snapshot_every_hours
    max_k = math.ceil(cfg.history_days * 24 / every)
    k = np.arange(max_k + 1)
    # Columns are filled video by video with plain numpy (the random draws in the same order as
    # ever, so the corpus is unchanged), then one frame is made: a frame per video was most of the
    # time of a 100k-video corpus.
    index_parts, ages_parts, views_parts, likes_parts, comments_parts = [], [], [], [], []
    for vi, hist, age1, reach, tau, like_rate, comment_rate in zip(
        videos["video_index"].to_numpy(),
        videos["history_days"].to_numpy(dtype=np.float64),
        videos["age_at_s1_h"].to_numpy(dtype=np.float64),
        videos["reach"].to_numpy(dtype=np.float64),
        videos["tau_h"].to_numpy(dtype=np.float64),
        videos["like_rate"].to_numpy(dtype=np.float64),
        videos["comment_rate"].to_numpy(dtype=np.float64),
        strict=True,
    ):
        n_k = int(hist * 24 // every) + 1
        offsets = k[:n_k] * every
        jitter = rng.uniform(-cfg.snapshot_jitter_hours, cfg.snapshot_jitter_hours, n_k)
        jitter[0] = 0.0
        ages = age1 + offsets + jitter
        curve = reach * (1.0 - np.exp(-ages / tau))
        views = np.maximum.accumulate(np.round(curve * (1.0 + rng.normal(0, 0.01, n_k))).clip(min=0))
        index_parts.append(np.full(n_k, vi))
        ages_parts.append(ages)
        views_parts.append(views)
        likes_parts.append(np.maximum.accumulate(np.round(views * like_rate)))
        comments_parts.append(np.maximum.accumulate(np.round(views * comment_rate)))
    video_index = np.concatenate(index_parts) if index_parts else np.zeros(0, dtype=np.int64)
    meta = videos.set_index("video_index")
    published = meta["published_at"].reindex(video_index)
    ages = np.concatenate(ages_parts) if ages_parts else np.zeros(0)
    snaps = pd.DataFrame(
        {
            "video_index": video_index,
            "snapshot_at": published.reset_index(drop=True)
            + pd.to_timedelta(np.round(ages * 3600), unit="s"),
            "views": np.concatenate(views_parts) if views_parts else np.zeros(0),
            "likes": np.concatenate(likes_parts) if likes_parts else np.zeros(0),
            "comments": np.concatenate(comments_parts) if comments_parts else np.zeros(0),
        }
    )
    snaps["platform_id"] = SYNTHETIC_PLATFORM
    snaps["video_id"] = meta["video_id"].reindex(snaps["video_index"]).to_numpy()
    snaps["published_at"] = published.array
    visible = meta["channel_visibility"] == "snapshot"
    snaps["channel_id"] = meta["channel_id"].where(visible).reindex(snaps["video_index"]).to_numpy()
    snaps["channel_subscriber_count"] = (
        meta["channel_subscriber_count"].reindex(snaps["video_index"]).to_numpy()
    )
    columns = ("video_index", "unit_seed", "n_words", "exclamations", "tags_count")
    text = zip(*(videos[c] for c in columns), strict=True)
    titles, tags = {}, {}
    for vi, seed, n_words, exclamations, tags_count in text:
        titles[vi] = _title_text(int(seed), int(n_words), int(exclamations))
        tags[vi] = _tags_text(int(seed), int(tags_count))
    snaps["title"] = snaps["video_index"].map(titles)
    snaps["tags"] = snaps["video_index"].map(tags)
    snaps["category"] = meta["category"].reindex(snaps["video_index"]).to_numpy()
    cols = [
        "platform_id",
        "video_id",
        "snapshot_at",
        "views",
        "likes",
        "comments",
        "published_at",
        "channel_id",
        "title",
        "tags",
        "category",
        "channel_subscriber_count",
    ]
    return snaps[cols].sort_values(["video_id", "snapshot_at"], kind="mergesort").reset_index(drop=True)


def generate_corpus(
    store: ResultStore,
    cfg: SyntheticConfig,
    storage_options: dict | None = None,
    n_jobs: int = 1,
    write_artifacts: bool = True,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Make the corpus: returns (snapshots, info); writes run artifacts into `store`."""
    videos = make_videos(cfg)
    snapshots = make_snapshots(cfg, videos)
    runs = write_runs(store, cfg, videos, snapshots, storage_options, n_jobs) if write_artifacts else 0
    info = {
        "synthetic": True,
        "config": asdict(cfg),
        "digest": cfg.digest(),
        "config_hash": cfg.config_hash,
        "videos": len(videos),
        "snapshots": len(snapshots),
        "runs_written": runs,
        "run_plans": {k: int(v) for k, v in videos["run_plan"].value_counts().sort_index().items()},
        "channel_visibility": {
            k: int(v) for k, v in videos["channel_visibility"].value_counts().sort_index().items()
        },
    }
    log.info("synthetic corpus: %d videos, %d snapshots, %d runs", len(videos), len(snapshots), runs)
    return snapshots, info


def ensure_corpus(
    store: ResultStore, cfg: SyntheticConfig, storage_options: dict | None = None, n_jobs: int = 1
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Generate the corpus unless the store already holds this exact, complete one.

    Two builds on one local store (e.g. `kedro run` twice at once) take turns through a lock
    file, so one never deletes the corpus the other is writing.
    """
    with _corpus_lock(store):
        marker = f"{SYNTHETIC_PLATFORM}/corpus.json"
        if store.exists(marker):
            try:
                info = store.read_json(marker)
            except Exception:
                info = {}
            complete = len(store.find(SYNTHETIC_PLATFORM, suffix=MANIFEST)) == info.get("runs_written")
            if info.get("digest") == cfg.digest() and complete:
                return make_snapshots(cfg, make_videos(cfg)), info
        if store.exists(SYNTHETIC_PLATFORM):
            log.warning(
                "synthetic corpus in %s differs from the parameters: regenerating it",
                store.uri(SYNTHETIC_PLATFORM),
            )
            store.delete(SYNTHETIC_PLATFORM, recursive=True)
        snapshots, info = generate_corpus(store, cfg, storage_options, n_jobs)
        store.write_bytes(marker, (json.dumps(info, indent=2, sort_keys=True) + "\n").encode())
        return snapshots, info


@contextlib.contextmanager
def _corpus_lock(store: ResultStore) -> Iterator[None]:
    if not store.is_local:
        yield
        return
    key = hashlib.sha256(store.root_uri.encode()).hexdigest()[:16]
    path = os.path.join(tempfile.gettempdir(), f"trendflow-synthetic-{key}.lock")
    with open(path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
