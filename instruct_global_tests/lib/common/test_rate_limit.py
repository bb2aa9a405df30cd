"""Client-side pacing (requests and tokens per minute) and the providers' rate-limit headers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from instruct_global.lib.common.llm_types import ChatRequest
from instruct_global.lib.common.rate_limit import RateLimiter, estimate_tokens, parse_reset


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_no_limits_never_wait() -> None:
    limiter = RateLimiter()
    assert all(limiter.reserve(10_000) == 0.0 for _ in range(100))


def test_requests_per_minute_paces_evenly() -> None:
    clock = FakeClock()
    limiter = RateLimiter(requests_per_minute=120, clock=clock)
    delays = [limiter.reserve() for _ in range(5)]
    assert delays == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0])
    clock.now += 10  # idle time is not banked into a burst
    assert limiter.reserve() == 0.0
    assert limiter.reserve() == pytest.approx(0.5)


def test_tokens_per_minute_holds_budget_in_proportion() -> None:
    clock = FakeClock()
    limiter = RateLimiter(tokens_per_minute=6000, clock=clock)
    assert limiter.reserve(600) == 0.0  # 600 tokens hold the budget for 6 s
    assert limiter.reserve(100) == pytest.approx(6.0)
    assert limiter.reserve(100) == pytest.approx(7.0)


def test_acquire_sleeps_for_the_reserved_delay() -> None:
    clock = FakeClock()
    limiter = RateLimiter(requests_per_minute=60, clock=clock, sleep=clock.sleep)
    start = clock.now
    for _ in range(4):
        limiter.acquire()
    assert clock.now - start == pytest.approx(3.0)


def test_pause_for_holds_every_caller() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    limiter.pause_for(2.5)
    assert limiter.reserve() == pytest.approx(2.5)
    assert limiter.reserve() == pytest.approx(2.5)
    clock.now += 3
    assert limiter.reserve() == 0.0


def test_openai_headers_with_no_requests_left_pause() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    limiter.observe_headers({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1.5s"})
    assert limiter.reserve() == pytest.approx(1.5)


def test_request_limit_header_shortens_the_pause_to_one_slot() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    limiter.observe_headers(
        {
            "x-ratelimit-limit-requests": "600",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "1m0s",
        }
    )
    assert limiter.reserve() == pytest.approx(0.1)


def test_anthropic_token_headers_wait_for_the_deficit() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    reset = (datetime.now(UTC) + timedelta(seconds=30)).isoformat().replace("+00:00", "Z")
    limiter.observe_headers(
        {
            "anthropic-ratelimit-tokens-limit": "60000",
            "anthropic-ratelimit-tokens-remaining": "500",
            "anthropic-ratelimit-tokens-reset": reset,
        }
    )
    assert limiter.reserve(400) == 0.0  # fits in what is left
    # 300 more than the 100 left: refills at 1000 tokens/s, so 0.3 s
    assert limiter.reserve(400) == pytest.approx(0.3, abs=0.01)


def test_calls_after_a_token_deficit_queue_behind_it() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    reset = (datetime.now(UTC) + timedelta(seconds=30)).isoformat().replace("+00:00", "Z")
    limiter.observe_headers(
        {
            "anthropic-ratelimit-tokens-limit": "60000",
            "anthropic-ratelimit-tokens-remaining": "500",
            "anthropic-ratelimit-tokens-reset": reset,
        }
    )
    delays = [limiter.reserve(400) for _ in range(4)]
    # 1000 tokens/s: the second waits for its 300-token deficit, each later one for its 400 tokens
    assert delays == pytest.approx([0.0, 0.3, 0.7, 1.1], abs=0.01)


def test_absurd_header_values_are_ignored() -> None:
    limiter = RateLimiter()
    limiter.observe_headers(
        {
            "x-ratelimit-limit-tokens": "inf",
            "x-ratelimit-remaining-tokens": "1e999",
            "x-ratelimit-reset-tokens": "1s",
            "x-ratelimit-remaining-requests": "nan",
            "x-ratelimit-reset-requests": "1s",
        }
    )
    assert limiter.reserve(100) == 0.0


def test_plenty_left_in_headers_does_not_slow_down() -> None:
    limiter = RateLimiter()
    limiter.observe_headers(
        {
            "x-ratelimit-remaining-requests": "9999",
            "x-ratelimit-reset-requests": "6ms",
            "x-ratelimit-remaining-tokens": "999000",
            "x-ratelimit-reset-tokens": "6ms",
        }
    )
    assert limiter.reserve(2000) == 0.0


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("1h2m3.5s", 3723.5),
        ("0.75", 0.75),
        ("", None),
        ("soon", None),
    ],
)
def test_parse_reset_durations(value: str, seconds: float | None) -> None:
    assert parse_reset(value) == (pytest.approx(seconds) if seconds is not None else None)


def test_parse_reset_rfc3339() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_reset("2026-01-01T00:00:12Z", now_wall=now.timestamp()) == pytest.approx(12.0)
    assert parse_reset("2025-12-31T23:59:00Z", now_wall=now.timestamp()) == 0.0


def test_estimate_tokens_counts_prompt_and_every_possible_output() -> None:
    request = ChatRequest.from_prompt("x" * 400, system="y" * 40, max_tokens=100, n=3)
    assert estimate_tokens(request) == 110 + 300


def test_invalid_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        RateLimiter(requests_per_minute=0)
    with pytest.raises(ValueError):
        RateLimiter(tokens_per_minute=-5)
