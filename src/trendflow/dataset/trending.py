"""Importer for the public "YouTube trending" CSV formats -> canonical snapshots.

Two formats exist:
- the daily-updated one (2020-): `video_id,title,publishedAt,channelId,channelTitle,categoryId,
  trending_date,tags,view_count,likes,dislikes,comment_count,thumbnail_link,comments_disabled,
  ratings_disabled,description`, `trending_date` ISO 8601, tags `a|b` or `[None]`;
- the older one (2017-2018): `video_id,trending_date,title,channel_title,category_id,
  publish_time,tags,views,likes,dislikes,comment_count,thumbnail_link,comments_disabled,
  ratings_disabled,video_error_or_removed,description`, `trending_date` as `YY.DD.MM`, tags
  `"a"|"b"` or `[none]`, and no channel id.

Each trending day of a video is one snapshot at 00:00 UTC of that day. The importer survives
what the real files contain: a last row cut off in the middle (dropped), rows with the wrong
number of fields, ids mangled by spreadsheets (`#NAME?`), duplicated rows and the same video in
several countries' files (one snapshot kept per time, see `normalize_snapshots`). It logs a
warning with the count of every kind of defect and returns them as a report.

Left censoring: a video already trending on the first day of an export may have been trending
before it: its first row there is not its first appearance. Every row of such a video gets
`left_censored = True` (the dataset build keeps the column, training can leave those rows out,
`training.exclude_left_censored`, and reports them apart).
"""

from __future__ import annotations

import csv
import io
import logging
import posixpath
import re
from typing import Any

import fsspec
import numpy as np
import pandas as pd

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.dataset.snapshots import normalize_snapshots

log = logging.getLogger(__name__)

NEW_FORMAT = "trending_v2"
OLD_FORMAT = "trending_v1"
_NEW_REQUIRED = {"video_id", "publishedAt", "trending_date", "view_count", "likes", "comment_count"}
_OLD_REQUIRED = {"video_id", "trending_date", "publish_time", "views", "likes", "comment_count"}
_COUNTRY_RE = re.compile(r"^([A-Z]{2})(?:_|videos)")
_TRUE = {"true", "1", "yes"}

csv.field_size_limit(1 << 27)


def detect_format(header: list[str]) -> str:
    cols = set(header)
    if cols >= _NEW_REQUIRED:
        return NEW_FORMAT
    if cols >= _OLD_REQUIRED:
        return OLD_FORMAT
    raise TrendFlowError(
        ErrorCode.INVALID_REQUEST,
        f"not a YouTube trending CSV: header {header[:8]}... has neither format's columns",
    )


def country_of(path: str) -> str | None:
    match = _COUNTRY_RE.match(posixpath.basename(path))
    return match.group(1) if match else None


def parse_csv_text(text: str) -> tuple[list[str], list[list[str]], dict[str, int]]:
    """Header + rows of a CSV text; drops a truncated last record and rows of the wrong width."""
    report = {"truncated_last_row": 0, "bad_field_count": 0}
    if text.startswith("\ufeff"):
        text = text[1:]
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        return [], [], report
    rows = list(reader)
    # An odd number of quote characters means the file ends inside a quoted field: the writer
    # was cut off mid-record. csv (non-strict) still returns that partial record: drop it.
    open_quote = text.count('"') % 2 == 1
    short_tail = not text.endswith(("\n", "\r")) and bool(rows) and len(rows[-1]) != len(header)
    if rows and (open_quote or short_tail):
        rows.pop()
        report["truncated_last_row"] = 1
    width = len(header)
    good = [r for r in rows if len(r) == width]
    report["bad_field_count"] = len(rows) - len(good) - sum(1 for r in rows if not r)
    return header, good, report


def _tags_new(value: str) -> str | None:
    if value is None:
        return None
    if value.strip() in {"", "[None]", "[none]"}:
        return ""  # the video has no tags
    return value


def _tags_old(value: str) -> str | None:
    if value is None:
        return None
    if value.strip() in {"", "[none]", "[None]"}:
        return ""
    return "|".join(t.strip().strip('"') for t in value.split("|"))


def _flag(series: pd.Series) -> pd.Series:
    return series.astype("string").str.strip().str.lower().isin(_TRUE).fillna(False).astype(bool)


def frame_from_rows(header: list[str], rows: list[list[str]], country: str | None) -> pd.DataFrame:
    """Trending rows (either format) -> canonical column names (not yet normalized)."""
    raw = pd.DataFrame(rows, columns=header, dtype="string") if rows else pd.DataFrame(columns=header)
    fmt = detect_format(header)
    out = pd.DataFrame({"platform_id": "youtube", "video_id": raw["video_id"]})
    if fmt == NEW_FORMAT:
        out["snapshot_at"] = pd.to_datetime(raw["trending_date"], utc=True, errors="coerce", format="mixed")
        out["published_at"] = pd.to_datetime(raw["publishedAt"], utc=True, errors="coerce", format="mixed")
        out["views"] = raw["view_count"]
        out["comments"] = raw["comment_count"]
        out["channel_id"] = raw.get("channelId")
        out["category"] = raw.get("categoryId")
        out["tags"] = raw["tags"].map(_tags_new) if "tags" in raw else None
    else:
        out["snapshot_at"] = pd.to_datetime(
            raw["trending_date"], format="%y.%d.%m", utc=True, errors="coerce"
        )
        out["published_at"] = pd.to_datetime(raw["publish_time"], utc=True, errors="coerce", format="mixed")
        out["views"] = raw["views"]
        out["comments"] = raw["comment_count"]
        out["channel_id"] = None  # the old format has channel titles only; enrichment fills ids
        out["category"] = raw.get("category_id")
        out["tags"] = raw["tags"].map(_tags_old) if "tags" in raw else None
    out["likes"] = raw["likes"]
    out["title"] = raw.get("title")
    out["description"] = raw.get("description")
    out["country"] = country
    for col in ("views", "likes", "comments"):
        out[col] = pd.to_numeric(out[col], errors="coerce")
    # Hidden counters are reported as 0 by the export: they are unknown, not zero.
    if "ratings_disabled" in raw:
        out.loc[_flag(raw["ratings_disabled"]).to_numpy(), "likes"] = np.nan
    if "comments_disabled" in raw:
        out.loc[_flag(raw["comments_disabled"]).to_numpy(), "comments"] = np.nan
    return out


def _left_censored(raw: pd.DataFrame) -> pd.Series:
    """True for every row of a video whose first snapshot (over all files) is the first day of
    the export file it came from."""
    first = raw.groupby("video_id")["snapshot_at"].transform("min")
    at_start = (raw["snapshot_at"] == first) & (raw["snapshot_at"] == raw["_export_start"])
    flagged = set(raw.loc[at_start.fillna(False).to_numpy(dtype=bool), "video_id"].dropna())
    return raw["video_id"].isin(flagged).fillna(False).astype(bool)


def expand_paths(path: str | list[str], storage_options: dict | None = None) -> list[str]:
    """A file, a folder (every *.csv in it), a glob, or a list of those; sorted, deterministic."""
    paths = [path] if isinstance(path, str) else list(path)
    out: list[str] = []
    for p in paths:
        fs, _, _ = fsspec.get_fs_token_paths(p, storage_options=storage_options or {})
        protocol = fs.protocol[0] if isinstance(fs.protocol, tuple | list) else fs.protocol
        prefix = "" if protocol in ("file", "local") else f"{protocol}://"
        if any(ch in p for ch in "*?["):
            found = fs.glob(p)
        elif fs.isdir(p):
            found = [f for f in fs.find(p) if f.lower().endswith(".csv")]
        else:
            found = [fs._strip_protocol(p)]
        out.extend(prefix + f if prefix and not f.startswith(prefix) else f for f in found)
    if not out:
        raise TrendFlowError(ErrorCode.SOURCE_NOT_FOUND, f"no trending CSV found at {path}")
    return sorted(set(out))


def import_trending(
    path: str | list[str],
    storage_options: dict | None = None,
    encoding: str = "utf-8",
    countries: list[str] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read every trending CSV under `path` -> (canonical snapshots, report with counts)."""
    frames = []
    report: dict[str, Any] = {"files": {}, "truncated_last_rows": 0, "bad_field_count_rows": 0}
    for file in expand_paths(path, storage_options):
        country = country_of(file)
        if countries and country not in countries:
            continue
        with fsspec.open(file, "rb", **(storage_options or {})) as handle:
            text = handle.read().decode(encoding, errors="replace")
        header, rows, parse_report = parse_csv_text(text)
        if not header:
            continue
        frame = frame_from_rows(header, rows, country)
        frame["_export_start"] = frame["snapshot_at"].min()
        report["files"][posixpath.basename(file)] = {
            "format": detect_format(header),
            "country": country,
            "rows": len(frame),
            **parse_report,
        }
        report["truncated_last_rows"] += parse_report["truncated_last_row"]
        report["bad_field_count_rows"] += parse_report["bad_field_count"]
        frames.append(frame)
    if not frames:
        raise TrendFlowError(ErrorCode.SOURCE_NOT_FOUND, f"no trending rows read from {path}")
    raw = pd.concat(frames, ignore_index=True)
    raw["left_censored"] = _left_censored(raw)
    raw = raw.drop(columns="_export_start")
    multi_country = raw.dropna(subset=["country"]).groupby("video_id")["country"].nunique()
    report["countries"] = sorted(raw["country"].dropna().unique().tolist())
    report["videos_in_several_countries"] = int((multi_country > 1).sum())
    snapshots, norm = normalize_snapshots(raw, source=f"trending:{path}")
    report.update(norm)
    defects = {
        "truncated_last_rows": report["truncated_last_rows"],
        "bad_field_count_rows": report["bad_field_count_rows"],
        "invalid_video_ids": norm.get("dropped_invalid_video_id", 0),
        "invalid_snapshot_times": norm.get("dropped_invalid_snapshot_at", 0),
        "exact_duplicates": norm.get("dropped_exact_duplicates", 0),
        "same_video_same_day_kept_one": norm.get("dropped_conflicting_duplicates", 0),
        "videos_in_several_countries": report["videos_in_several_countries"],
    }
    report["defects"] = defects
    report["left_censored_videos"] = int(
        snapshots.drop_duplicates(["platform_id", "video_id"])["left_censored"].sum()
    )
    if any(defects.values()):
        log.warning(
            "trending import of %d file(s), countries %s: %s; kept %d snapshots of %d videos",
            len(report["files"]),
            report["countries"],
            {k: v for k, v in defects.items() if v},
            report["rows_out"],
            report["videos"],
        )
    return snapshots, report
