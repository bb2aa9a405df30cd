"""USD prices of hosted models per million tokens, and the cost of one call.

Prices change: these are list prices for standard (non-batch) use as of late 2025, kept here so a
run can show its cost; override them per model in the resource config (``price_overrides``).
Batch APIs bill half. Dated snapshots (``gpt-4o-2024-08-06``, ``claude-sonnet-4-5-20250929``)
take the price of their longest matching prefix. An unknown model costs 0, with one warning.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)

BATCH_DISCOUNT = 0.5


@dataclass(frozen=True)
class ModelPrice:
    input_per_million: float
    output_per_million: float


DEFAULT_PRICES: dict[str, ModelPrice] = {
    # OpenAI
    "gpt-4o": ModelPrice(2.50, 10.00),
    "gpt-4o-mini": ModelPrice(0.15, 0.60),
    "gpt-4.1": ModelPrice(2.00, 8.00),
    "gpt-4.1-mini": ModelPrice(0.40, 1.60),
    "gpt-4.1-nano": ModelPrice(0.10, 0.40),
    "gpt-5": ModelPrice(1.25, 10.00),
    "gpt-5-mini": ModelPrice(0.25, 2.00),
    "gpt-5-nano": ModelPrice(0.05, 0.40),
    "o4-mini": ModelPrice(1.10, 4.40),
    # Anthropic
    "claude-opus-4-1": ModelPrice(15.00, 75.00),
    "claude-opus-4-5": ModelPrice(5.00, 25.00),
    "claude-sonnet-4": ModelPrice(3.00, 15.00),
    "claude-sonnet-4-5": ModelPrice(3.00, 15.00),
    "claude-haiku-4-5": ModelPrice(1.00, 5.00),
    "claude-3-5-haiku": ModelPrice(0.80, 4.00),
}

_warned: set[str] = set()
_warned_lock = threading.Lock()


def price_for(model: str, overrides: Mapping[str, ModelPrice] | None = None) -> ModelPrice | None:
    """The price of ``model``: an override first, then the table; exact name, else longest prefix."""
    for table in (overrides or {}, DEFAULT_PRICES):
        if model in table:
            return table[model]
        prefixes = [name for name in table if model.startswith(name + "-")]
        if prefixes:
            return table[max(prefixes, key=len)]
    return None


def call_cost(
    model: str,
    input_tokens: int,
    output_tokens: int,
    *,
    batch: bool = False,
    overrides: Mapping[str, ModelPrice] | None = None,
) -> float:
    """USD for one call; 0 (and a warning once per model) when the model has no known price."""
    price = price_for(model, overrides)
    if price is None:
        with _warned_lock:
            first = model not in _warned
            _warned.add(model)
        if first:
            log.warning("no price known for model %r: its cost counts as 0 (set price_overrides)", model)
        return 0.0
    cost = (input_tokens * price.input_per_million + output_tokens * price.output_per_million) / 1_000_000
    return cost * BATCH_DISCOUNT if batch else cost


# OpenAI supervised fine-tuning: USD per million *training* tokens (list prices, late 2025).
# The bill is epochs × tokens in the training file (see lib/export/openai_checks.py).
FINE_TUNING_TRAINING_PER_MILLION: dict[str, float] = {
    "gpt-4.1": 25.00,
    "gpt-4.1-mini": 5.00,
    "gpt-4.1-nano": 1.50,
    "gpt-4o": 25.00,
    "gpt-4o-mini": 3.00,
    "gpt-3.5-turbo": 8.00,
}


def training_price_per_million(model: str, overrides: Mapping[str, float] | None = None) -> float | None:
    """Training price of a fine-tunable model: exact name, else its longest dated-snapshot prefix."""
    for table in (overrides or {}, FINE_TUNING_TRAINING_PER_MILLION):
        if model in table:
            return table[model]
        prefixes = [name for name in table if model.startswith(name + "-")]
        if prefixes:
            return table[max(prefixes, key=len)]
    return None


def fine_tuning_cost(model: str, charged_tokens: int, overrides: Mapping[str, float] | None = None) -> float | None:
    """USD for ``charged_tokens`` training tokens, None when the model has no known training price."""
    price = training_price_per_million(model, overrides)
    return None if price is None else charged_tokens * price / 1_000_000
