"""Video lists: the input of `trendflow batch` and of the `processing` pipeline.

A list is CSV (header: `source`, optional `platform_id`, `video_id`, `metadata`) or JSON (a list
of objects with the same keys, or `{"videos": [...]}`). `metadata` is the path of a sidecar
JSON (title, description, tags, ...). Relative paths are relative to the list's folder, so a
list and its videos can move together.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.dataprocessor.sources import is_url

COLUMNS = ("source", "platform_id", "video_id", "metadata")
# Accepted spellings of the sidecar column.
_ALIASES = {"metadata_file": "metadata", "sidecar": "metadata", "video_source": "source"}


class VideoEntry(BaseModel):
    """One line of a video list, paths already made absolute."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(min_length=1)
    platform_id: str | None = None
    video_id: str | None = None
    metadata: str | None = Field(None, description="Path of a metadata sidecar JSON.")
    line: int | None = Field(None, description="1-based position in the list, for messages.")


def _clean(value: Any) -> str | None:
    """CSV and DataFrames give '' or NaN for an empty cell; both mean "not given"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def _absolute(path: str | None, base_dir: Path | None) -> str | None:
    if path is None or is_url(path) or base_dir is None:
        return path
    candidate = Path(path).expanduser()
    return str(candidate if candidate.is_absolute() else (base_dir / candidate).resolve())


def entries_from_records(
    records: Iterable[Mapping[str, Any]], base_dir: Path | None = None
) -> list[VideoEntry]:
    """Rows (dicts from CSV, JSON or a DataFrame) -> validated entries; unknown columns are an error."""
    entries: list[VideoEntry] = []
    for number, raw in enumerate(records, start=1):
        row = {_ALIASES.get(str(k).strip(), str(k).strip()): _clean(v) for k, v in raw.items()}
        unknown = sorted(set(row) - set(COLUMNS))
        if unknown:
            raise TrendFlowError(
                ErrorCode.INVALID_REQUEST,
                f"video list row {number}: unknown column(s) {unknown}; allowed: {list(COLUMNS)}",
            )
        if not row.get("source"):
            raise TrendFlowError(ErrorCode.INVALID_REQUEST, f"video list row {number}: `source` is empty")
        row["source"] = _absolute(row["source"], base_dir)
        row["metadata"] = _absolute(row.get("metadata"), base_dir)
        try:
            entries.append(VideoEntry(line=number, **row))
        except ValidationError as exc:
            raise TrendFlowError(ErrorCode.INVALID_REQUEST, f"video list row {number}: {exc}") from exc
    return entries


def read_video_list(path: str | Path) -> list[VideoEntry]:
    path = Path(path)
    if not path.is_file():
        raise TrendFlowError(ErrorCode.SOURCE_NOT_FOUND, f"no such video list: {path}")
    base_dir = path.resolve().parent
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TrendFlowError(ErrorCode.INVALID_REQUEST, f"{path} is not valid JSON: {exc}") from exc
        return entries_from_records(records_from_json(data, str(path)), base_dir)
    if path.suffix.lower() in (".csv", ".txt"):
        return entries_from_records(csv.DictReader(text.splitlines()), base_dir)
    raise TrendFlowError(ErrorCode.INVALID_REQUEST, f"{path}: a video list is .csv or .json")


def records_from_json(data: Any, where: str = "video list") -> list[dict[str, Any]]:
    """`[{...}, ...]` or `{"videos": [{...}, ...]}`; a bare string is a source."""
    if isinstance(data, dict) and "videos" in data:
        data = data["videos"]
    if not isinstance(data, list):
        raise TrendFlowError(ErrorCode.INVALID_REQUEST, f'{where}: expected a list or {{"videos": [...]}}')
    return [{"source": item} if isinstance(item, str) else dict(item) for item in data]
