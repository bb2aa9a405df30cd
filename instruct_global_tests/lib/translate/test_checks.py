"""Output checks on machine translations, with hostile outputs and an injected fake language ID."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from instruct_global.lib.translate.checks import (
    TranslationCheckConfig,
    check_empty,
    check_error_text,
    check_length_ratio,
    check_repetition,
    check_translation,
    check_untranslated,
    check_wrong_language,
    is_degenerate,
)

EN = "Write a short poem about the rainy season in {variable_1}."
YO = "Kọ ewì kúkúrú kan nípa àsìkò òjò ní {variable_1}."


def fake_identify(text: str) -> tuple[str, float]:
    """English when it sees English function words, else Yoruba; unsure on mixed text."""
    words = text.lower().split()
    english = sum(w in {"the", "a", "about", "write", "in", "of", "and", "is"} for w in words)
    if english >= 2:
        return "eng", 0.95
    if english == 1:
        return "eng", 0.3
    return "yor", 0.9


@pytest.mark.parametrize(
    ("output", "ok"),
    [
        (YO, True),
        ("", False),
        ("   \n", False),
        (None, False),
        ("{variable_1}", False),
        ("{variable_1} .", False),
    ],
)
def test_empty(output: str | None, ok: bool) -> None:
    assert check_empty(EN, output) == (ok, None if ok else "empty")


def test_empty_source_may_stay_empty() -> None:
    assert check_empty("", "") == (True, None)
    assert check_empty("{variable_1}", "{variable_1}") == (True, None)


@pytest.mark.parametrize(
    ("source", "output", "ok"),
    [
        (EN, YO, True),
        (EN, "write a short poem about the RAINY season in {variable_1}", False),  # case/punct only
        (EN, "Write a short poem, about the rainy season in!", False),  # placeholder ignored
        ("Lagos", "Lagos", True),  # names are exempt
        ("2024", "2024", True),
        ("Barack Obama", "Barack Obama", True),
        ("Yes or no?", "Yes or no?", False),
    ],
)
def test_untranslated(source: str, output: str, ok: bool) -> None:
    assert check_untranslated(source, output) == (ok, None if ok else "untranslated")


def test_untranslated_exemption_is_configurable() -> None:
    strict = TranslationCheckConfig(untranslated_min_words=1)
    assert check_untranslated("Lagos", "Lagos", strict) == (False, "untranslated")


@pytest.mark.parametrize(
    ("output", "ok"),
    [
        (YO, True),
        ("Write a short poem about the rainy season in {variable_1}.", False),
        ("The rain.", True),  # too short for language ID: not judged
        ("Kọ ewì kúkúrú kan nípa the òjò ní àsìkò yìí", True),  # unsure verdict: not judged
    ],
)
def test_wrong_language(output: str, ok: bool) -> None:
    assert check_wrong_language(output, "yor", fake_identify) == (ok, None if ok else "wrong_language")


def test_wrong_language_without_identifier_and_with_an_object_verdict() -> None:
    assert check_wrong_language("The whole thing is in English and long enough.", "yor", None) == (True, None)

    @dataclass
    class Verdict:
        lang: str
        score: float

    assert check_wrong_language(YO, "yor", lambda text: Verdict("hau", 0.99)) == (False, "wrong_language")
    assert check_wrong_language(YO, "yor", lambda text: Verdict("und", 0.0)) == (True, None)


@pytest.mark.parametrize(
    ("source", "output", "ok"),
    [
        (EN, YO, True),
        (EN, "Ewì.", False),  # far too short
        (EN, YO * 5, False),  # far too long
        (
            "Say hi to {variable_1}",
            "Ẹ kí {variable_1} fún mi ní kíákíá, kí ẹ sì máa bọ̀ lọ́la",
            True,
        ),  # short source
    ],
)
def test_length_ratio(source: str, output: str, ok: bool) -> None:
    assert check_length_ratio(source, output) == (ok, None if ok else "length_ratio")


def test_length_ratio_bounds_are_configurable() -> None:
    loose = TranslationCheckConfig(length_ratio_min=0.05, length_ratio_max=10)
    assert check_length_ratio(EN, "Ewì.", loose) == (True, None)


@pytest.mark.parametrize(
    "output",
    [
        "ní ní ní ní ní ní ní ní",
        "the the the the",
        "Mo fẹ́ lọ sí ọjà mo fẹ́ lọ mo fẹ́ lọ mo fẹ́ lọ mo fẹ́ lọ",
        "Ewì nípa òjò " + "ààààààààààààà",
        "hahahahahahahahahaha",
        "Òjò rọ̀ ní Èkó. Òjò rọ̀ ní Èkó. Òjò rọ̀ ní Èkó. Àwọn ọmọ ṣeré. Òjò rọ̀ ní Èkó.",
    ],
)
def test_repetition_catches_degenerate_loops(output: str) -> None:
    assert check_repetition(EN, output) == (False, "repetition")


@pytest.mark.parametrize(
    "output",
    [
        YO,
        "Pole pole ndio mwendo.",  # two repeats are language, not a loop
        "Iye rẹ̀ jẹ́ 1000000000 náírà.",
        "def f():\n        return 1",
        "Ẹ kú àárọ̀, ṣé dáadáa ni? Mo wà dáadáa, ẹ ṣé.",
    ],
)
def test_repetition_leaves_normal_text_alone(output: str) -> None:
    assert check_repetition(EN, output) == (True, None)


def test_repetition_in_the_source_may_be_repeated() -> None:
    assert check_repetition("yes yes yes yes", "bẹ́ẹ̀ni bẹ́ẹ̀ni bẹ́ẹ̀ni bẹ́ẹ̀ni") == (True, None)
    assert check_repetition("-------- Title --------", "-------- Àkọlé --------") == (True, None)


def test_repetition_is_fast_on_long_degenerate_output() -> None:
    start = time.perf_counter()
    assert is_degenerate("ní " * 20000)
    assert not is_degenerate(" ".join(f"ọ̀rọ̀{i}" for i in range(20000)))
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize(
    "output",
    [
        "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
        "<!DOCTYPE html><p>Service</p>",
        "Error 500: the server encountered an internal error",
        "HTTP 429 Too Many Requests",
        'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: boom',
        "Rate limit exceeded, please retry later.",
        "You exceeded your current quota, please check your plan.",
        '{"error": {"code": 429, "message": "Resource has been exhausted"}}',
        "RESOURCE_EXHAUSTED: Quota exceeded for quota metric",
        "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB",
    ],
)
def test_error_text(output: str) -> None:
    assert check_error_text(EN, output) == (False, "error_text")


def test_error_text_that_is_in_the_source_is_content() -> None:
    source = "Explain what <html> means and what a 404 error is."
    assert check_error_text(source, "Ṣàlàyé ohun tí <html> túmọ̀ sí àti ohun tí àṣìṣe 404 jẹ́.") == (True, None)
    assert check_error_text(source, "<html> ... Error 500") == (False, "error_text")


def test_check_translation_passes_a_good_translation() -> None:
    assert check_translation(EN, YO, lang_key="yor", identify=fake_identify) == []


@pytest.mark.parametrize(
    ("output", "reasons"),
    [
        (None, ["empty"]),
        ("", ["empty"]),
        (EN, ["untranslated", "wrong_language"]),
        (
            "Kọ ewì kúkúrú kan nípa àsìkò òjò ní {variable_2}.",
            ["placeholder_missing:{variable_1}", "placeholder_invented:{variable_2}"],
        ),
        ("ní ní ní ní ní ní ní ní ní ní ní ní ní ní ní ní ní ní ní ní {variable_1}", ["repetition"]),
        ("<html><body>Error 503 Service Unavailable</body></html> {variable_1}", ["error_text"]),
        ("Òjò {variable_1}", ["length_ratio"]),
    ],
)
def test_check_translation_reports_every_failing_reason(output: str | None, reasons: list[str]) -> None:
    assert check_translation(EN, output, lang_key="yor", identify=fake_identify) == reasons


def test_check_translation_lists_several_reasons_at_once() -> None:
    output = "the the the the the the the the the the the the the the the the the the the the the the"
    reasons = check_translation(EN, output, lang_key="yor", identify=fake_identify)
    assert reasons == ["placeholder_missing:{variable_1}", "wrong_language", "repetition"]
