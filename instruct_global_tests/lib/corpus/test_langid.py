from __future__ import annotations

import pytest

from instruct_global.languages import LANGUAGES, Language
from instruct_global.lib.corpus.langid import (
    METHODS,
    UNDETERMINED,
    english_stopword_ratio,
    identify,
    lid_method_for,
    lid_methods,
    script_share,
)

# One or two sentences per registry language, written for these tests.
SAMPLES = {
    "yor": "Ìlú Èkó jẹ́ ìlú tó tóbi jùlọ ní orílẹ̀-èdè Nàìjíríà. Ọ̀pọ̀ èèyàn ló ń gbé ibẹ̀.",
    "hau": "Gwamnatin tarayya ta ce za ta gina sababbin makarantu a jihar Kano domin ƙara yawan yara.",
    "ibo": "Gọọmentị etiti kwuru na ha ga-ewu ụlọ akwụkwọ ọhụrụ na steeti Kano ka ụmụaka nwee ike ịga akwụkwọ.",
    "pcm": "Di goment don talk say dem go build new schools for Kano state so that more pikin fit go school.",
    "swh": "Serikali imesema itajenga shule mpya katika jimbo la Kano ili watoto wengi zaidi waende shule.",
    "amh": "የፌዴራል መንግሥት ተጨማሪ ልጆች ትምህርት ቤት እንዲሄዱ አዳዲስ ትምህርት ቤቶችን እንደሚገነባ አስታውቋል።",
    "som": "Dowladda federaalka ayaa sheegtay inay dhisi doonto dugsiyo cusub si carruur badan ay wax u bartaan.",
    "zul": "Uhulumeni uthe uzokwakha izikole ezintsha ukuze izingane eziningi zikwazi ukufunda.",
    "kin": "Leta yatangaje ko izubaka amashuri mashya kugira ngo abana benshi babashe kwiga.",
    "tir": "ኣብ ኤርትራ ብዙሓት ሰባት ኣብ ሕርሻ ይነብሩ። ሎሚ ዝናብ ዘኒቡ።",
    "orm": "Mootummaan federaalaa mana barnootaa haaraa ijaaruuf akka karoorfate beeksiseera.",
}
ENGLISH = (
    "The federal government said it will build new schools in Kano State so that more children can attend."
)

EXPECTED_METHODS = {
    "yor": "lingua",
    "swh": "lingua",
    "som": "lingua",
    "zul": "lingua",
    "hau": "langid",
    "ibo": "langid",
    "pcm": "langid",
    "amh": "langid",
    "kin": "langid",
    "orm": "langid",
    "tir": "script",
}


def test_every_registry_language_has_a_sample_and_a_method() -> None:
    assert set(SAMPLES) == set(LANGUAGES)
    assert lid_methods() == EXPECTED_METHODS
    assert set(lid_methods().values()) <= set(METHODS)


@pytest.mark.parametrize("key", sorted(LANGUAGES))
def test_identifies_each_language_and_names_the_method(key: str) -> None:
    lang = LANGUAGES[key]
    result = identify(SAMPLES[key], lang)
    assert result.lang == key  # registry codes: "swh", never lingua's "swa"
    assert result.score >= 0.5
    assert result.method == lid_method_for(lang) == lid_method_for(key)


@pytest.mark.parametrize("key", sorted(LANGUAGES))
def test_english_is_not_taken_for_the_expected_language(key: str) -> None:
    result = identify(ENGLISH, LANGUAGES[key])
    assert result.lang == "eng"
    assert result.method == EXPECTED_METHODS[key]


@pytest.mark.parametrize(
    "text", ["", "   \n\t", "12345 678", "https://example.org/a?b=1 www.x.org", "🙂🙂🙂", "—|—|—"]
)
@pytest.mark.parametrize("key", ["yor", "hau", "tir"])
def test_text_without_letters_is_undetermined(text: str, key: str) -> None:
    result = identify(text, LANGUAGES[key])
    assert (result.lang, result.score) == (UNDETERMINED, 0.0)
    assert result.method == EXPECTED_METHODS[key]


@pytest.mark.parametrize("key", ["yor", "hau", "tir"])
def test_very_long_and_odd_input_is_handled(key: str) -> None:
    text = SAMPLES[key] + " " + "\x00\ufeff" + SAMPLES[key] * 2000
    result = identify(text, LANGUAGES[key])
    assert result.lang == key


def test_script_method_limits_are_explicit() -> None:
    tir = LANGUAGES["tir"]
    # The script method cannot tell Tigrinya from Amharic: both are Ethiopic.
    assert identify(SAMPLES["amh"], tir).lang == "tir"
    # Latin-script non-English text is in the wrong script for Tigrinya.
    latin = identify(SAMPLES["hau"], tir)
    assert latin.lang == UNDETERMINED and latin.score < 0.5


def test_languages_outside_the_registry_still_get_a_method() -> None:
    xhosa = Language("xho", "Xhosa", "Latn", "xho_Latn", "xh", None, "xh")
    lingala = Language("lin", "Lingala", "Latn", "lin_Latn", "ln", None, "ln")
    unknown = Language("zzz", "Test", "Latn", None, None, None, None)
    assert lid_method_for(xhosa) == "lingua"
    assert lid_method_for(lingala) == "langid"
    assert lid_method_for(unknown) == "script"
    assert identify("Le gouvernement a dit qu'il va construire des écoles.", unknown).lang == "zzz"


@pytest.mark.parametrize(
    ("text", "script", "expected"),
    [
        ("abc", "Latn", 1.0),
        ("ሰላም", "Ethi", 1.0),
        ("ab ሰላ", "Ethi", 0.5),
        ("", "Latn", 0.0),
        ("123", "Ethi", 0.0),
    ],
)
def test_script_share(text: str, script: str, expected: float) -> None:
    assert script_share(text, script) == pytest.approx(expected)


def test_english_stopword_ratio() -> None:
    assert english_stopword_ratio(ENGLISH) > 0.15
    assert english_stopword_ratio(SAMPLES["yor"]) == 0.0
    assert english_stopword_ratio("") == 0.0
