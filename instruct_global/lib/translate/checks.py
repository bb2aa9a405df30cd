"""Checks on one machine translation: each returns ``(ok, reason)``; ``check_translation`` runs all.

Reasons are plain names (``empty``, ``untranslated``, ``wrong_language``, ``length_ratio``,
``repetition``, ``error_text``) so drops count cleanly per reason; placeholder problems keep the
detailed reasons of ``placeholder_mismatches`` (``placeholder_missing:{variable_2}`` ...).

Checks that could fire on a faithful translation of an odd source compare against the source:
a list that repeats itself in English may repeat itself in Yoruba, HTML in the source may stay HTML.
Language ID is injected (``identify(text) -> (lang, score)`` with registry keys) so these checks
stay pure and the lead wires the real detector.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import regex

from instruct_global.lib.common.placeholders import PLACEHOLDER_RE
from instruct_global.lib.common.text_tokens import WORD_RE
from instruct_global.lib.translate.placeholder_protection import placeholder_mismatches

Identify = Callable[[str], tuple[str, float]]
CheckResult = tuple[bool, str | None]

_LETTER_RE = regex.compile(r"\p{L}")
_NOT_WORD_RE = regex.compile(r"[^\p{L}\p{M}\p{N}]+")
# A short unit repeated back to back: "ááááááááá", "hahahahahaha", "።።።።።።።።".
# The unit starts with neither a digit nor a space, so 1000000 and indentation are not loops.
_CHAR_LOOP_RE = regex.compile(r"([^\d\s][^\d]{0,5}?)\1{7,}", regex.DOTALL)
# What an API error, a stack trace or an HTML page looks like when it lands where text should be.
_ERROR_TEXT_RE = regex.compile(
    r"<\s*(?:!doctype|html|head|body|title)\b|Traceback \(most recent call last\)"
    r"|\b(?:HTTP(?:/\d(?:\.\d)?)?\s*)?(?:Error|status)\s*:?\s*[45]\d\d\b"
    r"|\b[45]\d\d\s+(?:Internal Server Error|Bad Gateway|Service Unavailable|Gateway Time-?out|Too Many Requests"
    r"|Bad Request|Unauthorized|Forbidden|Not Found)\b"
    r"|\brate[ _-]?limit(?:ed|s)?\b|\bquota\b|\btoo many requests\b|RESOURCE_EXHAUSTED|\binsufficient_quota\b"
    r"|\b(?:Runtime|Value|Key|Type|Connection|Timeout|OutOfMemory)Error\b|\bException:|CUDA out of memory"
    r"|\"error\"\s*:\s*[{\"]|\binvalid api key\b|\bAccess Denied\b",
    regex.IGNORECASE,
)

REASONS = ("empty", "untranslated", "wrong_language", "length_ratio", "repetition", "error_text")


@dataclass(frozen=True)
class TranslationCheckConfig:
    # untranslated: sources with fewer words are exempt (numbers, names, "OK" stay as they are)
    untranslated_min_words: int = 3
    # wrong_language: judged only on outputs with this many letters, and only a confident verdict
    lid_min_letters: int = 20
    lid_min_score: float = 0.5
    # length_ratio: target/source characters, for sources longer than length_min_chars
    length_ratio_min: float = 0.3
    length_ratio_max: float = 3.0
    length_min_chars: int = 20
    # repetition: an n-gram (n <= repeat_max_n) repeated back to back repeat_min_run times, or
    # more than repeat_max_share of the tokens inside 3-grams that occur more than once
    repeat_max_n: int = 4
    repeat_min_run: int = 4
    repeat_share_n: int = 3
    repeat_max_share: float = 0.5
    repeat_share_min_tokens: int = 12


DEFAULT_CONFIG = TranslationCheckConfig()


def _without_placeholders(text: str) -> str:
    return PLACEHOLDER_RE.sub(" ", text)


def _tokens(text: str) -> list[str]:
    return [token.casefold() for token in WORD_RE.findall(_without_placeholders(text))]


def _normalised(text: str) -> str:
    """Case, spacing and punctuation removed, placeholders ignored: what "the same text" means."""
    folded = unicodedata.normalize("NFKC", _without_placeholders(text)).casefold()
    return _NOT_WORD_RE.sub("", folded)


def check_empty(source: str, output: str | None) -> CheckResult:
    """No words in the output while the source has some (placeholders alone are not a translation)."""
    if output is None or not output.strip():
        return (not source.strip(), "empty" if source.strip() else None)
    if WORD_RE.search(_without_placeholders(output)) or not WORD_RE.search(_without_placeholders(source)):
        return True, None
    return False, "empty"


def check_untranslated(
    source: str, output: str, config: TranslationCheckConfig = DEFAULT_CONFIG
) -> CheckResult:
    if len(_tokens(source)) < config.untranslated_min_words:
        return True, None
    same = _normalised(source) == _normalised(output)
    return (not same, "untranslated" if same else None)


def check_wrong_language(
    output: str, lang_key: str, identify: Identify | None, config: TranslationCheckConfig = DEFAULT_CONFIG
) -> CheckResult:
    """A confident verdict for another language fails; short text and unsure verdicts pass."""
    if identify is None:
        return True, None
    text = _without_placeholders(output).strip()
    if len(_LETTER_RE.findall(text)) < config.lid_min_letters:
        return True, None
    verdict = identify(text)
    # A (lang, score) pair, or an object with .lang and .score (lib.langid.LidResult).
    lang, score = (verdict.lang, verdict.score) if hasattr(verdict, "lang") else verdict
    if lang in (lang_key, "und", "", None) or score < config.lid_min_score:
        return True, None
    return False, "wrong_language"


def check_length_ratio(
    source: str, output: str, config: TranslationCheckConfig = DEFAULT_CONFIG
) -> CheckResult:
    src = len(" ".join(_without_placeholders(source).split()))
    if src <= config.length_min_chars:
        return True, None
    ratio = len(" ".join(_without_placeholders(output).split())) / src
    ok = config.length_ratio_min <= ratio <= config.length_ratio_max
    return (ok, None if ok else "length_ratio")


def _longest_run(tokens: list[str], max_n: int) -> int:
    """Most back-to-back repeats of any n-gram (n <= max_n) in ``tokens``, in linear time per n.

    A unit of n tokens repeated r times is a streak of (r - 1) * n positions where
    ``tokens[i] == tokens[i + n]``.
    """
    best = 1 if tokens else 0
    for n in range(1, max_n + 1):
        streak = 0
        for i in range(len(tokens) - n):
            streak = streak + 1 if tokens[i] == tokens[i + n] else 0
            best = max(best, streak // n + 1)
    return best


def _repeated_share(tokens: list[str], n: int) -> float:
    """Share of tokens covered by n-grams that occur more than once."""
    if len(tokens) < n:
        return 0.0
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    counts = Counter(grams)
    covered = [False] * len(tokens)
    for i, gram in enumerate(grams):
        if counts[gram] > 1:
            covered[i : i + n] = [True] * n
    return sum(covered) / len(tokens)


def is_degenerate(text: str, config: TranslationCheckConfig = DEFAULT_CONFIG) -> bool:
    """The classic MT loop: "the the the the", "ní ní ní ní", a phrase over and over."""
    tokens = _tokens(text)
    if _longest_run(tokens, config.repeat_max_n) >= config.repeat_min_run:
        return True
    if (
        len(tokens) >= config.repeat_share_min_tokens
        and _repeated_share(tokens, config.repeat_share_n) > config.repeat_max_share
    ):
        return True
    return bool(_CHAR_LOOP_RE.search(_without_placeholders(text)))


def check_repetition(
    source: str, output: str, config: TranslationCheckConfig = DEFAULT_CONFIG
) -> CheckResult:
    """Degenerate output, unless the source repeats itself just as much."""
    if is_degenerate(output, config) and not is_degenerate(source, config):
        return False, "repetition"
    return True, None


def check_error_text(source: str, output: str) -> CheckResult:
    """The backend's error page or exception landed in the output (and was not in the source)."""
    match = _ERROR_TEXT_RE.search(output)
    if match is None:
        return True, None
    source_hits = {hit.casefold() for hit in _ERROR_TEXT_RE.findall(source)}
    if all(hit.casefold() in source_hits for hit in _ERROR_TEXT_RE.findall(output)):
        return True, None
    return False, "error_text"


def check_translation(
    source: str,
    output: str | None,
    *,
    lang_key: str,
    identify: Identify | None = None,
    config: TranslationCheckConfig = DEFAULT_CONFIG,
) -> list[str]:
    """Every failing reason for ``output`` as a translation of ``source`` (empty list: it passes).

    An empty output reports only ``empty``: the other checks have nothing to judge.
    """
    ok, reason = check_empty(source, output)
    if not ok or output is None or not output.strip():
        return [reason] if reason else []
    results = [
        check_error_text(source, output),
        check_untranslated(source, output, config),
        check_wrong_language(output, lang_key, identify, config),
        check_length_ratio(source, output, config),
        check_repetition(source, output, config),
    ]
    return placeholder_mismatches(source, output) + [reason for ok, reason in results if not ok and reason]
