"""Retry policy: transient codes only, each within its budget, exponential delays with jitter."""

import random

from trendflow.contracts.errors import MAX_RETRIES, ErrorCode, is_transient
from trendflow.worker.retry import RetryPolicy


def test_only_transient_codes_are_retried_within_their_budget() -> None:
    policy = RetryPolicy()
    for code in ErrorCode:
        budget = MAX_RETRIES.get(code, 0) if is_transient(code) else 0
        assert policy.budget(code) == budget
        assert policy.should_retry(code, 0) is (budget > 0)
        assert policy.should_retry(code, budget) is False
    assert policy.should_retry(None, 0) is False
    assert not policy.should_retry(ErrorCode.INVALID_REQUEST, 0)
    assert policy.should_retry(ErrorCode.OUT_OF_MEMORY, 0) and not policy.should_retry(
        ErrorCode.OUT_OF_MEMORY, 1
    )


def test_delays_grow_exponentially_are_capped_and_jittered() -> None:
    policy = RetryPolicy(base_s=2.0, max_s=20.0)
    rng = random.Random(7)
    for retries_done in range(8):
        ceiling = min(20.0, 2.0 * 2**retries_done)
        samples = [policy.delay(retries_done, rng) for _ in range(200)]
        assert all(ceiling / 2 <= s <= ceiling for s in samples)
        assert max(samples) - min(samples) > ceiling / 4  # jitter actually spreads the delays
    assert policy.delay(10, rng) <= 20.0


def test_policy_table_lists_every_code() -> None:
    rows = {r["error_code"]: r for r in RetryPolicy(base_s=1, max_s=8).table()}
    assert set(rows) == {str(c) for c in ErrorCode}
    assert rows["triton_unavailable"]["delay_ceilings_s"] == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert rows["invalid_media"]["retried"] is False
