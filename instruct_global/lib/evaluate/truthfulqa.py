"""TruthfulQA multiple-choice questions from the Hugging Face dataset or the original CSV.

One frame row per question: ``qid``, ``question``, ``mc1_choices``/``mc1_labels`` and
``mc2_choices``/``mc2_labels`` (JSON lists; the best answer first in MC1, as in the data).

- Hugging Face: ``truthful_qa`` (or ``truthfulqa/truthful_qa``, or a local copy of that repo)
  with the ``multiple_choice`` config, split ``validation``.
- Original CSV (``TruthfulQA.csv``): ``Type, Category, Question, Best Answer, Correct Answers,
  Incorrect Answers, Source`` with answers separated by ``;``. MC1 is the best answer against the
  incorrect ones; MC2 is every correct answer against the incorrect ones.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from instruct_global.lib.common.ids import stable_id

CSV_COLUMNS = (
    "Type",
    "Category",
    "Question",
    "Best Answer",
    "Correct Answers",
    "Incorrect Answers",
    "Source",
)
COLUMNS = ("qid", "question", "mc1_choices", "mc1_labels", "mc2_choices", "mc2_labels")


class TruthfulQAFormatError(ValueError):
    pass


def _row(question: str, mc1: tuple[list[str], list[int]], mc2: tuple[list[str], list[int]]) -> dict[str, str]:
    return {
        "qid": stable_id("truthfulqa", question),
        "question": question,
        "mc1_choices": json.dumps(mc1[0], ensure_ascii=False),
        "mc1_labels": json.dumps(mc1[1]),
        "mc2_choices": json.dumps(mc2[0], ensure_ascii=False),
        "mc2_labels": json.dumps(mc2[1]),
    }


def _targets(record: Mapping[str, Any], name: str, where: str) -> tuple[list[str], list[int]]:
    target = record.get(name)
    if not isinstance(target, Mapping) or "choices" not in target or "labels" not in target:
        raise TruthfulQAFormatError(f"{where}: '{name}' must hold 'choices' and 'labels'")
    choices, labels = [str(c) for c in target["choices"]], [int(x) for x in target["labels"]]
    if len(choices) != len(labels) or len(choices) < 2:
        raise TruthfulQAFormatError(f"{where}: '{name}' needs at least 2 choices and one label per choice")
    if 1 not in labels or 0 not in labels:
        raise TruthfulQAFormatError(f"{where}: '{name}' needs a true and a false choice")
    return choices, labels


def from_records(records: Sequence[Mapping[str, Any]], source: str) -> pd.DataFrame:
    rows = []
    for index, record in enumerate(records):
        where = f"{source} row {index}"
        question = str(record.get("question") or "").strip()
        if not question:
            raise TruthfulQAFormatError(f"{where}: empty 'question'")
        mc1 = _targets(record, "mc1_targets", where)
        if mc1[1][0] != 1 or sum(mc1[1]) != 1:
            raise TruthfulQAFormatError(f"{where}: 'mc1_targets' must have exactly one true choice, first")
        rows.append(_row(question, mc1, _targets(record, "mc2_targets", where)))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def load_truthfulqa_hf(
    name: str = "truthful_qa", config: str = "multiple_choice", split: str = "validation"
) -> pd.DataFrame:
    """By hub name (needs the network or the hub cache) or from a local folder holding the repo."""
    from datasets import load_dataset

    dataset = load_dataset(name, config, split=split)
    return from_records(list(dataset), f"{name}/{config}/{split}")


def _split_answers(cell: str) -> list[str]:
    return [a.strip() for a in (cell or "").split(";") if a.strip()]


def load_truthfulqa_csv(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise TruthfulQAFormatError(f"{path}: missing columns {missing} (found {reader.fieldnames})")
        rows = []
        for line, record in enumerate(reader, start=2):
            where = f"{path} line {line}"
            question = (record["Question"] or "").strip()
            best = (record["Best Answer"] or "").strip()
            correct, incorrect = (
                _split_answers(record["Correct Answers"]),
                _split_answers(record["Incorrect Answers"]),
            )
            for field, value in (
                ("Question", question),
                ("Best Answer", best),
                ("Incorrect Answers", incorrect),
            ):
                if not value:
                    raise TruthfulQAFormatError(f"{where}: empty '{field}'")
            if best not in correct:
                correct = [best, *correct]
            mc1 = ([best, *incorrect], [1] + [0] * len(incorrect))
            mc2 = ([*correct, *incorrect], [1] * len(correct) + [0] * len(incorrect))
            rows.append(_row(question, mc1, mc2))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def choices_and_labels(row: Mapping[str, Any], task: str) -> tuple[list[str], list[int]]:
    return json.loads(row[f"{task}_choices"]), json.loads(row[f"{task}_labels"])
