"""Language identification that says which method produced the answer.

Three methods, tried in this order for the *expected* language of a partition:

- ``lingua``: lingua-language-detector, when it has a model for the language (Yoruba, Swahili,
  Somali, Zulu among ours). The detector is built from a small regional candidate set, because
  confidence values are relative to the candidates and a 75-language detector is slower and
  spreads probability over languages that never occur in these corpora.
- ``langid``: py3langid, restricted to a regional candidate set (Hausa, Igbo, Nigerian Pidgin,
  Amharic, Kinyarwanda, Oromo among ours).
- ``script``: neither library knows the language (Tigrinya), so the honest best is "the letters
  are in the expected script and the text is not English". It cannot tell Tigrinya from Amharic.

Results use ISO 639-3 codes as the registry does (``swh`` for Swahili, never lingua's ``swa``),
or ``und`` when nothing can be said.
"""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass

import regex

from instruct_global.languages import LANGUAGES, Language

UNDETERMINED = "und"
METHODS = ("lingua", "langid", "script")

# Registry key -> the code each library uses, where it differs from the registry's ISO 639-3 key.
_LINGUA_ALIASES = {"swh": "swa"}  # lingua models the Swahili macrolanguage
# ISO 639-3 -> py3langid label (mostly ISO 639-1). Covers the registry and the regional candidates.
_LANGID_CODES = {
    "yor": "yo", "hau": "ha", "ibo": "ig", "pcm": "pcm", "swh": "sw", "swa": "sw", "amh": "am",
    "som": "so", "zul": "zu", "kin": "rw", "tir": "ti", "orm": "om", "gaz": "om", "eng": "en",
    "fra": "fr", "ara": "ar", "por": "pt", "xho": "xh", "lug": "lg", "sna": "sn", "sot": "st",
    "nso": "nso", "lin": "ln", "kik": "kik", "mlg": "mg", "afr": "af", "fuv": "fuv", "kab": "kab",
}  # fmt: skip
_LANGID_TO_ISO3 = {v: k for k, v in _LANGID_CODES.items() if k not in ("swa", "gaz")}

# Languages likely to show up in African-language web text: the major contact languages plus
# neighbours each library knows. The expected language is always added.
_LINGUA_REGIONAL = (
    "eng", "fra", "ara", "por", "swa", "som", "yor", "zul", "xho", "sot", "tsn", "tso", "sna",
    "lug", "afr",
)  # fmt: skip
_LANGID_REGIONAL = (
    "en", "fr", "ar", "pt", "yo", "ha", "ig", "pcm", "sw", "so", "am", "om", "rw", "zu", "xh",
    "lg", "sn", "st", "nso", "ln", "kik", "mg", "af", "fuv", "kab",
)  # fmt: skip

# ISO 15924 -> the Unicode script property name the `regex` module understands.
_SCRIPT_PATTERNS = {
    "Latn": r"\p{Script=Latin}",
    "Ethi": r"\p{Script=Ethiopic}",
    "Arab": r"\p{Script=Arabic}",
    "Cyrl": r"\p{Script=Cyrillic}",
    "Deva": r"\p{Script=Devanagari}",
    "Tfng": r"\p{Script=Tifinagh}",
    "Nkoo": r"\p{Script=Nko}",
    "Vaii": r"\p{Script=Vai}",
}
_LETTER = regex.compile(r"\p{L}")
_WORD = regex.compile(r"[\p{L}\p{M}]+")
_NOISE = regex.compile(
    r"https?://\S+|www\.\S+|[^\s@]{1,64}@[^\s@]{1,255}|[\p{N}_]+"
)  # bounded: no backtracking blow-up
# The same without the e-mail alternative, for text with no "@" (where it can never match and
# only costs a bounded look-ahead at every character).
_NOISE_NO_AT = regex.compile(r"https?://\S+|www\.\S+|[\p{N}_]+")
# Function words that are frequent in any English text and rare as words of the registry's
# languages; a high share of them means the "script" method is looking at English.
_ENGLISH_STOPWORD_LIST = (
    "the", "and", "of", "to", "in", "is", "that", "for", "it", "was", "with", "as", "on", "are",
    "be", "this", "by", "at", "from", "have", "has", "not", "which", "or", "but", "they", "his",
    "her", "their", "were", "been", "will", "would", "can", "an", "its", "also", "who", "he",
    "she", "we", "you",
)  # fmt: skip
_ENGLISH_STOPWORDS = frozenset(_ENGLISH_STOPWORD_LIST)
_ENGLISH_RATIO_LIMIT = 0.15
_LID_MAX_CHARS = 600  # a bounded sample (about 100 words): lingua costs linearly in its length


@dataclass(frozen=True)
class LidResult:
    lang: str  # ISO 639-3 key, or "und"
    score: float  # 0..1; for "script" the share of letters in the expected script
    method: str  # "lingua" | "langid" | "script"


def _key(lang: Language | str) -> str:
    return lang if isinstance(lang, str) else lang.key


def _lingua_language(iso3: str):  # -> lingua.Language | None
    from lingua import IsoCode639_3
    from lingua import Language as LinguaLanguage

    code = _LINGUA_ALIASES.get(iso3, iso3)
    try:
        return LinguaLanguage.from_iso_code_639_3(IsoCode639_3.from_str(code))
    except ValueError:
        return None


def _lingua_to_registry(language) -> str:
    code = language.iso_code_639_3.name.lower()
    reverse = {v: k for k, v in _LINGUA_ALIASES.items()}
    return reverse.get(code, code)


@functools.cache
def _langid_base():  # -> py3langid LanguageIdentifier with all of its languages
    from py3langid import langid

    return langid.LanguageIdentifier.from_model_file(langid.MODEL_FILE, norm_probs=True)


def _langid_code(iso3: str) -> str | None:
    code = _LANGID_CODES.get(iso3, iso3)
    return code if code in set(_langid_base().labels) else None


def lid_method_for(lang: Language | str) -> str:
    """The method ``identify`` uses for this expected language."""
    key = _key(lang)
    if _lingua_language(key) is not None:
        return "lingua"
    if _langid_code(key) is not None:
        return "langid"
    return "script"


@functools.cache
def _lingua_detector(key: str):
    from lingua import LanguageDetectorBuilder

    candidates = {_lingua_language(code) for code in (*_LINGUA_REGIONAL, key)} - {None}
    return LanguageDetectorBuilder.from_languages(*candidates).build()


@functools.cache
def _langid_identifier(key: str):
    # A shallow copy shares the model arrays; set_languages rebinds (never mutates) them, so the
    # shared base and other restricted copies are untouched.
    identifier = copy.copy(_langid_base())
    labels = set(identifier.labels)
    identifier.set_languages(sorted({c for c in (*_LANGID_REGIONAL, _langid_code(key)) if c in labels}))
    return identifier


def _prepare(text: str) -> str:
    head = text[: 4 * _LID_MAX_CHARS]
    text = (_NOISE if "@" in head else _NOISE_NO_AT).sub(" ", head)
    if len(text) > _LID_MAX_CHARS:
        cut = text.rfind(" ", 0, _LID_MAX_CHARS)
        text = text[: cut if cut > 0 else _LID_MAX_CHARS]
    return " ".join(text.split())


def english_stopword_ratio(text: str) -> float:
    words = [w.casefold() for w in _WORD.findall(text)]
    if not words:
        return 0.0
    return sum(w in _ENGLISH_STOPWORDS for w in words) / len(words)


def script_share(text: str, script: str) -> float:
    """Share of letters in ``text`` that belong to ``script`` (ISO 15924)."""
    letters = _LETTER.findall(text)
    if not letters:
        return 0.0
    pattern = regex.compile(_SCRIPT_PATTERNS.get(script, rf"\p{{Script={script}}}"))
    return sum(1 for ch in letters if pattern.match(ch)) / len(letters)


def _identify_by_script(text: str, expected: Language) -> LidResult:
    english = english_stopword_ratio(text)
    if english >= _ENGLISH_RATIO_LIMIT:
        return LidResult("eng", round(min(1.0, english / (2 * _ENGLISH_RATIO_LIMIT)), 4), "script")
    share = script_share(text, expected.script)
    if share >= 0.5:
        return LidResult(expected.key, round(share, 4), "script")
    return LidResult(UNDETERMINED, round(share, 4), "script")


def identify(text: str, expected: Language) -> LidResult:
    """Identify the language of ``text``, judged against the partition's expected language."""
    method = lid_method_for(expected)
    prepared = _prepare(text or "")
    if not _LETTER.search(prepared):
        return LidResult(UNDETERMINED, 0.0, method)
    if method == "lingua":
        values = _lingua_detector(expected.key).compute_language_confidence_values(prepared)
        if not values or values[0].value <= 0.0:
            return LidResult(UNDETERMINED, 0.0, method)
        return LidResult(_lingua_to_registry(values[0].language), round(float(values[0].value), 4), method)
    if method == "langid":
        label, prob = _langid_identifier(expected.key).classify(prepared)
        score = float(prob) if math.isfinite(prob) else 0.0
        return LidResult(_LANGID_TO_ISO3.get(label, label), round(score, 4), method)
    return _identify_by_script(prepared, expected)


def lid_methods() -> dict[str, str]:
    """Method per registry language, for docs and run metadata."""
    return {key: lid_method_for(key) for key in LANGUAGES}
