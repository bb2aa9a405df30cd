"""Retry policy for provider calls: which failures are worth another try, and how long to wait.

Pure logic, shared by every backend: a backend turns its SDK's exception into a ``CallError`` and
the loop asks ``is_transient`` and ``backoff_delay``. The SDKs' own retries are switched off so
every retry is counted and honours the same policy.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Literal

ErrorKind = Literal["status", "timeout", "connection", "malformed", "other"]

# 408 request timeout, 409 conflict (lock contention), 429 rate limit, 5xx, 529 Anthropic overloaded
TRANSIENT_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 520, 522, 524, 529})
# error codes that come with a 429 but will not clear by waiting: the account is out of credit
# (OpenAI's code; Anthropic's error.details.error_code)
PERMANENT_CODES = frozenset(
    {
        "insufficient_quota",
        "billing_hard_limit_reached",
        "billing_not_active",
        "contract_spend_limit_reached",
        "enforced_spend_limit_reached",
        "linked_organization_spend_limit_reached",
        "linked_organization_billing_unavailable",
        "organization_on_hold",
    }
)
# the longest Retry-After we obey; a server asking for more is treated as this
MAX_RETRY_AFTER_SECONDS = 900.0


@dataclass(frozen=True)
class CallError:
    """A failed call, described without any SDK type."""

    kind: ErrorKind
    message: str
    status: int | None = None
    code: str | None = None  # provider error code or type, e.g. "insufficient_quota", "overloaded_error"
    retry_after: float | None = None  # seconds the server asked us to wait

    def describe(self) -> str:
        head = f"HTTP {self.status}" if self.status is not None else self.kind
        if self.code:
            head += f" {self.code}"
        return f"{head}: {self.message}"


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 6
    backoff_base_seconds: float = 1.0
    max_backoff_seconds: float = 60.0


def is_transient(error: CallError) -> bool:
    """True when waiting and trying again can succeed."""
    if error.code in PERMANENT_CODES:
        return False
    if error.kind in ("timeout", "connection", "malformed"):
        return True
    if error.kind == "status" and error.status is not None:
        return error.status in TRANSIENT_STATUSES or error.status >= 500
    return False


def backoff_delay(
    attempt: int, policy: RetryPolicy, retry_after: float | None = None, rng: random.Random | None = None
) -> float:
    """Seconds to wait before retry number ``attempt`` (0 for the first retry).

    A server's Retry-After wins (plus up to 10 % jitter so waiting clients do not return in
    lockstep); otherwise exponential backoff with "equal jitter": half the step fixed, half random.
    """
    rand = (rng or random).random()
    if retry_after is not None and retry_after >= 0:
        wait = min(retry_after, MAX_RETRY_AFTER_SECONDS)
        return wait + wait * 0.1 * rand
    step = min(policy.max_backoff_seconds, policy.backoff_base_seconds * (2**attempt))
    return step / 2 + step / 2 * rand


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or HTTP-date); None if absent/garbled."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    return retry_after_seconds(lowered.get("retry-after"), now)
