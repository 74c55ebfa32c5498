"""The processing video list taken from a snapshot source: one entry per distinct video.

`processing.video_list: snapshots` turns the snapshots (platform_id, video_id, snapshot_at, ...)
into video list records: a YouTube id becomes its watch URL, a `video_url` column of the
snapshots is used as is, and videos of other platforms without one are reported (they cannot
be downloaded by id). Videos that already have a successful run for the profile's config_hash are
not queued again (`already_processed`); `max_videos` bounds how many are queued in one batch.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from trendflow.dataprocessor.run_index import list_manifests
from trendflow.storage.store import ResultStore

logger = logging.getLogger(__name__)

YOUTUBE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{11}$")
URL_COLUMNS = ("video_url",)  # the canonical snapshot column (map others with column_mapping)


def youtube_watch_url(video_id: str) -> str:
    return f"https://www.youtube.com/watch?v={video_id}"


@dataclass
class SnapshotVideos:
    """Records for the queue, the videos with a run already, and the ones that cannot be queued."""

    records: list[dict[str, Any]] = field(default_factory=list)
    already_processed: list[dict[str, Any]] = field(default_factory=list)
    unsupported: list[dict[str, Any]] = field(default_factory=list)
    over_limit: int = 0

    def counts(self) -> dict[str, int]:
        return {
            "queued": len(self.records),
            "already_processed": len(self.already_processed),
            "unsupported": len(self.unsupported),
            "over_limit": self.over_limit,
        }


def distinct_videos(snapshots: pd.DataFrame) -> pd.DataFrame:
    """One row per (platform_id, video_id), newest snapshot first (recent videos are queued first)."""
    url_col = next((c for c in URL_COLUMNS if c in snapshots.columns), None)
    cols = ["platform_id", "video_id", "snapshot_at", *([url_col] if url_col else [])]
    first = (
        snapshots[cols]
        .sort_values(["platform_id", "video_id", "snapshot_at"], kind="mergesort")
        .drop_duplicates(["platform_id", "video_id"], keep="first")
    )
    first = first.rename(columns={url_col: "video_url"}) if url_col else first.assign(video_url=None)
    return first.sort_values(
        ["snapshot_at", "platform_id", "video_id"], ascending=[False, True, True], kind="mergesort"
    ).reset_index(drop=True)


def source_of(platform_id: str, video_id: str, video_url: Any) -> str | None:
    if isinstance(video_url, str) and video_url.strip():
        return video_url.strip()
    if platform_id == "youtube" and YOUTUBE_ID_RE.fullmatch(video_id):
        return youtube_watch_url(video_id)
    return None


def successful_run(store: ResultStore, platform_id: str, video_id: str, config_hash: str) -> str | None:
    """The run_id of the newest successful run with this config_hash, if any (manifests only)."""
    hits = [
        m
        for m in list_manifests(store, platform_id, video_id)
        if m.status == "success" and m.run.config_hash == config_hash
    ]
    return hits[-1].run.run_id if hits else None


def videos_from_snapshots(
    snapshots: pd.DataFrame,
    store: ResultStore,
    config_hash: str,
    max_videos: int | None = None,
    force: bool = False,
) -> SnapshotVideos:
    """Video list records for the snapshot videos that still need a run for `config_hash`."""
    out = SnapshotVideos()
    for row in distinct_videos(snapshots).itertuples(index=False):
        platform_id, video_id = str(row.platform_id), str(row.video_id)
        source = source_of(platform_id, video_id, row.video_url)
        ident = {"platform_id": platform_id, "video_id": video_id}
        if source is None:
            out.unsupported.append({**ident, "why": "no URL column and not a YouTube id"})
            continue
        run_id = None if force else successful_run(store, platform_id, video_id, config_hash)
        if run_id is not None:
            out.already_processed.append({**ident, "source": source, "run_id": run_id})
            continue
        if max_videos is not None and len(out.records) >= max_videos:
            out.over_limit += 1
            continue
        out.records.append({"source": source, **ident})
    logger.info("processing from snapshots: %s", out.counts())
    if out.unsupported:
        logger.warning(
            "processing from snapshots: %d videos cannot be queued (no URL): e.g. %s",
            len(out.unsupported),
            out.unsupported[:3],
        )
    if out.over_limit:
        logger.warning(
            "processing from snapshots: %d videos left for later batches (processing.max_videos=%s)",
            out.over_limit,
            max_videos,
        )
    return out
