"""Carry ``{variable_N}`` placeholders through machine translation, and prove they came through.

MT models treat ``{variable_1}`` as text: they translate "variable", drop a brace, swap braces for
full-width ones, or lose the placeholder. So a text is *protected* before translation and
*restored* after, and the result is verified; a failure is retried with the next strategy.

Strategies, in the default order:

- ``sentinel``: each placeholder occurrence becomes ``__V1__``, ``__V2__`` ... (numbered by
  occurrence, not by variable). Why this shape: there is no word in it for the model to
  translate; it is made of digits, ASCII underscores and one capital, which MT models tend to copy
  as an identifier rather than transliterate the way they do names (a risk for Ethiopic-script
  output); SentencePiece cuts it into ``__`` / ``V`` / ``1`` pieces that are common in code and
  web text. This is a reasoned choice, not a measured one: no real NLLB/Google run backs it here,
  and the ``split`` fallback covers the texts where it fails. Restore
  tolerates what models do to such tokens without changing their identity: spaces inside
  (``__ V1 __``), case (``__v1__``), one to three underscores per side. It never guesses: a bare
  ``V1`` or an unknown number is not restored and the text fails verification.
- ``split``: only the literal pieces between placeholders are translated and re-assembled in the
  original order, so placeholders cannot be lost; fluency suffers (the model never sees the
  sentence whole), which is why it is the fallback.
- ``raw``: the text as it is (some backends copy braces faithfully); opt-in only.

What counts as a placeholder is ``placeholders.PLACEHOLDER_RE`` (one definition for the project);
anything placeholder-like that it refuses (``{variable_01}``, ``{{variable_1}}``) is damage.

``protect`` returns the texts to send to the translator plus a ``restore`` function, so a caller
batches every text of one strategy into one translator call; ``translate_with_protection`` does
exactly that.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from instruct_global.lib.common.placeholders import PLACEHOLDER_RE, braced, placeholder_name

# Anything that still says "variable N" once the exact placeholders are masked is a damaged one.
_LOOSE_VARIABLE_RE = re.compile(r"variable[ \t\u00a0]*[_＿]?[ \t\u00a0]*\d+", re.IGNORECASE)
# {kigezo_1}, ｛variable_1｝: a brace pair around "word_N" that is not an exact placeholder.
_BRACED_INDEXED_RE = re.compile(r"[{｛][ \t]*[^\W\d_]+[ \t]*[_＿][ \t]*\d+[ \t]*[}｝]")
_SENTINEL_RE = re.compile(r"_{1,3}[ \t\u00a0]*[vV][ \t\u00a0]*(\d+)[ \t\u00a0]*_{1,3}")
_LETTER_RE = re.compile(r"[^\W\d_]")
_EDGES_RE = re.compile(r"([\W_]*)(.*?)(\s*)", re.DOTALL)

STRATEGIES = ("sentinel", "split", "raw")
DEFAULT_STRATEGIES = ("sentinel", "split")

TranslateFn = Callable[[list[str]], list[str | None]]


class RestoreError(ValueError):
    """A translation cannot be mapped back to the source's placeholders; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Protected:
    """What to send to the translator for one text, and how to rebuild the text from the answers."""

    texts_to_translate: list[str]
    restore: Callable[[list[str]], str]


@dataclass(frozen=True)
class ProtectedResult:
    text: str | None  # None: every strategy failed
    strategy_used: str | None  # the strategy that succeeded, "passthrough", or None
    attempts: int  # strategies tried (translator round trips for this text)
    reason: str | None  # why the last attempt failed, when text is None
    failures: tuple[str, ...] = ()  # "strategy:reason" for every failed attempt, in order


def _occurrences(text: str) -> list[str]:
    """Every well-formed placeholder occurrence, braced, in order (a multiset, unlike
    ``placeholders.find_placeholders`` which lists each name once)."""
    return [match.group(0) for match in PLACEHOLDER_RE.finditer(text)]


def has_translatable_text(text: str) -> bool:
    """Whether anything outside the placeholders is worth sending to a translator (has a letter)."""
    return bool(_LETTER_RE.search(PLACEHOLDER_RE.sub(" ", text)))


# --- verification -------------------------------------------------------------------------------


def _mangled_fragments(text: str) -> Counter[str]:
    """Damaged placeholders in ``text``, keyed by a normalised form so source and output compare."""
    found: Counter[str] = Counter()
    # PLACEHOLDER_RE refuses "{{variable_1}}" and "{variable_01}", so they stay visible here.
    masked = PLACEHOLDER_RE.sub(lambda m: "\0" * len(m.group(0)), text)
    spans: list[tuple[int, int]] = []
    for pattern in (_BRACED_INDEXED_RE, _LOOSE_VARIABLE_RE):
        for match in pattern.finditer(masked):
            if any(start <= match.start() < end for start, end in spans):
                continue  # "｛variable_1｝" is one damage, not two
            spans.append(match.span())
            found[re.sub(r"\s+", "", match.group(0)).casefold()] += 1
    return found


def placeholder_mismatches_against(
    expected: Iterable[str], output: str, *, source_text: str = ""
) -> list[str]:
    """Every placeholder problem of ``output`` against the expected placeholder multiset.

    ``expected`` holds names or braced forms (``variable_2`` / ``{variable_2}``), repeated when a
    placeholder must occur more than once. ``source_text`` is the baseline for damage: a
    "variable 2" already in the source is not counted as damage in the output.
    """
    problems: list[str] = []
    mangled = _mangled_fragments(output) - _mangled_fragments(source_text)
    if mangled:
        problems.append("placeholder_mangled")
    want = Counter(braced(placeholder_name(name)) for name in expected)
    got = Counter(_occurrences(output))
    problems += [f"placeholder_missing:{name}" for name in sorted(want - got)]
    for name in sorted(got - want):
        kind = "duplicated" if name in want else "invented"
        problems.append(f"placeholder_{kind}:{name}")
    return problems


def placeholder_mismatches(source: str, output: str) -> list[str]:
    """All problems of ``output`` against its ``source`` (empty list: placeholders intact).

    Reasons as in ``verify_placeholders``; named apart from ``placeholders.placeholder_problems``,
    which checks a template against the variables of its dataset.
    """
    return placeholder_mismatches_against(_occurrences(source), output, source_text=source)


def verify_placeholders(source: str, output: str) -> tuple[bool, str | None]:
    """``output`` holds exactly the placeholders of ``source`` as a multiset, none damaged.

    The reason is the first problem: ``placeholder_mangled`` (broken or full-width braces, a
    translated "variable"), then ``placeholder_missing:{variable_N}``,
    ``placeholder_duplicated:...``, ``placeholder_invented:...``. Order in the text may change.
    """
    problems = placeholder_mismatches(source, output)
    return (not problems, problems[0] if problems else None)


# --- protection strategies ----------------------------------------------------------------------


def _protect_sentinel(text: str) -> Protected:
    if _SENTINEL_RE.search(text):
        # The text already holds sentinel-shaped tokens: restoring could not tell them apart.
        raise RestoreError("sentinel_collision")
    by_index: dict[int, str] = {}

    def to_sentinel(match: re.Match[str]) -> str:
        index = len(by_index) + 1
        by_index[index] = match.group(0)
        return f"__V{index}__"

    protected = PLACEHOLDER_RE.sub(to_sentinel, text)

    def restore(translations: list[str]) -> str:
        (translated,) = translations

        def to_placeholder(match: re.Match[str]) -> str:
            index = int(match.group(1))
            if index not in by_index:
                raise RestoreError(f"sentinel_unknown:{match.group(0).strip()}")
            return by_index[index]

        return _SENTINEL_RE.sub(to_placeholder, translated)

    return Protected([protected], restore)


def _split_edges(piece: str) -> tuple[str, str, str]:
    """Leading space/punctuation, core, trailing space; the edges stay literal, only the core is sent.

    MT drops a leading ", " or ": " of a fragment and strips whitespace; trailing punctuation stays
    in the core because "?" or "!" changes how the fragment is translated.
    """
    match = _EDGES_RE.fullmatch(piece)
    assert match is not None  # the pattern matches any string
    return match.group(1), match.group(2), match.group(3)


def _protect_split(text: str) -> Protected:
    placeholders = _occurrences(text)
    pieces, cursor = [], 0
    for match in PLACEHOLDER_RE.finditer(text):  # not re.split: the pattern has a capture group
        pieces.append(text[cursor : match.start()])
        cursor = match.end()
    pieces.append(text[cursor:])
    edges = [_split_edges(piece) for piece in pieces]
    # Only pieces with a letter go to the translator: "", ", " or "?" would invite hallucination.
    translate_at = [i for i, (_, core, _) in enumerate(edges) if _LETTER_RE.search(core)]

    def restore(translations: list[str]) -> str:
        translated = dict(zip(translate_at, translations, strict=True))
        out: list[str] = []
        for i, (lead, _core, trail) in enumerate(edges):
            out.append(lead + translated[i].strip() + trail if i in translated else pieces[i])
            if i < len(placeholders):
                out.append(placeholders[i])
        return "".join(out)

    return Protected([edges[i][1] for i in translate_at], restore)


def _protect_raw(text: str) -> Protected:
    return Protected([text], lambda translations: translations[0])


_PROTECTORS: dict[str, Callable[[str], Protected]] = {
    "sentinel": _protect_sentinel,
    "split": _protect_split,
    "raw": _protect_raw,
}


def protect(text: str, strategy: str) -> Protected:
    """Texts to translate for ``text`` under ``strategy`` and the function that rebuilds it.

    Raises ``RestoreError("sentinel_collision")`` when the sentinel strategy cannot be used safely
    for this text, ``ValueError`` for an unknown strategy. ``restore`` may raise ``RestoreError``;
    its result must still go through ``verify_placeholders``.
    """
    if strategy not in _PROTECTORS:
        raise ValueError(f"unknown placeholder strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
    if not has_translatable_text(text):
        return Protected([], lambda _translations: text)
    return _PROTECTORS[strategy](text)


# --- the batched driver -------------------------------------------------------------------------


def translate_with_protection(
    texts: Sequence[str],
    translate_fn: TranslateFn,
    strategies: Sequence[str] = DEFAULT_STRATEGIES,
) -> list[ProtectedResult]:
    """Translate ``texts`` keeping their placeholders; one ``translate_fn`` call per strategy.

    Each strategy is tried on the texts still failing; a text that no strategy brings through with
    exactly its placeholders comes back with ``text=None`` and the last reason. ``translate_fn``
    returns one item per input, ``None`` for an item it could not translate.
    """
    for strategy in strategies:
        if strategy not in _PROTECTORS:
            raise ValueError(
                f"unknown placeholder strategy {strategy!r}; choose from {', '.join(STRATEGIES)}"
            )
    if not strategies:
        raise ValueError("at least one placeholder strategy is needed")

    results: list[ProtectedResult | None] = [None] * len(texts)
    failures: list[list[str]] = [[] for _ in texts]
    pending: list[int] = []
    for i, text in enumerate(texts):
        if has_translatable_text(text):
            pending.append(i)
        else:  # nothing to translate: placeholders and punctuation only, or empty
            results[i] = ProtectedResult(text, "passthrough", 0, None)

    for strategy in strategies:
        if not pending:
            break
        batch: list[str] = []
        plans: list[tuple[int, Protected, int, int]] = []  # text index, plan, slice start, slice end
        for i in pending:
            try:
                plan = protect(texts[i], strategy)
            except RestoreError as err:
                failures[i].append(f"{strategy}:{err.reason}")
                continue
            plans.append((i, plan, len(batch), len(batch) + len(plan.texts_to_translate)))
            batch.extend(plan.texts_to_translate)
        answers = list(translate_fn(batch)) if batch else []
        if len(answers) != len(batch):
            raise ValueError(f"translate_fn returned {len(answers)} items for {len(batch)} texts")
        for i, plan, start, end in plans:
            reason = _attempt(texts[i], plan, answers[start:end])
            if isinstance(reason, str):
                failures[i].append(f"{strategy}:{reason}")
            else:
                results[i] = ProtectedResult(
                    reason.text, strategy, len(failures[i]) + 1, None, tuple(failures[i])
                )
        pending = [i for i in pending if results[i] is None]

    for i in pending:
        last = failures[i][-1].split(":", 1)[1] if failures[i] else "not_attempted"
        results[i] = ProtectedResult(None, None, len(failures[i]), last, tuple(failures[i]))
    return [result for result in results if result is not None]


@dataclass(frozen=True)
class _Success:
    text: str


def _attempt(source: str, plan: Protected, answers: list[str | None]) -> _Success | str:
    """The restored, verified text, or the reason this attempt failed."""
    if any(answer is None or not isinstance(answer, str) for answer in answers):
        return "translation_failed"
    if any(not answer.strip() for answer in answers if answer is not None):
        return "empty"
    try:
        restored = plan.restore([answer for answer in answers if answer is not None])
    except RestoreError as err:
        return err.reason
    ok, reason = verify_placeholders(source, restored)
    if not ok:
        return reason or "placeholder_unverified"
    if len(_SENTINEL_RE.findall(restored)) > len(_SENTINEL_RE.findall(source)):
        return "sentinel_residue"  # a sentinel-shaped token the source never had leaked into the text
    return _Success(restored)
