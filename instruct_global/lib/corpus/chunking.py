"""Split documents into chunks under a token budget, at paragraph then sentence boundaries.

Token counting is pluggable. The default is an offline estimate (words and punctuation marks
times a factor): tiktoken downloads its BPE files on first use, so it cannot be the default in
an offline pipeline. Pass any ``str -> int`` (for example a Hugging Face tokenizer's
``lambda s: len(tok(s).input_ids)``) for exact counts.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import regex

from instruct_global.languages import Language
from instruct_global.lib.common import sentences

TokenCounter = Callable[[str], int]

# BPE vocabularies split words of these languages (tone marks, Ethiopic syllables) into several
# tokens, so the estimate is deliberately pessimistic: a chunk that fits here fits there.
DEFAULT_TOKEN_FACTOR = 1.5
_PIECE = regex.compile(r"[\p{L}\p{M}\p{N}]+|[^\p{L}\p{M}\p{N}\s]")
_PARAGRAPH_BREAK = regex.compile(r"(\n\s*)")  # captured: chunks keep the document's own breaks

def approx_token_count(text: str, factor: float = DEFAULT_TOKEN_FACTOR) -> int:
    """Words and punctuation marks times ``factor``, rounded up. Fast and offline."""
    return math.ceil(len(_PIECE.findall(text)) * factor)


def make_approx_counter(factor: float = DEFAULT_TOKEN_FACTOR) -> TokenCounter:
    return functools.partial(approx_token_count, factor=factor)


def regex_split_sentences(text: str) -> list[str]:
    """Sentences by the terminator-aware regex splitter (no language rules)."""
    return sentences.split_sentences(text, "und")


def split_sentences(text: str, lang: Language | None = None) -> list[str]:
    """pysbd where it has rules for the language, else the terminator-aware regex splitter."""
    return sentences.split_sentences(text, lang.key if lang is not None else "und")


def _largest_prefix(n: int, fits: Callable[[int], bool]) -> int:
    """Largest k in [0, n] with fits(k), assuming fits is monotone.

    Galloping (1, 2, 4 ...) before the binary search keeps each probe near the answer's size, so
    cutting a huge unpunctuated text costs O(n log n), not O(n^2).
    """
    if n == 0 or not fits(1):
        return 0
    lo, hi = 1, 2
    while hi < n and fits(hi):
        lo, hi = hi, hi * 2
    if hi >= n:
        if fits(n):
            return n
        hi = n
    hi -= 1  # fits(hi + 1) is False
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def hard_cut(sentence: str, max_tokens: int, count: TokenCounter) -> list[str]:
    """Cut one over-long sentence at word boundaries; a single over-long word by characters."""
    words = sentence.split()
    pieces: list[str] = []
    while words:
        k = _largest_prefix(len(words), lambda k, ws=words: count(" ".join(ws[:k])) <= max_tokens)
        if k == 0:  # one word is over budget on its own (a URL, base64, a run of symbols)
            word = words.pop(0)
            while word:
                n = max(1, _largest_prefix(len(word), lambda n, w=word: count(w[:n]) <= max_tokens))
                pieces.append(word[:n])
                word = word[n:]
            continue
        pieces.append(" ".join(words[:k]))
        words = words[k:]
    return pieces


_UNTIDY = regex.compile(r"\n\s*\n\s*\n|\n[^\S\n]|[^\S\n]\n")


def _is_tidy(text: str) -> bool:
    return text == text.strip() and not _UNTIDY.search(text)


def _approx_factor(count: TokenCounter) -> float | None:
    """The factor when ``count`` is the approximate counter (whose counts add up over whitespace)."""
    if count is approx_token_count:
        return DEFAULT_TOKEN_FACTOR
    if isinstance(count, functools.partial) and count.func is approx_token_count and not count.args:
        return float(count.keywords.get("factor", DEFAULT_TOKEN_FACTOR))
    return None


def chunk_text(
    text: str,
    max_tokens: int,
    count: TokenCounter | None = None,
    lang: Language | None = None,
) -> list[str]:
    """Greedily pack paragraphs (then sentences, then hard cuts) into chunks of <= max_tokens."""
    return [chunk for chunk, _ in chunk_text_with_counts(text, max_tokens, count, lang)]


def chunk_text_with_counts(
    text: str,
    max_tokens: int,
    count: TokenCounter | None = None,
    lang: Language | None = None,
    *,
    n_pieces: int | None = None,
    line_pieces: Sequence[int] | None = None,
) -> list[tuple[str, int]]:
    """``chunk_text`` with each chunk's token count.

    With the approximate counter, pieces are counted once per unit and added up (units are
    joined by whitespace, which holds no piece), so packing is linear; any other counter is
    asked about every candidate chunk, as before. ``n_pieces`` (the text's pieces) and
    ``line_pieces`` (those of each line of ``text.split("\\n")``) are counts the caller has
    already; for a tidy text its paragraphs are its non-empty lines, so they are not counted again.
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
    count = count or approx_token_count
    factor = _approx_factor(count)
    if factor is not None:
        # A tidy text (stripped lines, at most one blank line between them) that fits the budget
        # is its own single chunk: packing its paragraphs would join them back into it.
        tidy = (n_pieces is not None or line_pieces is not None) and _is_tidy(text)
        if tidy and n_pieces is not None and math.ceil(n_pieces * factor) <= max_tokens:
            return [(text, math.ceil(n_pieces * factor))] if text else []
        return _chunk_additive(text, max_tokens, count, lang, factor, line_pieces if tidy else None)
    # (unit, text that joins it to the previous unit): a space inside a paragraph, the document's
    # own line break ("\n" or "\n\n") between paragraphs.
    units: list[tuple[str, str]] = []
    parts = _PARAGRAPH_BREAK.split(text)
    for i in range(0, len(parts), 2):
        paragraph = parts[i].strip()
        if not paragraph:
            continue
        brk = "\n\n" if i == 0 or parts[i - 1].count("\n") > 1 else "\n"
        if count(paragraph) <= max_tokens:
            units.append((paragraph, brk))
            continue
        for j, sentence in enumerate(split_sentences(paragraph, lang)):
            pieces = [sentence] if count(sentence) <= max_tokens else hard_cut(sentence, max_tokens, count)
            units.extend((piece, brk if j == 0 and k == 0 else " ") for k, piece in enumerate(pieces))
    chunks: list[str] = []
    current = ""
    for unit, joiner in units:
        candidate = f"{current}{joiner}{unit}" if current else unit
        # Counting the joined text (not summing parts) keeps the budget exact for any counter.
        if count(candidate) <= max_tokens:
            current = candidate
        else:
            if current:
                chunks.append(current)
            current = unit
    if current:
        chunks.append(current)
    return [(chunk, count(chunk)) for chunk in chunks]


def _chunk_additive(
    text: str,
    max_tokens: int,
    count: TokenCounter,
    lang: Language | None,
    factor: float,
    line_pieces: Sequence[int] | None = None,
) -> list[tuple[str, int]]:
    """The same chunks as the general path, for the approximate counter, in linear time.

    ``line_pieces``: the pieces of each line of a tidy ``text`` (then its paragraphs are its
    non-empty lines, and the breaks between them one or two newlines), when the caller has them.
    """

    def tokens(pieces: int) -> int:
        return math.ceil(pieces * factor)

    units: list[tuple[str, str, int]] = []  # (unit, joiner, pieces)
    parts = _PARAGRAPH_BREAK.split(text)
    line = 0  # index in text.split("\n") of parts[i]
    for i in range(0, len(parts), 2):
        if i:
            line += parts[i - 1].count("\n")
        paragraph = parts[i].strip()
        if not paragraph:
            continue
        brk = "\n\n" if i == 0 or parts[i - 1].count("\n") > 1 else "\n"
        if line_pieces is not None and len(paragraph) == len(parts[i]):
            n = line_pieces[line]
        else:
            n = len(_PIECE.findall(paragraph))
        if tokens(n) <= max_tokens:
            units.append((paragraph, brk, n))
            continue
        for j, sentence in enumerate(split_sentences(paragraph, lang)):
            m = len(_PIECE.findall(sentence))
            pieces = [sentence] if tokens(m) <= max_tokens else hard_cut(sentence, max_tokens, count)
            for k, piece in enumerate(pieces):
                units.append((piece, brk if j == 0 and k == 0 else " ", m if len(pieces) == 1 else len(_PIECE.findall(piece))))
    chunks: list[tuple[str, int]] = []
    current: list[str] = []
    current_pieces = 0
    for unit, joiner, n in units:
        if current and tokens(current_pieces + n) <= max_tokens:
            current.append(joiner)
            current.append(unit)
            current_pieces += n
        elif not current and tokens(n) <= max_tokens:
            current, current_pieces = [unit], n
        else:
            if current:
                chunks.append(("".join(current), tokens(current_pieces)))
            current, current_pieces = [unit], n
    if current:
        chunks.append(("".join(current), tokens(current_pieces)))
    return chunks
