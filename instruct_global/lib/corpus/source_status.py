"""Telling a live source that failed from one that is truly empty.

A source whose every request failed must fail its step (so the stored partition is left as it
was), with how many requests failed and why; a source that answered but has nothing to give
succeeds with zero rows and a warning.
"""

from __future__ import annotations

from collections.abc import Mapping


class SourceUnavailableError(RuntimeError):
    """Nothing was read from a live source because its requests failed."""

    def __init__(self, source: str, why: str, failures: Mapping[str, int], last_error: str = "") -> None:
        total = sum(failures.values())
        reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(failures.items(), key=lambda kv: -kv[1]))
        message = (
            f"{source}: nothing was read because requests failed ({why}); "
            f"{total} request{'s' if total != 1 else ''} failed ({reasons or 'no detail'})"
        )
        if last_error:
            message += f"; last error: {last_error}"
        message += ". The stored partition was left as it was; check the URL, the network and robots.txt."
        super().__init__(message)
        self.source = source
        self.failures = dict(failures)
        self.total_failures = total
