"""Per-run accounting of paid calls: tokens, cost, cache hits, retries, failures."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass
class CallStats:
    calls: int = 0  # requests actually sent to a backend (cache misses)
    cache_hits: int = 0
    retries: int = 0
    failures: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    characters: int = 0  # billed characters (translation APIs bill by character)
    cost_usd: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **deltas: float) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)

    def merge(self, other: CallStats) -> None:
        self.add(**other.as_dict())

    def as_dict(self) -> dict[str, Any]:
        # not dataclasses.asdict: it deep-copies every field, and a lock cannot be copied
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "_lock"}

    def as_metadata(self, prefix: str = "") -> dict[str, float | int]:
        """Flat numbers for Dagster metadata (``llm_calls``, ``llm_cost_usd`` ...)."""
        out: dict[str, float | int] = {}
        for name, value in self.as_dict().items():
            out[f"{prefix}{name}"] = round(value, 6) if isinstance(value, float) else value
        return out
