"""Category names, the default mix and exact largest-remainder quotas."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest

from instruct_global.lib.common.categories import (
    CATEGORIES,
    CATEGORY_DESCRIPTIONS,
    DEFAULT_MIX,
    UnknownCategoryError,
    exact_quotas,
    is_category,
    normalise_category,
    normalise_mix,
    restrict_mix,
)


def test_ten_categories_with_descriptions() -> None:
    assert len(CATEGORIES) == len(set(CATEGORIES)) == 10
    assert set(CATEGORY_DESCRIPTIONS) == set(CATEGORIES)


def test_default_mix_sums_to_one_and_keeps_instructgpt_order() -> None:
    assert list(DEFAULT_MIX) == list(CATEGORIES)
    assert math.isclose(sum(DEFAULT_MIX.values()), 1.0)
    assert all(v > 0 for v in DEFAULT_MIX.values())
    assert max(DEFAULT_MIX, key=DEFAULT_MIX.__getitem__) == "generation"
    assert DEFAULT_MIX["question-answer"] > DEFAULT_MIX["brainstorming"] > DEFAULT_MIX["chat"]
    assert DEFAULT_MIX["rewrite"] > DEFAULT_MIX["summarisation"] > DEFAULT_MIX["extraction"]


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("generation", "generation"),
        ("Creative Writing", "generation"),
        ("question-answer", "question-answer"),
        ("question_answer", "question-answer"),
        ("Question Answering", "question-answer"),
        ("open_qa", "question-answer"),
        ("closed-QA", "question-answer"),
        ("QA", "question-answer"),
        ("summarization", "summarisation"),
        ("Summarisation", "summarisation"),
        ("summary", "summarisation"),
        ("multiple_choice", "multiple-choice"),
        ("Multiple Choice", "multiple-choice"),
        ("MCQ", "multiple-choice"),
        ("brainstorm", "brainstorming"),
        ("dialogue", "chat"),
        ("paraphrase", "rewrite"),
        ("translate", "translation"),
        ("information_extraction", "extraction"),
        ("  classification  ", "classification"),
    ],
)
def test_normalise_category_accepts_common_spellings(raw: str, canonical: str) -> None:
    assert normalise_category(raw) == canonical
    assert is_category(raw)


@pytest.mark.parametrize("raw", ["", "poetry", "qa2", "generations!", "multiple", "✓"])
def test_unknown_category_names_the_known_ones(raw: str) -> None:
    with pytest.raises(UnknownCategoryError, match="known categories: generation"):
        normalise_category(raw)
    assert not is_category(raw)


def test_agrees_with_the_source_records_normaliser() -> None:
    # lib/source_records.py keeps its own (smaller) alias table; every spelling it accepts must
    # map to the same category here, so a dataset's category and a quota key always line up.
    from instruct_global.lib.corpus import source_records

    assert tuple(source_records.CATEGORIES) == CATEGORIES
    spellings = [*CATEGORIES, "summarization", "Summary", "question_answering", "questions answers", "QA",
                 "multiplechoice", "MCQ", "brainstorm", "rewriting", "conversation", "open generation",
                 "information_extraction", "Multiple_Choice", "Question-Answer"]  # fmt: skip
    for raw in spellings:
        theirs = source_records.normalise_category(raw)
        if theirs is not None:
            assert normalise_category(raw) == theirs, raw


def test_non_string_category_is_rejected() -> None:
    with pytest.raises(UnknownCategoryError):
        normalise_category(3)  # type: ignore[arg-type]


def test_normalise_mix_fills_missing_categories_with_zero() -> None:
    mix = normalise_mix({"summarization": 1, "open_qa": 3})
    assert list(mix) == list(CATEGORIES)
    assert mix["summarisation"] == 0.25 and mix["question-answer"] == 0.75
    assert mix["generation"] == 0.0


@pytest.mark.parametrize(
    ("mix", "message"),
    [
        ({"poetry": 1.0}, "unknown task category 'poetry'"),
        ({"generation": -0.1, "chat": 1}, "must not be negative"),
        ({"generation": 0, "chat": 0.0}, "no positive weight"),
        ({}, "no positive weight"),
        ({"generation": float("nan")}, "must be finite"),
        ({"generation": float("inf")}, "must be finite"),
        ({"generation": "0.5"}, "must be a number"),
        ({"generation": True}, "must be a number"),
        ({"summarization": 1, "summarisation": 2}, "names 'summarisation' twice"),
    ],
)
def test_normalise_mix_rejects_bad_mixes(mix: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalise_mix(mix)


def test_restrict_mix_renormalises_over_allowed() -> None:
    mix = restrict_mix(DEFAULT_MIX, ["classification", "open_qa"])
    assert math.isclose(sum(mix.values()), 1.0)
    assert {k for k, v in mix.items() if v} == {"classification", "question-answer"}
    with pytest.raises(ValueError, match="no weight"):
        restrict_mix({"generation": 1}, ["chat"])


def _random_mix(rng: random.Random) -> dict[str, float]:
    names = rng.sample(CATEGORIES, rng.randint(1, len(CATEGORIES)))
    mix = {n: rng.choice([0.0, rng.random(), rng.randint(1, 9), 1e-9, 1e9]) for n in names}
    mix[names[0]] = rng.random() + 0.01  # at least one positive share
    return mix


_PAIRS = [(DEFAULT_MIX, t) for t in (0, 1, 2, 3, 7, 9, 10, 11, 99, 100, 101, 997, 10_000)]
_PAIRS += [(_random_mix(random.Random(seed)), random.Random(seed).choice([0, 1, 3, 5, 9, 37, 1000]))
           for seed in range(60)]  # fmt: skip


@pytest.mark.parametrize(("mix", "total"), _PAIRS)
def test_quotas_sum_exactly_and_stay_within_one_of_the_exact_share(mix: dict, total: int) -> None:
    quotas = exact_quotas(mix, total)
    assert list(quotas) == list(CATEGORIES)
    assert sum(quotas.values()) == total
    shares = normalise_mix(mix)
    weights = {k: Fraction(v) for k, v in normalise_mix(mix).items()}
    weight_sum = sum(weights.values())
    for name, q in quotas.items():
        exact = weights[name] * total / weight_sum
        assert math.floor(exact) <= q <= math.ceil(exact), (name, q, exact)
        if shares[name] == 0:
            assert q == 0


def test_quotas_for_total_below_number_of_categories_go_to_largest_shares() -> None:
    # 3 x shares: generation 1.37, question-answer 0.37, brainstorming 0.34 ...: generation keeps
    # its floor of 1 and the two seats left go to the largest remainders (0.372 and 0.369).
    quotas = exact_quotas(DEFAULT_MIX, 3)
    assert {k: v for k, v in quotas.items() if v} == {"generation": 2, "question-answer": 1}
    assert {k: v for k, v in exact_quotas(DEFAULT_MIX, 1).items() if v} == {"generation": 1}
    assert exact_quotas(DEFAULT_MIX, 0) == dict.fromkeys(CATEGORIES, 0)


def test_quotas_break_ties_by_category_order() -> None:
    equal = dict.fromkeys(CATEGORIES, 1.0)
    quotas = exact_quotas(equal, 3)
    assert [k for k, v in quotas.items() if v] == list(CATEGORIES[:3])
    # Listing the mix in another order changes nothing.
    assert exact_quotas(dict(reversed(list(equal.items()))), 3) == quotas
    assert exact_quotas({"chat": 1, "rewrite": 1}, 1) == {**dict.fromkeys(CATEGORIES, 0), "chat": 1}


def test_quotas_are_exact_where_floats_would_wobble() -> None:
    # 0.1 + 0.2 != 0.3 in floats; fractions make the split 1:2 -> 1 and 2 exactly.
    quotas = exact_quotas({"chat": 0.1, "rewrite": 0.2}, 3)
    assert quotas["chat"] == 1 and quotas["rewrite"] == 2


def test_quotas_match_a_hand_worked_hamilton_apportionment() -> None:
    # 100 items over percentages summing to 99.9: exact shares 45.65, 12.41, 11.21, 8.41, 4.20,
    # 3.504, 2.60, 6.61, 3.504, 1.90. Floors sum to 95; the 5 left go to the largest remainders:
    # extraction .90, generation .65, rewrite .61, multiple-choice .60, then classification,
    # which ties with translation (both 3.5%) and wins by coming first in CATEGORIES.
    assert exact_quotas(DEFAULT_MIX, 100) == {
        "generation": 46, "question-answer": 12, "brainstorming": 11, "chat": 8,
        "summarisation": 4, "classification": 4, "multiple-choice": 3, "rewrite": 7,
        "translation": 3, "extraction": 2,
    }  # fmt: skip


@pytest.mark.parametrize("total", [-1, 2.5, "10", True])
def test_quotas_reject_bad_totals(total: object) -> None:
    with pytest.raises(ValueError, match="total"):
        exact_quotas(DEFAULT_MIX, total)  # type: ignore[arg-type]
