from __future__ import annotations

import pytest

from instruct_global.lib.common.sentences import UNBREAKABLE_RE, Segmented, segment, split_sentences

SAMPLES = [
    ("Hello Dr. Smith. How are you?  Fine.\n\n  New paragraph {variable_1}. End\n", "eng"),
    ("ሰላም ነው። እንዴት ነህ፧ደህና ነኝ! ጥሩ።\n\nአዲስ አንቀጽ።", "amh"),
    ("ሰላም ነው። እንዴት ነህ፧ደህና ነኝ።", "tir"),
    ("Ẹ kú àárọ̀. Ṣé dáadáa ni? J. Ade sọ pé 3.5 ni.\n1. Àkọ́kọ́ ni", "yor"),
    ("\r\n  Line one\r\nLine two.  \n", "hau"),
    ("", "eng"),
    ("   \n\n ", "swh"),
    ("No punctuation at all", "eng"),
]


@pytest.mark.parametrize(("text", "lang"), SAMPLES)
@pytest.mark.parametrize("max_chars", [None, 12, 400])
def test_rejoin_restores_the_text_exactly(text: str, lang: str, max_chars: int | None) -> None:
    seg = segment(text, lang, max_chars)
    assert seg.rejoin(seg.segments) == text
    assert all(s == s.strip() and s for s in seg.segments)
    assert all("\n" not in s for s in seg.segments)  # a newline always ends a segment


def test_english_sentences_with_abbreviations() -> None:
    assert split_sentences("Hello Dr. Smith. How are you? I am fine!", "eng") == [
        "Hello Dr. Smith.",
        "How are you?",
        "I am fine!",
    ]


def test_amharic_full_stop_and_question_mark() -> None:
    assert split_sentences("ሰላም ነው። እንዴት ነህ፧ደህና ነኝ።", "amh") == ["ሰላም ነው።", "እንዴት ነህ፧", "ደህና ነኝ።"]


@pytest.mark.parametrize("lang", ["tir", "amh_Ethi", "yor"])
def test_ethiopic_stops_split_without_pysbd(lang: str) -> None:
    assert split_sentences("ሰላም ነው።እንዴት ነህ፧ ደህና።", lang) == ["ሰላም ነው።", "እንዴት ነህ፧", "ደህና።"]


def test_regex_splitter_skips_initials_decimals_lowercase_and_list_numbers() -> None:
    text = "J. Ade sọ pé 3.5 ni. e.g. kò sí. Ó dára… Bẹ́ẹ̀ ni!\n2. Kejì"
    assert split_sentences(text, "yor") == [
        "J. Ade sọ pé 3.5 ni. e.g. kò sí.",
        "Ó dára…",
        "Bẹ́ẹ̀ ni!",
        "2. Kejì",
    ]


def test_paragraphs_and_lines_are_kept_in_the_separators() -> None:
    seg = segment("First. Second.\n\nThird\n- item", "eng")
    assert seg.segments == ("First.", "Second.", "Third", "- item")
    assert seg.separators == ("", " ", "\n\n", "\n", "")
    assert seg.rejoin(["Un.", " Deux. ", "Trois", "- article"]) == "Un. Deux.\n\nTrois\n- article"


def test_empty_and_blank_text() -> None:
    assert segment("", "eng") == Segmented((), ("",))
    assert segment(" \n ", "eng").rejoin([]) == " \n "
    assert split_sentences("", "yor") == []


def test_rejoin_needs_one_translation_per_segment() -> None:
    with pytest.raises(ValueError, match="2 segments"):
        segment("One. Two. Three.", "eng").rejoin(["a", "b"])


def test_long_sentence_is_cut_at_commas_then_spaces() -> None:
    text = "This sentence has several clauses, each of moderate length, and it keeps going on and on forever"
    seg = segment(text, "eng", max_chars=40)
    assert seg.segments == (
        "This sentence has several clauses,",
        "each of moderate length,",
        "and it keeps going on and on forever",
    )
    assert all(len(s) <= 40 for s in seg.segments)
    assert seg.rejoin(seg.segments) == text


def test_word_longer_than_the_limit_is_hard_cut() -> None:
    seg = segment("a" * 25, "yor", max_chars=10)
    assert seg.segments == ("a" * 10, "a" * 10, "a" * 5)


@pytest.mark.parametrize("max_chars", [5, 8, 13, 20, 30])
def test_placeholders_are_never_split(max_chars: int) -> None:
    text = "Write about {variable_1},{variable_2} and {variable_10}.{variable_3} in {variable_4}!"
    seg = segment(text, "eng", max_chars=max_chars)
    placeholders = UNBREAKABLE_RE.findall(text)
    found = [p for s in seg.segments for p in UNBREAKABLE_RE.findall(s)]
    assert found == placeholders
    assert seg.rejoin(seg.segments) == text


def test_protection_sentinels_are_never_split() -> None:
    text = "__V1__ __V22__,__V3__"
    seg = segment(text, "eng", max_chars=4)
    assert [t for s in seg.segments for t in UNBREAKABLE_RE.findall(s)] == ["__V1__", "__V22__", "__V3__"]
    assert seg.rejoin(seg.segments) == text


def test_placeholder_with_sentence_punctuation_inside_stays_whole() -> None:
    text = "Compare {item. one} with {item! two}. Then stop."
    assert split_sentences(text, "yor") == ["Compare {item. one} with {item! two}.", "Then stop."]
    assert split_sentences(text, "eng") == ["Compare {item. one} with {item! two}.", "Then stop."]


def test_hostile_input_does_not_crash() -> None:
    for text in ["....", "?!?!", "{", "}{", "{" * 100, "።።።", "\x00\u200b.\u2028x", "a\tb.\tC"]:
        for max_chars in (None, 1, 3):
            seg = segment(text, "eng", max_chars)
            assert seg.rejoin(seg.segments) == text


def test_bad_max_chars() -> None:
    with pytest.raises(ValueError):
        segment("x", "eng", max_chars=0)
