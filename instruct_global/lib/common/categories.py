"""The ten task categories, their default mix and exact per-category quotas.

The default mix follows the InstructGPT prompt distribution (Ouyang et al. 2022, table 1):
generation 45.6, open QA 12.4, brainstorming 11.2, chat 8.4, rewrite 6.6, summarisation 4.2,
classification 3.5, closed QA 2.6, extraction 1.9, other 3.5. Multiple-choice takes closed QA's
share and translation (which instruct-global needs and InstructGPT did not list) takes "other";
as a spelling, "closed_qa" still means question-answer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from fractions import Fraction

# Canonical order: also the tie-break order of ``exact_quotas``.
CATEGORIES: tuple[str, ...] = (
    "generation",
    "question-answer",
    "brainstorming",
    "chat",
    "summarisation",
    "classification",
    "multiple-choice",
    "rewrite",
    "translation",
    "extraction",
)

# Percentages as published; normalised to shares summing to 1 in DEFAULT_MIX.
_DEFAULT_PERCENT: dict[str, float] = {
    "generation": 45.6,
    "question-answer": 12.4,
    "brainstorming": 11.2,
    "chat": 8.4,
    "summarisation": 4.2,
    "classification": 3.5,
    "multiple-choice": 2.6,
    "rewrite": 6.6,
    "translation": 3.5,
    "extraction": 1.9,
}

# One line per category, used in prompts so the model knows what the category means.
CATEGORY_DESCRIPTIONS: dict[str, str] = {
    "generation": "write new text (a story, letter, poem, speech, advice, explanation) from a brief",
    "question-answer": "answer a question, from general knowledge or from a given text",
    "brainstorming": "produce a list of ideas, options or suggestions",
    "chat": "reply as a helpful assistant in a conversation, continuing a dialogue",
    "summarisation": "shorten a given text while keeping its main points",
    "classification": "assign a given text or item to one of a set of labels",
    "multiple-choice": "choose the correct option among given choices",
    "rewrite": "rewrite a given text in another style, tone, register or form",
    "translation": "translate a given text from one language to another",
    "extraction": "pull specific facts, names, numbers or spans out of a given text",
}


class UnknownCategoryError(ValueError):
    """A category name that is neither canonical nor a known alias."""


def _compact(name: str) -> str:
    # "Open_QA", "open-qa" and "open qa" all compact to "openqa".
    return re.sub(r"[^a-z0-9]", "", name.casefold())


_ALIASES: dict[str, str] = {
    **{_compact(c): c for c in CATEGORIES},
    # generation
    "gen": "generation", "textgeneration": "generation", "opengeneration": "generation",
    "creativewriting": "generation", "writing": "generation", "generate": "generation",
    # question-answer
    "qa": "question-answer", "questionanswering": "question-answer", "openqa": "question-answer",
    "closedqa": "question-answer", "question": "question-answer", "questions": "question-answer",
    "questionandanswer": "question-answer", "questionsandanswers": "question-answer",
    "questionsanswers": "question-answer", "questionanswers": "question-answer",
    "generalqa": "question-answer",
    # brainstorming
    "brainstorm": "brainstorming", "ideation": "brainstorming",
    # chat
    "conversation": "chat", "dialogue": "chat", "dialog": "chat", "conversational": "chat",
    # summarisation
    "summarization": "summarisation", "summary": "summarisation", "summarise": "summarisation",
    "summarize": "summarisation", "summaries": "summarisation",
    # classification
    "classify": "classification", "textclassification": "classification",
    "sentiment": "classification", "sentimentanalysis": "classification",
    # multiple-choice
    "mcq": "multiple-choice", "multichoice": "multiple-choice", "multiplechoiceqa": "multiple-choice",
    "multiplechoicequestion": "multiple-choice", "multiplechoicequestions": "multiple-choice",
    # rewrite
    "rewriting": "rewrite", "paraphrase": "rewrite", "paraphrasing": "rewrite", "editing": "rewrite",
    "edit": "rewrite",
    # translation
    "translate": "translation", "machinetranslation": "translation",
    # extraction
    "extract": "extraction", "informationextraction": "extraction",
    "namedentityrecognition": "extraction", "ner": "extraction",
}  # fmt: skip


def normalise_category(name: str) -> str:
    """Map a spelling such as "summarization", "open_qa" or "Multiple Choice" to its canonical name."""
    if not isinstance(name, str):
        raise UnknownCategoryError(f"category must be a string, got {type(name).__name__}")
    canonical = _ALIASES.get(_compact(name))
    if canonical is None:
        raise UnknownCategoryError(
            f"unknown task category {name!r}; known categories: {', '.join(CATEGORIES)}"
        )
    return canonical


def is_category(name: str) -> bool:
    try:
        normalise_category(name)
    except UnknownCategoryError:
        return False
    return True


def _weights(mix: Mapping[str, float]) -> dict[str, Fraction]:
    """Validated weights per canonical category, as exact fractions (floats convert exactly)."""
    if not isinstance(mix, Mapping):
        raise TypeError(f"category mix must be a mapping of category to weight, got {type(mix).__name__}")
    weights = dict.fromkeys(CATEGORIES, Fraction(0))
    given_as: dict[str, str] = {}
    for raw_name, value in mix.items():
        name = normalise_category(raw_name)
        if name in given_as:
            raise ValueError(f"category mix names {name!r} twice (as {given_as[name]!r} and {raw_name!r})")
        given_as[name] = raw_name
        if isinstance(value, bool) or not isinstance(value, int | float | Fraction):
            raise ValueError(f"weight of category {raw_name!r} must be a number, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"weight of category {raw_name!r} must be finite, got {value!r}")
        if value < 0:
            raise ValueError(f"weight of category {raw_name!r} must not be negative, got {value!r}")
        weights[name] = Fraction(value)
    if sum(weights.values()) == 0:
        raise ValueError("category mix has no positive weight: at least one category needs a share > 0")
    return weights


def normalise_mix(mix: Mapping[str, float]) -> dict[str, float]:
    """Shares for all ten categories, in canonical order, summing to 1 (missing categories get 0)."""
    weights = _weights(mix)
    total = sum(weights.values())
    return {name: float(w / total) for name, w in weights.items()}


DEFAULT_MIX: dict[str, float] = normalise_mix(_DEFAULT_PERCENT)


def restrict_mix(mix: Mapping[str, float], allowed: Iterable[str]) -> dict[str, float]:
    """The mix renormalised over ``allowed`` (e.g. the categories the user's datasets cover)."""
    keep = {normalise_category(a) for a in allowed}
    weights = _weights(mix)
    restricted = {name: (float(w) if name in keep else 0.0) for name, w in weights.items()}
    if not any(restricted.values()):
        raise ValueError(
            f"category mix gives no weight to any of the allowed categories: {', '.join(sorted(keep))}"
        )
    return normalise_mix(restricted)


def exact_quotas(mix: Mapping[str, float], total: int) -> dict[str, int]:
    """Split ``total`` items over the categories by largest remainder (Hamilton) rounding.

    The quotas sum exactly to ``total``. Arithmetic is exact (fractions), so the result never
    depends on float rounding; equal remainders go to the category that comes first in
    ``CATEGORIES``. Categories with share 0 always get 0.
    """
    if isinstance(total, bool) or not isinstance(total, int):
        raise ValueError(f"total must be an integer, got {total!r}")
    if total < 0:
        raise ValueError(f"total must not be negative, got {total}")
    weights = _weights(mix)
    weight_sum = sum(weights.values())
    exact = {name: w * total / weight_sum for name, w in weights.items()}
    quotas = {name: math.floor(q) for name, q in exact.items()}
    left = total - sum(quotas.values())
    order = {name: i for i, name in enumerate(CATEGORIES)}
    by_remainder = sorted(CATEGORIES, key=lambda n: (-(exact[n] - quotas[n]), order[n]))
    for name in by_remainder[:left]:
        quotas[name] += 1
    return quotas
