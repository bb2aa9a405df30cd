"""Word tokenizers for similarity measures.

``rouge_tokenize`` reproduces rouge-score's default tokenization (no stemmer) exactly, so that
scores agree with ``rouge_score.rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)``. It
drops every non-ASCII letter, which makes it useless for Amharic or Yoruba;
``unicode_word_tokenize`` is the script-aware alternative for those languages.
"""

from __future__ import annotations

import re
import unicodedata

import regex

# rouge_score.tokenize: lowercase, replace runs of anything but [a-z0-9] by a space, split.
# Finding the [a-z0-9] runs gives the same tokens in one pass.
_ROUGE_TOKEN_RE = re.compile(r"[a-z0-9]+")

# Letters, combining marks (Yoruba tone marks, Ethiopic vowel marks) and digits of any script.
WORD_RE = regex.compile(r"[\p{L}\p{M}\p{N}]+")


def rouge_tokenize(text: str) -> list[str]:
    """Tokenize exactly like rouge-score's ``DefaultTokenizer(use_stemmer=False)``.

    ``str.lower`` runs before the ASCII filter, as in rouge-score, so e.g. the Kelvin sign
    lowercases to ``k`` and survives.
    """
    return _ROUGE_TOKEN_RE.findall(text.lower())


def unicode_word_tokenize(text: str) -> list[str]:
    """Split ``text`` into case-folded, NFC-normalised words of any script.

    NFC runs before and after case folding: before, so NFD input (Yoruba ``e`` + dot below +
    tone mark) matches its precomposed form; after, because case folding can decompose
    characters (``İ`` folds to ``i`` + combining dot above).
    """
    folded = unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())
    return WORD_RE.findall(folded)
