"""Retry policy of queued jobs: which errors are retried, how often, and after how long.

Only transient codes (SPEC 9) are retried, each within its own budget
(`trendflow.contracts.errors.MAX_RETRIES`). The delay grows exponentially and carries "equal
jitter": half of it is fixed, so the delay never collapses to zero, and half is random, so
workers that failed together (Triton or S3 went down) do not all come back at the same instant.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from trendflow.contracts.errors import MAX_RETRIES, ErrorCode, is_transient
from trendflow.dataprocessor.download import LONG_BACKOFF_REASONS

# A worker that dies mid-job (killed for memory, machine lost) gets its job redelivered; a job
# that kills every worker it touches must still end. Counted in attempts, across every cause.
MAX_ATTEMPTS = 1 + max(MAX_RETRIES.values()) + 2


@dataclass(frozen=True)
class RetryPolicy:
    base_s: float = 5.0
    max_s: float = 300.0
    long_s: float = 900.0  # rate limited / bot check: the platform wants us away for a while

    def budget(self, code: ErrorCode | str) -> int:
        """How many retries `code` allows in total (0 for permanent codes)."""
        code = ErrorCode(code)
        return MAX_RETRIES.get(code, 0) if is_transient(code) else 0

    def should_retry(self, code: ErrorCode | str | None, retries_done: int) -> bool:
        return code is not None and retries_done < self.budget(code)

    def delay(self, retries_done: int, rng: random.Random | None = None, reason: str | None = None) -> float:
        """Seconds before retry number `retries_done + 1`; `rate_limited` / `bot_check` reasons
        wait `long_s` doubled per retry (same equal jitter), past the normal cap."""
        if reason in LONG_BACKOFF_REASONS:
            ceiling = self.long_s * (2**retries_done)
        else:
            ceiling = min(self.max_s, self.base_s * (2**retries_done))
        return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)

    def table(self) -> list[dict[str, object]]:
        """The policy as rows (for docs and `trendflow worker --show-retry-policy`)."""
        rows: list[dict[str, object]] = []
        for code in ErrorCode:
            budget = self.budget(code)
            delays = [round(min(self.max_s, self.base_s * 2**n), 1) for n in range(budget)]
            rows.append(
                {
                    "error_code": str(code),
                    "retried": budget > 0,
                    "max_retries": budget,
                    "delay_ceilings_s": delays,
                }
            )
        return rows
