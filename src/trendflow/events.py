"""Structured event logging: one JSON object per line on the `trendflow` loggers.

Secrets never reach these events: callers pass ids, codes, paths and numbers, and
`redact` scrubs anything that looks like a credential before it is written.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

_SECRET_KEYS = re.compile(r"(secret|password|token|api_key|apikey|access_key|credential)", re.I)


def redact(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: ("***" if _SECRET_KEYS.search(k) else v) for k, v in fields.items()}


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    if logger.isEnabledFor(level):
        logger.log(level, json.dumps({"event": event, **redact(fields)}, default=str, sort_keys=True))
