"""Human review of the translated TruthfulQA through the same sheet round trip as the instructions.

Each distinct English text (a question, a choice, a few-shot question or answer) is one sheet row,
keyed by a stable id of the language and the English text, so a correction applies wherever that
text occurs. A rejected text drops every question that uses it; a rejected few-shot text goes
back to English.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import pandas as pd

from instruct_global.lib.common.ids import stable_id


def text_id(lang: str, english: str) -> str:
    return stable_id("truthfulqa", lang, english)


def benchmark_texts(
    rows: pd.DataFrame, fewshot_en: Sequence[tuple[str, str]], fewshot: Sequence[tuple[str, str]]
) -> dict[str, str]:
    """English → translation of every text the translated benchmark holds."""
    pairs: dict[str, str] = {}
    for row in rows.to_dict("records"):
        pairs[row["question_en"]] = row["question"]
        for task in ("mc1", "mc2"):
            pairs.update(
                zip(json.loads(row[f"{task}_choices_en"]), json.loads(row[f"{task}_choices"]), strict=True)
            )
    for (q_en, a_en), (q, a) in zip(fewshot_en, fewshot, strict=True):
        if (q_en, a_en) != (q, a):  # shots kept in English need no review
            pairs[q_en], pairs[a_en] = q, a
    return pairs


def review_rows(texts: Mapping[str, str], lang: str) -> pd.DataFrame:
    """The rows the review sheet machinery reads: the text as ``instruction``, its English beside it."""
    return pd.DataFrame(
        [
            {
                "id": text_id(lang, en),
                "lang": lang,
                "category": "truthfulqa",
                "instruction": tr,
                "input": "",
                "output": "",
                "instruction_en": en,
                "input_en": "",
                "output_en": "",
                "checks": "[]",
            }
            for en, tr in texts.items()
        ],
        columns=[
            "id",
            "lang",
            "category",
            "instruction",
            "input",
            "output",
            "instruction_en",
            "input_en",
            "output_en",
            "checks",
        ],
    )


def apply_reviewed_texts(
    rows: pd.DataFrame,
    fewshot_en: Sequence[tuple[str, str]],
    fewshot: Sequence[tuple[str, str]],
    reviewed: pd.DataFrame,
) -> tuple[pd.DataFrame, list[tuple[str, str]], int]:
    """(questions with corrections applied and rejected ones dropped, few-shot pairs, questions dropped)."""
    final = dict(zip(reviewed["instruction_en"], reviewed["instruction"], strict=True))
    rejected = set(reviewed.loc[reviewed["review_status"] == "rejected", "instruction_en"])
    kept, dropped = [], 0
    for row in rows.to_dict("records"):
        english = [row["question_en"], *json.loads(row["mc1_choices_en"]), *json.loads(row["mc2_choices_en"])]
        if rejected.intersection(english):
            dropped += 1
            continue
        row["question"] = final.get(row["question_en"], row["question"])
        for task in ("mc1", "mc2"):
            row[f"{task}_choices"] = json.dumps(
                [
                    final.get(en, tr)
                    for en, tr in zip(
                        json.loads(row[f"{task}_choices_en"]), json.loads(row[f"{task}_choices"]), strict=True
                    )
                ],
                ensure_ascii=False,
            )
        kept.append(row)
    shots = []
    for (q_en, a_en), (q, a) in zip(fewshot_en, fewshot, strict=True):
        if q_en in rejected or a_en in rejected:
            shots.append((q_en, a_en))
        else:
            shots.append((final.get(q_en, q), final.get(a_en, a)))
    return pd.DataFrame(kept, columns=rows.columns), shots, dropped
