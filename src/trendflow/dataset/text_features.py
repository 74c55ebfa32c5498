"""Text statistics of a snapshot's title, description and tags.

One implementation: the pure `text_statistics` of the `text/text_stats` component
(`trendflow.dataprocessor.processors.text.text_stats`), so `snapshot1__title_chars` and the run's
`text_stats__title_chars` mean the same thing. This module only adapts the snapshot form: tags
arrive as one `a|b|c` string (an empty string = no tags, None = unknown).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from trendflow.dataprocessor.processors.text.text_stats import STAT_NAMES
from trendflow.dataprocessor.processors.text.text_stats import text_statistics as _component_text_statistics

TEXT_STAT_NAMES: list[str] = list(STAT_NAMES)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or repr(value) == "<NA>"


def _tag_list(tags: Any) -> list[str] | None:
    if _missing(tags):
        return None
    if isinstance(tags, str):
        return [t for t in (s.strip() for s in tags.split("|")) if t]
    if isinstance(tags, Iterable):
        return [str(t) for t in tags]
    return [str(tags)]


def text_statistics(title: Any, description: Any, tags: Any) -> dict[str, float]:
    """The component's statistics; a missing (None/NaN) field gives NaN for its statistics."""
    return _component_text_statistics(
        None if _missing(title) else str(title),
        None if _missing(description) else str(description),
        _tag_list(tags),
    )
