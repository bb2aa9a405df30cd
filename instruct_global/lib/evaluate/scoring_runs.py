"""Score one model on the translated TruthfulQA (local log-likelihood or API letter choice)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from instruct_global.lib.evaluate.letter_choice import letter_question, parse_letter
from instruct_global.lib.evaluate.mc_scoring import score_question
from instruct_global.lib.evaluate.truthfulqa import choices_and_labels


def fewshot_of(rows: pd.DataFrame) -> list[tuple[str, str]]:
    return [tuple(pair) for pair in json.loads(rows["fewshot"].iloc[0])] if len(rows) else []


def local_truthfulqa(model: Any, tokenizer: Any, rows: pd.DataFrame) -> dict[str, float]:
    fewshot = fewshot_of(rows)
    mc1, mc2 = [], []
    for row in rows.to_dict("records"):
        scores = score_question(
            model,
            tokenizer,
            row["question"],
            choices_and_labels(row, "mc1"),
            choices_and_labels(row, "mc2"),
            fewshot=fewshot,
            qid=row["qid"],
        )
        mc1.append(scores.mc1)
        mc2.append(scores.mc2)
    return {"truthfulqa_mc1": sum(mc1) / len(mc1), "truthfulqa_mc2": sum(mc2) / len(mc2)} if mc1 else {}


@dataclass
class LetterRun:
    accuracy: float
    answered: int
    unparsable: int
    errors: Counter[str] = field(default_factory=Counter)


def letter_truthfulqa(
    ask: Callable[[Sequence[str]], list[str | None]], rows: pd.DataFrame, lang_name: str, seed: int
) -> LetterRun:
    """MC1 with lettered, shuffled options; ``ask`` sends prompts and returns answers (None: failed)."""
    prompts, golds = [], []
    for row in rows.to_dict("records"):
        choices, _ = choices_and_labels(row, "mc1")
        prompt, gold = letter_question(row["qid"], row["question"], choices, lang_name, seed)
        prompts.append(prompt)
        golds.append((gold, len(choices)))
    answers = ask(prompts)
    correct = unparsable = 0
    errors: Counter[str] = Counter()
    for answer, (gold, n) in zip(answers, golds, strict=True):
        if answer is None:
            errors["call_failed"] += 1
            continue
        picked = parse_letter(answer, n)
        if picked is None:
            unparsable += 1  # counted, scored as wrong: a model that does not answer does not score
        correct += int(picked == gold)
    n = len(prompts)
    return LetterRun(correct / n if n else float("nan"), n - errors["call_failed"], unparsable, errors)
