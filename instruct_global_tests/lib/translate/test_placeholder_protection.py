"""Placeholders through MT, against deliberately hostile fake translators (pure functions)."""

from __future__ import annotations

import random
import re
from collections.abc import Callable

import pytest

from instruct_global.lib.translate.placeholder_protection import (
    ProtectedResult,
    RestoreError,
    placeholder_mismatches,
    placeholder_mismatches_against,
    protect,
    translate_with_protection,
    verify_placeholders,
)

_WORD = re.compile(r"[^\W\d_]{2,}")  # words of 2+ letters; a lone "V" in a sentinel is not a word
_SENTINELISH = re.compile(r"_+\s*[vV]\s*\d+\s*_+")


def _word(word: str) -> str:
    return word[::-1].lower() + "ẹ"  # a "translation" that visibly changes every word


def fluent(texts: list[str]) -> list[str | None]:
    """Translates words, copies everything else, including "{variable_1}" braces and digits."""
    return [_WORD.sub(lambda m: _word(m.group(0)), t) for t in texts]


def _per_text(fn: Callable[[str], str | None]) -> Callable[[list[str]], list[str | None]]:
    def translate(texts: list[str]) -> list[str | None]:
        return [fn(t) for t in texts]

    return translate


def _fluent_one(text: str) -> str:
    result = fluent([text])[0]
    assert result is not None
    return result


@_per_text
def reorders(text: str) -> str:
    return " ".join(reversed(_fluent_one(text).split()))


@_per_text
def drops_a_placeholder(text: str) -> str:
    out = _fluent_one(text)
    return (
        _SENTINELISH.sub("", out, count=1)
        if _SENTINELISH.search(out)
        else re.sub(r"\{variable_\d+\}", "", out, count=1)
    )


@_per_text
def duplicates_a_placeholder(text: str) -> str:
    out = _fluent_one(text)
    match = _SENTINELISH.search(out) or re.search(r"\{variable_\d+\}", out)
    return out + " " + match.group(0) if match else out


@_per_text
def mangles_braces(text: str) -> str:
    out = _fluent_one(text)
    return (
        out.replace("{variable_1}", "{variable_1")
        .replace("{variable_2}", "(variable_2)")
        .replace("{variable_3}", "｛variable_3｝")
    )


@_per_text
def spaces_and_lowercases_sentinels(text: str) -> str:
    return _SENTINELISH.sub(lambda m: "__ " + m.group(0).strip("_").lower() + " __", _fluent_one(text))


@_per_text
def translates_sentinels_too(text: str) -> str:
    """Perfect on words, but treats sentinels as text: "__V1__" becomes "vẹ 1"."""
    return _fluent_one(_SENTINELISH.sub(lambda m: "ve " + re.sub(r"\D", "", m.group(0)), text))


@_per_text
def errors_on_sentinels(text: str) -> str | None:
    return None if "__V" in text else _fluent_one(text)


@_per_text
def errors_on_keyword(text: str) -> str | None:
    return None if "boom" in text else _fluent_one(text)


@_per_text
def invents_a_placeholder(text: str) -> str:
    return _fluent_one(text) + " {variable_7}"


@_per_text
def invents_a_sentinel(text: str) -> str:
    return _fluent_one(text) + " __V9__"


@_per_text
def returns_empty(text: str) -> str:
    return "  "


SOURCE = "Write a short poem about {variable_1} for {variable_2}."


@pytest.mark.parametrize(
    ("translator", "strategy", "reason"),
    [
        (fluent, "sentinel", None),
        (reorders, "sentinel", None),
        (spaces_and_lowercases_sentinels, "sentinel", None),
        (drops_a_placeholder, "split", "placeholder_missing:{variable_1}"),
        (duplicates_a_placeholder, "split", "placeholder_duplicated:{variable_1}"),
        (translates_sentinels_too, "split", "placeholder_missing:{variable_1}"),
        (errors_on_sentinels, "split", "translation_failed"),
    ],
)
def test_which_strategy_rescues_which_hostile_translator(
    translator, strategy: str, reason: str | None
) -> None:
    (result,) = translate_with_protection([SOURCE], translator)
    assert result.strategy_used == strategy
    assert verify_placeholders(SOURCE, result.text) == (True, None)
    assert result.reason is None
    assert result.attempts == (1 if strategy == "sentinel" else 2)
    if reason is not None:
        assert result.failures == (f"sentinel:{reason}",)
    assert "ẹ" in result.text  # it really was translated
    assert not _SENTINELISH.search(result.text)


def test_raw_strategy_fails_on_brace_mangling_and_sentinel_rescues() -> None:
    source = "Compare {variable_1}, {variable_2} and {variable_3}."
    (result,) = translate_with_protection([source], mangles_braces, strategies=("raw", "sentinel"))
    assert result.strategy_used == "sentinel"
    assert result.failures[0].startswith("raw:placeholder_")
    # fluent translates the word "variable" itself, so raw fails there too
    (naive,) = translate_with_protection([source], fluent, strategies=("raw",))
    assert naive.text is None and naive.reason == "placeholder_mangled"


@pytest.mark.parametrize(
    ("translator", "reason"),
    [
        (invents_a_placeholder, "placeholder_invented:{variable_7}"),
        (errors_on_keyword, "translation_failed"),
        (returns_empty, "empty"),
    ],
)
def test_nothing_rescues_some_failures_and_the_reason_says_why(translator, reason: str) -> None:
    source = "Explain the boom of {variable_1} to a child."
    (result,) = translate_with_protection([source], translator)
    assert result == ProtectedResult(None, None, 2, reason, (f"sentinel:{reason}", f"split:{reason}"))


def test_a_leaked_sentinel_is_never_returned() -> None:
    (result,) = translate_with_protection([SOURCE], invents_a_sentinel)
    assert result.text is None
    assert result.failures == ("sentinel:sentinel_unknown:__V9__", "split:sentinel_residue")


def test_split_keeps_order_and_whitespace_and_never_loses_placeholders() -> None:
    source = "  {variable_1}: tell me about {variable_2}, then {variable_1} again!\n"
    plan = protect(source, "split")
    assert plan.texts_to_translate == ["tell me about", "then", "again!"]
    restored = plan.restore([f" {t.upper()} " for t in plan.texts_to_translate])
    assert restored == "  {variable_1}: TELL ME ABOUT {variable_2}, THEN {variable_1} AGAIN!\n"


def test_sentinel_numbers_occurrences_and_restores_tolerantly_without_guessing() -> None:
    plan = protect("From {variable_1} to {variable_2} and back to {variable_1}.", "sentinel")
    assert plan.texts_to_translate == ["From __V1__ to __V2__ and back to __V3__."]
    assert plan.restore(["__ v3 __ ___V2___ _V1_"]) == "{variable_1} {variable_2} {variable_1}"
    # A bare "V1" is not a sentinel any more: left alone, so verification fails (no guessing).
    restored = plan.restore(["V1 __V2__ __V3__"])
    assert verify_placeholders("{variable_1}{variable_2}{variable_1}", restored) == (
        False,
        "placeholder_missing:{variable_1}",
    )
    with pytest.raises(RestoreError, match="sentinel_unknown"):
        plan.restore(["__V1__ __V2__ __V3__ __V4__"])


def test_source_that_already_holds_a_sentinel_shape_goes_to_the_next_strategy() -> None:
    source = "Rename __V1__ to {variable_1}."
    with pytest.raises(RestoreError, match="sentinel_collision"):
        protect(source, "sentinel")
    (result,) = translate_with_protection([source], fluent)
    assert result.strategy_used == "split" and result.failures == ("sentinel:sentinel_collision",)
    assert "__V1__" in result.text and "{variable_1}" in result.text


@pytest.mark.parametrize("text", ["", "   ", "{variable_1}", "{variable_1}: {variable_2}?", "42 - 7"])
def test_nothing_to_translate_is_passed_through_without_a_call(text: str) -> None:
    def never(texts: list[str]) -> list[str | None]:
        raise AssertionError(f"translator called with {texts}")

    assert translate_with_protection([text], never) == [ProtectedResult(text, "passthrough", 0, None)]


def test_one_call_per_strategy_and_only_failures_are_retried() -> None:
    calls: list[list[str]] = []

    def recording(texts: list[str]) -> list[str | None]:
        calls.append(list(texts))
        return errors_on_keyword(texts)

    texts = ["Describe {variable_1}.", "A boom in {variable_1}.", "No placeholder here.", "{variable_2}"]
    results = translate_with_protection(texts, recording)
    assert len(calls) == 2
    assert calls[0] == ["Describe __V1__.", "A boom in __V1__.", "No placeholder here."]
    assert calls[1] == ["A boom in"]  # only the failed text, as split pieces
    assert [r.strategy_used for r in results] == ["sentinel", None, "sentinel", "passthrough"]
    assert results[1].reason == "translation_failed"


def test_translator_returning_the_wrong_number_of_items_is_a_bug() -> None:
    with pytest.raises(ValueError, match="returned 0 items for 1 texts"):
        translate_with_protection(["Hello {variable_1}"], lambda texts: [])


def test_unknown_strategy() -> None:
    with pytest.raises(ValueError, match="unknown placeholder strategy"):
        translate_with_protection(["x"], fluent, strategies=("sentinel", "magic"))
    with pytest.raises(ValueError, match="unknown placeholder strategy"):
        protect("x", "magic")


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("{variable_2} lorem {variable_1}", (True, None)),
        ("lorem ({variable_1}) {variable_2}", (True, None)),
        ("lorem {variable_1}", (False, "placeholder_missing:{variable_2}")),
        ("{variable_1} {variable_1} {variable_2}", (False, "placeholder_duplicated:{variable_1}")),
        ("{variable_1} {variable_2} {variable_7}", (False, "placeholder_invented:{variable_7}")),
        ("{variable_1 {variable_2}", (False, "placeholder_mangled")),
        ("{ variable_1} {variable_2}", (False, "placeholder_mangled")),
        ("｛variable_1｝ {variable_2}", (False, "placeholder_mangled")),
        ("(variable_1) {variable_2}", (False, "placeholder_mangled")),
        ("{Variable_1} {variable_2}", (False, "placeholder_mangled")),
        ("{{variable_1}} {variable_2}", (False, "placeholder_mangled")),
        ("{kigezo_1} {variable_2}", (False, "placeholder_mangled")),
        ("variable 1 {variable_2}", (False, "placeholder_mangled")),
        ("{variable_01} {variable_2}", (False, "placeholder_mangled")),  # not a placeholder: leading zero
        ("{variable_1}} {variable_2}", (False, "placeholder_mangled")),
    ],
)
def test_verify_placeholders(output: str, expected: tuple[bool, str | None]) -> None:
    assert verify_placeholders("Tell {variable_1} about {variable_2}.", output) == expected


def test_damage_already_in_the_source_is_not_blamed_on_the_output() -> None:
    source = "In variable 2 of the survey, {variable_1} answered."
    assert verify_placeholders(source, "Ní variable 2, {variable_1} dáhùn.") == (True, None)
    assert placeholder_mismatches(source, "Ní variable 2, variable 1 dáhùn.") == [
        "placeholder_mangled",
        "placeholder_missing:{variable_1}",
    ]


def test_expected_placeholders_as_names_or_braced_with_multiplicity() -> None:
    output = "{variable_1} àti {variable_1}"
    assert placeholder_mismatches_against(["variable_1", "{variable_1}"], output) == []
    assert placeholder_mismatches_against(["variable_1"], output) == ["placeholder_duplicated:{variable_1}"]
    with pytest.raises(ValueError, match="not a placeholder name"):
        placeholder_mismatches_against(["name"], output)


def test_no_hostile_mix_ever_returns_wrong_placeholders_as_success() -> None:
    rng = random.Random(7)
    hostile = [
        fluent, reorders, drops_a_placeholder, duplicates_a_placeholder, mangles_braces,
        spaces_and_lowercases_sentinels, translates_sentinels_too, errors_on_sentinels, errors_on_keyword,
        invents_a_placeholder, invents_a_sentinel, returns_empty,
    ]  # fmt: skip

    def chaos(texts: list[str]) -> list[str | None]:
        return [rng.choice(hostile)([t])[0] for t in texts]

    words = ["list", "three", "facts", "about", "boom", "the", "market", "in", "for", "and", "__V1__", "(x)"]
    texts = []
    for _ in range(300):
        parts = [
            rng.choice([*words, "{variable_1}", "{variable_2}", "{variable_3}"])
            for _ in range(rng.randint(1, 9))
        ]
        texts.append(" ".join(parts) + rng.choice([".", "?", ""]))
    results = translate_with_protection(texts, chaos, strategies=("raw", "sentinel", "split"))
    assert len(results) == len(texts)
    rescued = 0
    for source, result in zip(texts, results, strict=True):
        if result.text is None:
            assert result.reason and result.strategy_used is None
            continue
        rescued += result.strategy_used != "raw"
        assert verify_placeholders(source, result.text) == (True, None), (source, result)
    assert rescued > 50
