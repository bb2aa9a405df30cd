"""The language registry: one frozen record per language, the single source of partitions.

Adding a language is one entry in ``LANGUAGES``. A backend that does not cover a language has
``None`` in its field; ``Language.require`` turns that into a clear error for the stage that
needs it.
"""

from __future__ import annotations

from dataclasses import dataclass


class UnsupportedLanguageError(ValueError):
    """A stage needs a backend that does not cover this language."""


@dataclass(frozen=True)
class Language:
    key: str  # ISO 639-3, the partition key
    name: str  # English name, used in prompts ("Yoruba", never only "yor")
    script: str  # ISO 15924
    nllb_code: str | None
    wikipedia_code: str | None
    bbc_service: str | None  # path segment of bbc.com/<service>
    google_code: str | None

    def require(self, field: str, backend: str) -> str:
        """Return the backend's code for this language, or fail naming language and backend."""
        value = getattr(self, field)
        if value is None:
            raise UnsupportedLanguageError(
                f"{self.name} ({self.key}) is not covered by {backend}: the language registry has no "
                f"'{field}' for it. Choose another backend for this partition or add the code to "
                f"instruct_global/languages.py if the backend supports it."
            )
        return value

    @property
    def wikipedia_host(self) -> str:
        return f"{self.require('wikipedia_code', 'Wikipedia')}.wikipedia.org"


LANGUAGES: dict[str, Language] = {
    lang.key: lang
    for lang in (
        Language("yor", "Yoruba", "Latn", "yor_Latn", "yo", "yoruba", "yo"),
        Language("hau", "Hausa", "Latn", "hau_Latn", "ha", "hausa", "ha"),
        Language("ibo", "Igbo", "Latn", "ibo_Latn", "ig", "igbo", "ig"),
        # NLLB-200 has no Nigerian Pidgin; Google Cloud Translation does not list it either.
        Language("pcm", "Nigerian Pidgin", "Latn", None, "pcm", "pidgin", None),
        Language("swh", "Swahili", "Latn", "swh_Latn", "sw", "swahili", "sw"),
        Language("amh", "Amharic", "Ethi", "amh_Ethi", "am", "amharic", "am"),
        Language("som", "Somali", "Latn", "som_Latn", "so", "somali", "so"),
        # BBC News has no Zulu service.
        Language("zul", "Zulu", "Latn", "zul_Latn", "zu", None, "zu"),
        Language("kin", "Kinyarwanda", "Latn", "kin_Latn", "rw", "gahuza", "rw"),
        Language("tir", "Tigrinya", "Ethi", "tir_Ethi", "ti", "tigrinya", "ti"),
        Language("orm", "Oromo", "Latn", "gaz_Latn", "om", "afaanoromoo", "om"),
    )
}


def get_language(key: str) -> Language:
    try:
        return LANGUAGES[key]
    except KeyError:
        known = ", ".join(sorted(LANGUAGES))
        raise UnsupportedLanguageError(
            f"unknown language partition '{key}'; the registry knows: {known}"
        ) from None


def language_keys() -> list[str]:
    return list(LANGUAGES)
