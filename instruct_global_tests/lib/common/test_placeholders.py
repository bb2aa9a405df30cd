"""{variable_N} placeholders: finding, checking and filling them, including hostile text."""

from __future__ import annotations

import time

import pytest

from instruct_global.lib.common.placeholders import (
    expected_names,
    fill_placeholders,
    find_placeholders,
    placeholder_name,
    placeholder_problems,
)

V123 = expected_names(3)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("", []),
        ("no placeholders at all", []),
        ("{variable_1}", ["variable_1"]),
        ("Q: {variable_2} then {variable_1} and {variable_2} again", ["variable_2", "variable_1"]),
        ("{variable_1}{variable_2}", ["variable_1", "variable_2"]),
        ("{variable_10} {variable_123}", ["variable_10", "variable_123"]),
        ("Ṣé {variable_1} ni? ሰላም {variable_2}።", ["variable_1", "variable_2"]),
        # Not placeholders: N < 1, leading zero, doubled or partial braces, blanks, case.
        ("{variable_0} {variable_01} {{variable_1}} {variable_1 { variable_2 } {Variable_3}", []),
        ("variable_1 {variable_} {variable} {variables}", []),
    ],
)
def test_find_placeholders(text: str, found: list[str]) -> None:
    assert find_placeholders(text) == found


def test_expected_names() -> None:
    assert expected_names(3) == {"variable_1", "variable_2", "variable_3"}
    assert expected_names(0) == set()


@pytest.mark.parametrize("raw", ["variable_2", "{variable_2}", " {variable_2} "])
def test_placeholder_name_accepts_bare_or_braced(raw: str) -> None:
    assert placeholder_name(raw) == "variable_2"


@pytest.mark.parametrize("raw", ["name", "variable_0", "{variable_01}", "{{variable_1}}", ""])
def test_placeholder_name_rejects_others(raw: str) -> None:
    with pytest.raises(ValueError, match="not a placeholder name"):
        placeholder_name(raw)


@pytest.mark.parametrize(
    ("texts", "problems"),
    [
        (["Answer {variable_1} using {variable_2}", "", "{variable_3}"], []),
        (["Answer {variable_1}", "{variable_3}"], ["missing_placeholder:{variable_2}"]),
        (["nothing here"], ["missing_placeholder:{variable_1}", "missing_placeholder:{variable_2}",
                            "missing_placeholder:{variable_3}"]),
        (["{variable_1} {variable_2} {variable_3} {variable_9}"], ["invented_placeholder:{variable_9}"]),
        (["{variable_1} {variable_2} {variable_3} Dear {name},"], ["invented_placeholder:{name}"]),
        (["{variable_1} {variable_2} {variable_3} {{answer}}"], ["invented_placeholder:{answer}"]),
        (["{variable_1 {variable_2} {variable_3}"],
         ["malformed_placeholder:{variable_1", "missing_placeholder:{variable_1}"]),
        (["{{variable_1}} {variable_2} {variable_3}"],
         ["malformed_placeholder:{{variable_1}}", "missing_placeholder:{variable_1}"]),
        (["{ variable_1 } {variable_2} {variable_3}"],
         ["malformed_placeholder:{ variable_1 }", "missing_placeholder:{variable_1}"]),
        (["variable_1} {variable_2} {variable_3}"],
         ["malformed_placeholder:variable_1}", "missing_placeholder:{variable_1}"]),
        (["{variable_1}} {variable_2} {variable_3}"],
         ["malformed_placeholder:{variable_1}}", "missing_placeholder:{variable_1}"]),
        (["[variable_1] {variable_2} {variable_3}"],
         ["malformed_placeholder:variable_1", "missing_placeholder:{variable_1}"]),
        (["{Variable_1} {variable_2} {variable_3}"],
         ["malformed_placeholder:{Variable_1}", "missing_placeholder:{variable_1}"]),
        (["{variable_01} {variable_2} {variable_3}"],
         ["malformed_placeholder:{variable_01}", "missing_placeholder:{variable_1}"]),
        (["{variable_1} {variable_2} {variable_3} {variable_0}"], ["malformed_placeholder:{variable_0}"]),
        # Prose about variables is fine; so is a JSON-like brace that is not a single name.
        (["In maths a variable is unknown; variable 2 too. {variable_1}{variable_2}{variable_3}",
          'Return {"a": 1} as {variable_1}'], []),
    ],
)  # fmt: skip
def test_placeholder_problems(texts: list[str], problems: list[str]) -> None:
    assert placeholder_problems(texts, V123) == problems


def test_placeholder_problems_accepts_braced_expected_names_and_lists_each_problem_once() -> None:
    texts = ["{variable_9} {variable_9}", "{variable_9} {variable_1}"]
    assert placeholder_problems(texts, {"{variable_1}"}) == ["invented_placeholder:{variable_9}"]


def test_placeholder_problems_with_no_expected_placeholders() -> None:
    assert placeholder_problems(["plain text"], set()) == []
    assert placeholder_problems(["{variable_1}"], set()) == ["invented_placeholder:{variable_1}"]


def test_placeholder_problems_rejects_bad_expected_names() -> None:
    with pytest.raises(ValueError):
        placeholder_problems(["x"], {"question"})


def test_hostile_brace_runs_are_fast_and_reported_briefly() -> None:
    text = "{" * 200_000 + "variable_1" + "}" * 100_000 + " variable" * 20_000 + "{a" * 50_000
    start = time.perf_counter()
    problems = placeholder_problems([text], {"variable_1"})
    assert time.perf_counter() - start < 2.0
    assert problems[0].startswith("malformed_placeholder:{{{")
    assert all(len(p) < 80 for p in problems)


@pytest.mark.parametrize(
    ("text", "values", "filled"),
    [
        ("Q: {variable_1}\nA: {variable_2}", {"variable_1": "Kí ni?", "variable_2": "Ọ̀yọ́"}, "Q: Kí ni?\nA: Ọ̀yọ́"),
        ("{variable_1}{variable_1}", {"variable_1": "ab"}, "abab"),
        # A value holding a placeholder, braces or regex escapes stays literal.
        ("{variable_1} / {variable_2}", {"variable_1": "{variable_2}", "variable_2": "x"}, "{variable_2} / x"),
        ("{variable_1}", {"variable_1": r"\1 \g<0> $1 {0} {}"}, r"\1 \g<0> $1 {0} {}"),
        ("{variable_1}", {"variable_1": ""}, ""),
        # Only exact placeholders are replaced; extra values are ignored.
        ("{{variable_1}} {variable_1 } {variable_1}", {"variable_1": "v", "variable_7": "z"},
         "{{variable_1}} {variable_1 } v"),
        ("no placeholders", {}, "no placeholders"),
        ("{variable_1}", {"variable_1": 7}, "7"),
    ],
)  # fmt: skip
def test_fill_placeholders(text: str, values: dict, filled: str) -> None:
    assert fill_placeholders(text, values) == filled


def test_fill_missing_value_raises_keyerror_naming_it() -> None:
    with pytest.raises(KeyError, match="variable_2"):
        fill_placeholders("{variable_1} {variable_2}", {"variable_1": "a"})


def test_fill_none_value_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"\{variable_1\}"):
        fill_placeholders("{variable_1}", {"variable_1": None})  # type: ignore[dict-item]
