"""Sentence segmentation for machine translation, with a lossless way back to the layout.

MT models translate sentences well and paragraphs badly (NLLB drops or repeats content past a
few hundred tokens), so text is cut into sentences, each sentence is translated (and cached) on
its own, and the translations are put back between the original whitespace. A newline always
ends a segment, so paragraph breaks and list lines survive translation exactly.

``{variable_1}``-style placeholders (and protection sentinels such as ``__V1__``) are
unbreakable: they are masked while splitting, so no cut ever falls inside one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import regex

# ISO 639-3 (registry keys, "eng") -> pysbd's language codes; other languages use the regex splitter.
_PYSBD_CODES = {
    "eng": "en", "amh": "am", "arb": "ar", "ara": "ar", "bul": "bg", "dan": "da", "deu": "de",
    "ell": "el", "spa": "es", "fas": "fa", "pes": "fa", "fra": "fr", "hin": "hi", "hye": "hy",
    "ita": "it", "jpn": "ja", "kaz": "kk", "mar": "mr", "mya": "my", "nld": "nl", "pol": "pl",
    "rus": "ru", "slk": "sk", "urd": "ur", "zho": "zh", "cmn": "zh",
}  # fmt: skip

DEFAULT_MAX_CHARS = 400

# Never cut inside these: ``{variable_1}`` (and any short brace token, a superset of
# ``placeholders.PLACEHOLDER_RE``) and the ``__V1__`` sentinels of ``placeholder_protection``.
UNBREAKABLE_RE = regex.compile(r"\{[^{}\n]{1,64}\}|__V[0-9]+__")
# Sentence-final punctuation (Latin/common and Ethiopic full stop, question mark, paragraph
# separator), with any closing quotes or brackets that belong to the sentence.
_TERMINATOR_RE = regex.compile(r"(?:[.!?…]+|[።፧፨]+)[\"'”’»)\]]*")
_ETHIOPIC_STOPS = frozenset("።፧፨")
# Where an over-long sentence may be cut: after a clause mark, else at whitespace.
_CLAUSE_CUT_RE = regex.compile(r"[,;:،፣፤፥]\s")
_ABBREVIATIONS = frozenset(
    ("mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "etc", "e.g", "i.e", "no", "nos", "fig",
     "al", "gen", "col", "lt", "sgt", "rev", "hon", "approx", "dept", "est")
)  # fmt: skip


@dataclass(frozen=True)
class Segmented:
    """A text cut into translatable segments plus the exact text between them.

    ``separators`` has one more item than ``segments``: what precedes the first segment, what
    lies between each pair (a space, or newlines for a paragraph break) and what trails the last.
    ``rejoin(segments)`` gives the original text back.
    """

    segments: tuple[str, ...]
    separators: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.separators) != len(self.segments) + 1:
            raise ValueError("Segmented needs exactly one more separator than segments")

    def __len__(self) -> int:
        return len(self.segments)

    def rejoin(self, translated_segments: Sequence[str]) -> str:
        if len(translated_segments) != len(self.segments):
            raise ValueError(
                f"rejoin got {len(translated_segments)} segments for a text cut into {len(self.segments)}"
            )
        parts = [self.separators[0]]
        for text, sep in zip(translated_segments, self.separators[1:], strict=True):
            # MT output may carry its own edge whitespace; the layout comes from the separators.
            parts.append(text.strip())
            parts.append(sep)
        return "".join(parts)


def split_sentences(text: str, lang_key: str) -> list[str]:
    """The sentences of ``text`` (no length limit), whitespace-trimmed, in order."""
    return list(segment(text, lang_key, max_chars=None).segments)


def segment(text: str, lang_key: str, max_chars: int | None = DEFAULT_MAX_CHARS) -> Segmented:
    """Cut ``text`` into sentences (lines first), and sentences over ``max_chars`` at commas/spaces."""
    if max_chars is not None and max_chars < 1:
        raise ValueError("max_chars must be positive")
    masked, placeholders = _mask_placeholders(text)
    spans: list[tuple[int, int]] = []
    for line in regex.finditer(r"[^\n]+", masked):
        start, end = _trim(masked, line.start(), line.end())
        if start == end:
            continue
        for s_start, s_end in _sentence_spans(masked, start, end, lang_key):
            if max_chars is not None and s_end - s_start > max_chars:
                spans.extend(_split_long(masked, s_start, s_end, max_chars, placeholders))
            else:
                spans.append((s_start, s_end))
    segments = tuple(text[s:e] for s, e in spans)
    bounds = [0, *(p for span in spans for p in span), len(text)]
    separators = tuple(text[bounds[i] : bounds[i + 1]] for i in range(0, len(bounds), 2))
    return Segmented(segments, separators)


def _mask_placeholders(text: str) -> tuple[str, list[tuple[int, int]]]:
    """Replace each placeholder by a same-length capitalised word so offsets stay identical."""
    spans = [(m.start(), m.end()) for m in UNBREAKABLE_RE.finditer(text)]
    if not spans:
        return text, spans
    chars = list(text)
    for start, end in spans:
        chars[start:end] = "X" + "x" * (end - start - 1)
    return "".join(chars), spans


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _sentence_spans(text: str, start: int, end: int, lang_key: str) -> list[tuple[int, int]]:
    chunk = text[start:end]
    code = _pysbd_code(lang_key)
    relative = _pysbd_spans(chunk, code) if code else None
    if relative is None:
        relative = _regex_spans(chunk)
    return [(start + s, start + e) for s, e in relative]


def _pysbd_code(lang_key: str) -> str | None:
    key = lang_key.lower().split("_")[0]  # also accept NLLB-style "amh_Ethi"
    if key in _PYSBD_CODES:
        return _PYSBD_CODES[key]
    return key if key in set(_PYSBD_CODES.values()) else None


@lru_cache(maxsize=32)
def _pysbd_segmenter(code: str):  # type: ignore[no-untyped-def]
    import pysbd  # lazy: only languages pysbd knows need it

    return pysbd.Segmenter(language=code, clean=False)


def _pysbd_spans(chunk: str, code: str) -> list[tuple[int, int]] | None:
    """Offsets of pysbd's sentences, or None when its output cannot be located in the text."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for sentence in _pysbd_segmenter(code).segment(chunk):
        piece = sentence.strip()
        if not piece:
            continue
        found = chunk.find(piece, pos)
        if found < 0 or chunk[pos:found].strip():
            return None  # pysbd altered the text: fall back rather than lose characters
        spans.append((found, found + len(piece)))
        pos = found + len(piece)
    if chunk[pos:].strip():
        return None
    return spans


def _regex_spans(chunk: str) -> list[tuple[int, int]]:
    """Split after sentence punctuation, skipping abbreviations, initials and list numbers."""
    cuts: list[int] = []
    for m in _TERMINATOR_RE.finditer(chunk):
        if m.end() >= len(chunk):
            break
        if _ETHIOPIC_STOPS.intersection(m.group()):
            cuts.append(m.end())  # Ethiopic stops end a sentence with or without a space
            continue
        after = regex.match(r"\s+(\S)", chunk[m.end() :])
        if after is None or regex.match(r"\p{Ll}", after.group(1)):
            continue  # "3.5", "e.g. this": no space or a lowercase continuation
        if m.group().rstrip("\"'”’»)]") == "." and _is_abbreviation(chunk, m.start()):
            continue
        cuts.append(m.end())
    spans: list[tuple[int, int]] = []
    start = 0
    for cut in [*cuts, len(chunk)]:
        s, e = _trim(chunk, start, cut)
        if s < e:
            spans.append((s, e))
        start = cut
    return spans


def _is_abbreviation(chunk: str, dot: int) -> bool:
    word = regex.search(r"(\S+)$", chunk[:dot])
    if word is None:
        return False
    token = word.group(1)
    if len(token) == 1 and token.isalpha():
        return True  # an initial: "J. Smith"
    if token.lower() in _ABBREVIATIONS:
        return True
    # "1. First item" at the start of a line is a list number, not a sentence
    return token.isdigit() and len(token) <= 3 and not chunk[: word.start()].strip()


def _split_long(
    text: str, start: int, end: int, max_chars: int, placeholders: list[tuple[int, int]]
) -> list[tuple[int, int]]:
    """Cut an over-long sentence into pieces of at most ``max_chars`` (placeholders stay whole)."""
    pieces: list[tuple[int, int]] = []
    while end - start > max_chars:
        window = text[start : start + max_chars + 1]
        cut = _last_cut(window)
        if cut is None:
            cut = _outside_placeholder(start + max_chars, placeholders) - start
            if cut <= 0:  # the window opens with a placeholder longer than max_chars
                cut = next(e for s, e in placeholders if s <= start < e) - start
        piece = _trim(text, start, start + cut)
        if piece[0] < piece[1]:
            pieces.append(piece)
        start, _ = _trim(text, start + cut, end)
    if start < end:
        pieces.append((start, end))
    return pieces


def _last_cut(window: str) -> int | None:
    """Offset just after the last clause mark, else at the last whitespace, in the window."""
    clause = [m.start() + 1 for m in _CLAUSE_CUT_RE.finditer(window)]
    if clause and clause[-1] >= len(window) // 2:  # not a tiny leading fragment
        return clause[-1]
    spaces = [m.start() for m in regex.finditer(r"\s", window)]
    spaces = [s for s in spaces if s > 0]
    return spaces[-1] if spaces else None


def _outside_placeholder(pos: int, placeholders: list[tuple[int, int]]) -> int:
    for s, e in placeholders:
        if s < pos < e:
            return s
    return pos
