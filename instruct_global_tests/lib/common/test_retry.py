"""The retry policy: which failures are retried, and how long to wait."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from instruct_global.lib.common.retry import (
    MAX_RETRY_AFTER_SECONDS,
    CallError,
    RetryPolicy,
    backoff_delay,
    is_transient,
    parse_retry_after,
)


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (CallError("status", "rate limited", status=429, code="rate_limit_exceeded"), True),
        (CallError("status", "out of credit", status=429, code="insufficient_quota"), False),
        (CallError("status", "spend limit", status=429, code="enforced_spend_limit_reached"), False),
        (CallError("status", "contract limit", status=429, code="contract_spend_limit_reached"), False),
        (CallError("status", "ramp limit", status=429, code="ramp_limit_exceeded"), True),
        (CallError("status", "boom", status=500), True),
        (CallError("status", "bad gateway", status=502), True),
        (CallError("status", "unavailable", status=503), True),
        (CallError("status", "overloaded", status=529, code="overloaded_error"), True),
        (CallError("status", "timeout", status=408), True),
        (CallError("status", "invalid", status=400, code="invalid_request_error"), False),
        (CallError("status", "no key", status=401), False),
        (CallError("status", "forbidden", status=403), False),
        (CallError("status", "no such model", status=404), False),
        (CallError("status", "unprocessable", status=422), False),
        (CallError("timeout", "read timeout"), True),
        (CallError("connection", "refused"), True),
        (CallError("malformed", "not JSON"), True),
        (CallError("other", "TypeError: bug"), False),
    ],
)
def test_is_transient(error: CallError, transient: bool) -> None:
    assert is_transient(error) is transient


def test_backoff_grows_exponentially_within_jitter_and_cap() -> None:
    policy = RetryPolicy(max_retries=10, backoff_base_seconds=1.0, max_backoff_seconds=8.0)
    rng = random.Random(0)
    for attempt, step in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (6, 8.0)]:
        for _ in range(50):
            delay = backoff_delay(attempt, policy, rng=rng)
            assert step / 2 <= delay <= step


def test_retry_after_wins_over_backoff_and_is_capped() -> None:
    policy = RetryPolicy(backoff_base_seconds=0.001, max_backoff_seconds=0.01)
    for _ in range(20):
        assert 2.0 <= backoff_delay(0, policy, retry_after=2.0) <= 2.2
    assert backoff_delay(0, policy, retry_after=1e9) <= MAX_RETRY_AFTER_SECONDS * 1.1
    assert backoff_delay(0, policy, retry_after=0.0) == 0.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "3"}, 3.0),
        ({"Retry-After": "0.25"}, 0.25),
        ({"retry-after-ms": "150", "retry-after": "9"}, 0.15),
        ({"retry-after-ms": "junk", "retry-after": "2"}, 2.0),
        ({"retry-after": "soon"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str] | None, expected: float | None) -> None:
    assert parse_retry_after(headers) == expected


def test_parse_retry_after_http_date() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after({"retry-after": header}, now=now.timestamp()) == pytest.approx(30.0)
    past = format_datetime(now - timedelta(seconds=30), usegmt=True)
    assert parse_retry_after({"retry-after": past}, now=now.timestamp()) == 0.0


def test_describe_names_status_and_code() -> None:
    error = CallError("status", "You exceeded your current quota", status=429, code="insufficient_quota")
    assert error.describe() == "HTTP 429 insufficient_quota: You exceeded your current quota"
    assert CallError("timeout", "Request timed out.").describe() == "timeout: Request timed out."
