"""No translator: ``INSTRUCT_GLOBAL_TRANSLATOR=none``, for offline runs and deployments without MT.

No machine-translation model installs from a package registry, so an offline run has none. The
stages that need one step aside visibly instead of failing: ``translated_instructions`` is empty
with the reason in its metadata (template and self-instruct rows need a translator), TruthfulQA is
not translated (the held-out evaluation still runs), and the dataset card says what the dataset
holds without them (English instructions with human-written target-language responses).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from instruct_global.languages import Language, UnsupportedLanguageError
from instruct_global.resources.translation import SegmentOutcome, TranslatorResource

NO_TRANSLATOR_REASON = (
    "no translator is configured (INSTRUCT_GLOBAL_TRANSLATOR=none): template and self-instruct rows need "
    "one (INSTRUCT_GLOBAL_TRANSLATOR=nllb with the model downloaded once, or google with a project)"
)


class NoTranslator(TranslatorResource):
    """Covers no language; asking it to translate is an error that names the fix."""

    backend_name: ClassVar[str] = "none"

    def supports(self, lang: Language) -> bool:
        return False

    def coverage_problem(self, lang: Language) -> None:
        return None  # not a problem: the stages that need a translator step aside

    def _language_code(self, lang: Language) -> str:
        raise UnsupportedLanguageError(NO_TRANSLATOR_REASON)

    def _english_code(self) -> str:
        return "eng"

    def model_id(self) -> str:
        return "none"

    def cache_params(self) -> dict[str, Any]:
        return {}

    def _translate_uncached(
        self, segments: list[str], source_code: str, target_code: str
    ) -> Iterator[Mapping[int, SegmentOutcome]]:
        raise UnsupportedLanguageError(NO_TRANSLATOR_REASON)


def translator_steps_aside(translator: TranslatorResource) -> bool:
    return translator.backend_name == NoTranslator.backend_name
