"""TruthfulQA into the target language: question, every choice (labels kept in order), the 6 shots.

A question is kept only when its question and every choice pass the translation checks; the
rest are dropped and counted by reason, never scored. A few-shot pair whose translation fails
stays English (counted), so the prompt keeps its six shots.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

TranslateFn = Callable[[list[str]], list[str | None]]
CheckFn = Callable[[str, str | None], list[str]]  # (source, output) -> failing reasons


@dataclass
class TranslatedBenchmark:
    rows: pd.DataFrame
    fewshot: list[tuple[str, str]]
    fewshot_kept_english: int
    reasons: Counter[str]
    rejects: pd.DataFrame


def translate_truthfulqa(
    questions: pd.DataFrame,
    fewshot: Sequence[tuple[str, str]],
    translate: TranslateFn,
    check: CheckFn,
    *,
    translate_fewshot: bool = True,
) -> TranslatedBenchmark:
    texts: list[str] = []
    for row in questions.itertuples():
        texts.append(row.question)
        texts.extend(json.loads(row.mc1_choices))
        texts.extend(json.loads(row.mc2_choices))
    shot_texts = [t for pair in fewshot for t in pair] if translate_fewshot else []
    unique = list(dict.fromkeys([*texts, *shot_texts]))
    translated = dict(zip(unique, translate(unique), strict=True)) if unique else {}

    def ok(source: str) -> tuple[str | None, list[str]]:
        output = translated.get(source)
        return output, check(source, output)

    reasons: Counter[str] = Counter()
    kept, rejects = [], []
    for row in questions.to_dict("records"):
        fields = {
            "question": [row["question"]],
            "mc1": json.loads(row["mc1_choices"]),
            "mc2": json.loads(row["mc2_choices"]),
        }
        out: dict[str, list[str]] = {}
        failed: list[str] = []
        for name, sources in fields.items():
            out[name] = []
            for source in sources:
                text, problems = ok(source)
                if problems or text is None:
                    failed.extend(f"{name}:{p}" for p in (problems or ["empty"]))
                else:
                    out[name].append(text)
        if failed:
            first = sorted(set(failed))[0]
            reasons[first.split(":", 1)[1]] += 1
            rejects.append({**row, "reason": first})
            continue
        kept.append(
            {
                **row,
                "question_en": row["question"],
                "question": out["question"][0],
                "mc1_choices_en": row["mc1_choices"],
                "mc1_choices": json.dumps(out["mc1"], ensure_ascii=False),
                "mc2_choices_en": row["mc2_choices"],
                "mc2_choices": json.dumps(out["mc2"], ensure_ascii=False),
            }
        )
    shots, english = [], 0
    for q, a in fewshot:
        if not translate_fewshot:
            shots.append((q, a))
            continue
        (tq, pq), (ta, pa) = ok(q), ok(a)
        if pq or pa or tq is None or ta is None:
            shots.append((q, a))
            english += 1
        else:
            shots.append((tq, ta))
    columns = [*questions.columns, "question_en", "mc1_choices_en", "mc2_choices_en"]
    reject_columns = [*questions.columns, "reason"]
    return TranslatedBenchmark(
        rows=pd.DataFrame(kept, columns=columns),
        fewshot=shots,
        fewshot_kept_english=english,
        reasons=reasons,
        rejects=pd.DataFrame(rejects, columns=reject_columns),
    )
