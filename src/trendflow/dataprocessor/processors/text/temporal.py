"""text/temporal: the video's duration and, when known, when it was published (UTC).

- `duration_sec`: `metadata.source.duration_sec` (the probed container duration);
- `publish_hour_utc` (0-23), `publish_weekday` (0 = Monday), `publish_month` (1-12).

An unknown publish time (a local file) gives NaN with mask False for the three publish fields;
the component stays `ok` because the duration is still known. A naive datetime is read as UTC.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.dataprocessor.component import Component, ComponentOutput, RunContext, masked, register
from trendflow.dataprocessor.outputs import scalars


def publish_features(published_at: datetime | None) -> dict[str, float]:
    """Hour (UTC), weekday (0 = Monday) and month of a publish time; NaN when unknown."""
    if published_at is None:
        return {"publish_hour_utc": math.nan, "publish_weekday": math.nan, "publish_month": math.nan}
    moment = published_at.replace(tzinfo=UTC) if published_at.tzinfo is None else published_at.astimezone(UTC)
    return {
        "publish_hour_utc": float(moment.hour),
        "publish_weekday": float(moment.weekday()),
        "publish_month": float(moment.month),
    }


@register
class Temporal(Component):
    name = "temporal"
    processor = "text"
    schema_version = "1.0.0"
    version = "1.0.0"
    outputs = scalars("duration_sec", "publish_hour_utc", "publish_weekday", "publish_month")

    def run(self, ctx: RunContext) -> ComponentOutput:
        if ctx.metadata is None:
            raise TrendFlowError(ErrorCode.DEPENDENCY_MISSING, "temporal needs the segmenter's metadata.json")
        arrays = masked("duration_sec", ctx.metadata.source.duration_sec)
        for name, value in publish_features(ctx.source_info.published_at).items():
            arrays.update(masked(name, value))
        return ComponentOutput(arrays=arrays, units_processed=1, batch_sizes=[1])
