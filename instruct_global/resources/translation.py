"""Machine translation backends as Dagster resources; assets are typed with ``TranslatorResource``.

Every text is cut into sentences (``lib.sentences``); each sentence is a cache entry keyed by
backend, model (+ revision), the settings that change the answer, and source/target codes. A
re-run therefore translates only what was never answered, and a crash loses no finished batch:
answers are written to the cache after every batch. A text whose segment failed gets an error,
never a partial or error-page translation.

Implementations: ``NLLBTranslator`` (``translation_nllb``) and ``GoogleTranslator``
(``translation_google``).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import regex
from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr

from instruct_global.languages import Language, UnsupportedLanguageError, get_language
from instruct_global.lib.common.accounting import CallStats
from instruct_global.lib.common.call_cache import cache_key
from instruct_global.lib.common.preflight import Problem
from instruct_global.lib.common.sentences import Segmented, segment
from instruct_global.resources.call_cache import CallCacheResource

ENGLISH = "eng"
# Placeholders and the protection sentinels carry no words; a segment without a letter outside
# them ("__V1__", "1.", "---", "2 + 2 = 4") is copied as it is: MT models hallucinate on such input.
_NO_WORDS_RE = regex.compile(r"\{variable_[1-9][0-9]*\}|__V[0-9]+__")
_LETTER_RE = regex.compile(r"\p{L}")


def _has_words(segment_text: str) -> bool:
    return bool(_LETTER_RE.search(_NO_WORDS_RE.sub(" ", segment_text)))


@dataclass(frozen=True)
class TranslationResult:
    text: str | None  # None when any segment failed
    error: str | None
    n_segments: int
    cached_segments: int

    @property
    def ok(self) -> bool:
        return self.error is None and self.text is not None


@dataclass(frozen=True)
class SegmentOutcome:
    """What a backend returns for one segment: a translation or an error, never both."""

    text: str | None = None
    error: str | None = None


class TranslatorResource(ConfigurableResource):
    """Base class of translation backends. Subclasses implement the ``_``-prefixed hooks."""

    cache: CallCacheResource
    max_segment_chars: int = Field(
        default=400,
        ge=20,
        description="Sentences longer than this are cut at commas/spaces before translation.",
    )

    backend_name: ClassVar[str] = "translator"

    _call_stats: CallStats = PrivateAttr(default_factory=CallStats)

    def preflight_problems(self) -> list[Problem]:
        """What this backend lacks to run (model files, credentials), checked in seconds."""
        return []

    def coverage_problem(self, lang: Language) -> Problem | None:
        if self.supports(lang):
            return None
        other = "google" if self.backend_name == "nllb" else "nllb"
        return Problem(
            f"{lang.name} ({lang.key}) is not covered by the translator '{self.backend_name}'",
            f"choose another translator (INSTRUCT_GLOBAL_TRANSLATOR={other}) if it covers the language, or "
            "leave the translate stages out (the corpus_job needs no translator)",
        )

    # No check at setup: curate and evaluate steps hold the translator as an optional helper (they
    # step aside visibly without one), so a missing model must not fail them before they start. The
    # preflight (python -m instruct_global.preflight) checks it for the jobs whose stages need it,
    # and the first translation fails with the same message.

    # ---- hooks -----------------------------------------------------------------------------
    @abstractmethod
    def supports(self, lang: Language) -> bool: ...

    @abstractmethod
    def _language_code(self, lang: Language) -> str:
        """The backend's code for ``lang``; raises UnsupportedLanguageError (via ``require``)."""

    @abstractmethod
    def _english_code(self) -> str: ...

    @abstractmethod
    def model_id(self) -> str:
        """Model name plus revision/version: part of every cache key."""

    @abstractmethod
    def cache_params(self) -> dict[str, Any]:
        """Every setting that changes the translation: part of every cache key."""

    @abstractmethod
    def _translate_uncached(
        self, segments: list[str], source_code: str, target_code: str
    ) -> Iterator[Mapping[int, SegmentOutcome]]:
        """Translate ``segments``; yield ``{index: outcome}`` after each batch so it is cached at once."""

    # ---- public API --------------------------------------------------------------------------
    def stats(self) -> CallStats:
        return self._call_stats

    def translate(
        self,
        texts: Sequence[str],
        *,
        source: Language | str = ENGLISH,
        target: Language | str,
    ) -> list[TranslationResult]:
        """Translate ``texts`` (same order out). Empty or blank texts, and segments without a word
        (numbers, punctuation, placeholders, sentinels), pass through untranslated."""
        # English is a target too (an English gloss of a target-language text, for the curate stage)
        target_code = self._resolve_source(target)[1] if isinstance(target, str) and (
            target.lower() in (ENGLISH, "en", "english")) else self._language_code(
            get_language(target) if isinstance(target, str) else target)
        source_key, source_code = self._resolve_source(source)
        if source_code == target_code:
            raise ValueError(f"source and target are both {getattr(target, 'name', target)}: nothing to translate")

        model, params = self.model_id(), self.cache_params()
        layouts: list[Segmented | None] = []
        key_of_segment: list[list[str]] = []
        unique: dict[str, str] = {}  # cache key -> segment text
        for text in texts:
            if not text or not text.strip():
                layouts.append(None)
                key_of_segment.append([])
                continue
            layout = segment(text, source_key, self.max_segment_chars)
            keys = [
                cache_key(
                    self.backend_name, model, params, {"src": source_code, "tgt": target_code, "text": s}
                )
                for s in layout.segments
            ]
            layouts.append(layout)
            key_of_segment.append(keys)
            unique.update(zip(keys, layout.segments, strict=True))
        verbatim = {key: text for key, text in unique.items() if not _has_words(text)}
        unique = {key: text for key, text in unique.items() if key not in verbatim}

        cache = self.cache.get_cache()
        translated: dict[str, str] = dict(verbatim)
        from_cache: set[str] = set()
        for key, value in cache.get_many(list(unique)).items():
            if isinstance(value.get("translation"), str):
                translated[key] = value["translation"]
                from_cache.add(key)
        self._call_stats.add(cache_hits=len(from_cache))

        errors: dict[str, str] = {}
        misses = [k for k in unique if k not in translated]
        if misses:
            for outcomes in self._translate_uncached([unique[k] for k in misses], source_code, target_code):
                fresh: dict[str, dict[str, Any]] = {}
                for index, outcome in outcomes.items():
                    key = misses[index]
                    if outcome.error is None and outcome.text is not None:
                        translated[key] = outcome.text
                        fresh[key] = {"translation": outcome.text}
                    else:
                        errors[key] = outcome.error or "the backend returned no translation"
                cache.put_many(fresh, backend=self.backend_name, model=model)
            for key in misses:
                if key not in translated and key not in errors:
                    errors[key] = "the backend returned no translation"
            self._call_stats.add(failures=len(errors))

        return [
            self._assemble(text, layout, keys, translated, errors, from_cache)
            for text, layout, keys in zip(texts, layouts, key_of_segment, strict=True)
        ]

    # ---- helpers -----------------------------------------------------------------------------
    def _resolve_source(self, source: Language | str) -> tuple[str, str]:
        """(key for the sentence splitter, backend code) of the source language."""
        if isinstance(source, Language):
            return source.key, self._language_code(source)
        if source.lower() in (ENGLISH, "en", "english"):
            return ENGLISH, self._english_code()
        try:
            lang = get_language(source)
        except UnsupportedLanguageError:
            raise UnsupportedLanguageError(
                f"unknown source language '{source}' for {self.backend_name}: use 'eng' or a registry key"
            ) from None
        return lang.key, self._language_code(lang)

    @staticmethod
    def _assemble(
        text: str,
        layout: Segmented | None,
        keys: list[str],
        translated: Mapping[str, str],
        errors: Mapping[str, str],
        from_cache: set[str],
    ) -> TranslationResult:
        if layout is None:
            return TranslationResult(text=text, error=None, n_segments=0, cached_segments=0)
        cached = sum(1 for k in keys if k in from_cache)
        failed = [(i, errors.get(k, "not translated")) for i, k in enumerate(keys) if k not in translated]
        if failed:
            index, message = failed[0]
            more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
            return TranslationResult(
                text=None,
                error=f"segment {index + 1}/{len(keys)} failed{more}: {message}",
                n_segments=len(keys),
                cached_segments=cached,
            )
        return TranslationResult(
            text=layout.rejoin([translated[k] for k in keys]),
            error=None,
            n_segments=len(keys),
            cached_segments=cached,
        )


__all__ = ["SegmentOutcome", "TranslationResult", "TranslatorResource"]
