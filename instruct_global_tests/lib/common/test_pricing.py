"""Cost of a call from the price table."""

from __future__ import annotations

import logging

import pytest

from instruct_global.lib.common.pricing import ModelPrice, call_cost, price_for


def test_exact_and_dated_snapshot_prices() -> None:
    assert price_for("gpt-4o-mini") == ModelPrice(0.15, 0.60)
    assert price_for("gpt-4o-mini-2024-07-18") == ModelPrice(0.15, 0.60)  # not gpt-4o's price
    assert price_for("gpt-4o-2024-08-06") == ModelPrice(2.50, 10.00)
    assert price_for("claude-sonnet-4-5-20250929") == ModelPrice(3.00, 15.00)
    assert price_for("gpt-4omni") is None  # a prefix only counts up to a "-"


def test_cost_and_batch_discount() -> None:
    assert call_cost("gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(0.75)
    assert call_cost("gpt-4o-mini", 1_000_000, 1_000_000, batch=True) == pytest.approx(0.375)
    assert call_cost("claude-haiku-4-5", 2000, 1000) == pytest.approx(0.002 + 0.005)


def test_overrides_win_over_the_table() -> None:
    overrides = {"gpt-4o-mini": ModelPrice(1.0, 1.0), "my-llama": ModelPrice(0.1, 0.2)}
    assert call_cost("gpt-4o-mini", 1_000_000, 0, overrides=overrides) == pytest.approx(1.0)
    assert call_cost("my-llama", 1_000_000, 1_000_000, overrides=overrides) == pytest.approx(0.3)


def test_unknown_model_costs_zero_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="instruct_global.lib.common.pricing"):
        assert call_cost("mystery-model-xyz", 1000, 1000) == 0.0
        assert call_cost("mystery-model-xyz", 1000, 1000) == 0.0
    assert sum("mystery-model-xyz" in r.getMessage() for r in caplog.records) == 1
