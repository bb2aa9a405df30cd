"""Client-side rate limiting for requests/minute and tokens/minute, plus the providers' own hints.

Every call books a start time before it is sent. Calls are paced evenly (one request every
60/rpm seconds; a call estimated at T tokens holds the token budget for T*60/tpm seconds), which
is what providers enforce: their per-minute limits are checked over shorter windows, so bursting a
minute's allowance at once still earns 429s. Rate-limit headers sent back by the server (remaining
requests/tokens and when they reset) pause new calls when the server says the budget is spent.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime

from instruct_global.lib.common.llm_types import ChatRequest

CHARS_PER_TOKEN = 4  # rough for English; over-estimates are harmless here (they only slow us)

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")

# (limit, remaining, reset) header names: OpenAI first, then Anthropic
_REQUEST_HEADERS = (
    ("x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"),
    (
        "anthropic-ratelimit-requests-limit",
        "anthropic-ratelimit-requests-remaining",
        "anthropic-ratelimit-requests-reset",
    ),
)
_TOKEN_HEADERS = (
    ("x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"),
    (
        "anthropic-ratelimit-tokens-limit",
        "anthropic-ratelimit-tokens-remaining",
        "anthropic-ratelimit-tokens-reset",
    ),
    (
        "anthropic-ratelimit-input-tokens-limit",
        "anthropic-ratelimit-input-tokens-remaining",
        "anthropic-ratelimit-input-tokens-reset",
    ),
)


def estimate_tokens(request: ChatRequest) -> int:
    """What a provider counts against tokens/minute: the prompt plus the most it may generate."""
    chars = sum(len(m.content) for m in request.messages)
    return math.ceil(chars / CHARS_PER_TOKEN) + request.max_tokens * max(1, request.n)


def parse_reset(value: str, now_wall: float | None = None) -> float | None:
    """Seconds until a limit resets: ``"1s"``, ``"6m0s"``, ``"20ms"``, ``"0.5"`` or an RFC 3339 time."""
    value = value.strip()
    if not value:
        return None
    parts = _DURATION_PART.findall(value)
    if parts and "".join(n + u for n, u in parts) == value:
        scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
        return sum(float(n) * scale[u] for n, u in parts)
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now_wall is None else now_wall))


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(float(value))
    except (ValueError, OverflowError):  # "junk", "inf", "1e999"
        return None


class RateLimiter:
    """Thread-safe pacing of calls. ``None`` limits mean no client-side pacing of that kind."""

    def __init__(
        self,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if requests_per_minute is not None and requests_per_minute <= 0:
            raise ValueError("requests_per_minute must be positive")
        if tokens_per_minute is not None and tokens_per_minute <= 0:
            raise ValueError("tokens_per_minute must be positive")
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_request_at = -math.inf
        self._next_tokens_at = -math.inf
        self._paused_until = -math.inf
        # the server's last word on tokens left, valid until it resets
        self._server_tokens_left: int | None = None
        self._server_tokens_reset_at = -math.inf
        self._server_tokens_per_second: float | None = None

    def reserve(self, tokens: int = 0) -> float:
        """Book the next slot for a call of ``tokens``; return how long to wait before sending it."""
        with self._lock:
            now = self._clock()
            start = max(now, self._next_request_at, self._next_tokens_at, self._paused_until)
            if self._server_tokens_left is not None:
                if start >= self._server_tokens_reset_at:
                    self._server_tokens_left = None
                elif tokens > self._server_tokens_left:
                    # wait until the deficit has refilled (at the limit's rate) or the window resets
                    wait = self._server_tokens_reset_at - start
                    if self._server_tokens_per_second:
                        wait = min(wait, (tokens - self._server_tokens_left) / self._server_tokens_per_second)
                    start += max(0.0, wait)
                    # the refill is this call's; later calls queue behind it at the same rate
                    # instead of all going at once into a budget the server said is spent
                    self._server_tokens_left = 0
                    self._paused_until = max(self._paused_until, start)
                else:
                    self._server_tokens_left -= tokens
            if self.requests_per_minute:
                self._next_request_at = start + 60.0 / self.requests_per_minute
            if self.tokens_per_minute and tokens > 0:
                self._next_tokens_at = start + tokens * 60.0 / self.tokens_per_minute
            return max(0.0, start - now)

    def acquire(self, tokens: int = 0) -> float:
        """Block until a call of ``tokens`` may be sent; return the seconds waited."""
        delay = self.reserve(tokens)
        if delay > 0:
            self._sleep(delay)
        return delay

    def pause_for(self, seconds: float) -> None:
        """Hold every new call for ``seconds`` (a 429 with Retry-After applies to the whole key)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + max(0.0, seconds))

    def observe_headers(self, headers: Mapping[str, str] | None, now_wall: float | None = None) -> None:
        """Read the provider's remaining/reset headers after a response."""
        if not headers:
            return
        lowered = {k.lower(): v for k, v in headers.items()}
        for limit_name, remaining_name, reset_name in _REQUEST_HEADERS:
            remaining = _int_header(lowered, remaining_name)
            reset = parse_reset(lowered.get(reset_name, ""), now_wall)
            if remaining is None or remaining > 0 or not reset:
                continue
            limit = _int_header(lowered, limit_name)
            # one request frees up every 60/limit seconds; the reset time is when all of them have
            self.pause_for(min(reset, 60.0 / limit) if limit else reset)
        for limit_name, remaining_name, reset_name in _TOKEN_HEADERS:
            remaining = _int_header(lowered, remaining_name)
            reset = parse_reset(lowered.get(reset_name, ""), now_wall)
            if remaining is None or reset is None:
                continue
            limit = _int_header(lowered, limit_name)
            with self._lock:
                if self._server_tokens_left is None or remaining < self._server_tokens_left:
                    self._server_tokens_left = remaining
                    self._server_tokens_reset_at = self._clock() + reset
                    self._server_tokens_per_second = limit / 60.0 if limit else None
