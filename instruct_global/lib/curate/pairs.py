"""Backtranslation and self-curation over a frame, with any ``complete`` callable (no Dagster).

``backtranslate`` turns candidate segments into (instruction, response) pairs: the response is
the segment text, untouched. ``curate`` scores pairs with the judge and keeps those at or above
the threshold; an unparsed score is a drop with its reason, never a default.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from instruct_global.lib.common.ids import stable_id
from instruct_global.lib.common.llm_types import ChatRequest, ChatResult
from instruct_global.lib.curate.backtranslation import (
    BACKTRANSLATION_MAX_TOKENS,
    FewShotExample,
    build_backtranslation_request,
    copies_segment,
    parse_backtranslation,
    with_answer_language,
)
from instruct_global.lib.curate.rubric import JUDGE_MAX_TOKENS, build_judge_request, parse_score

Complete = Callable[[Sequence[ChatRequest]], list[ChatResult]]
# texts -> translations (None where it failed)
TranslateFn = Callable[[list[str]], list[str | None]]
Mode = Literal["english_instruction", "target_instruction"]

PAIR_COLUMNS = (
    "id", "lang", "category", "instruction", "input", "output", "instruction_lang",
    "instruction_en", "input_en", "output_en", "origin", "dataset", "record_id", "instruction_id",
    "doc_id", "chunk_id", "source", "source_url", "title", "license", "generator", "translator", "judge",
    "curation_score", "checks", "review_status", "mode", "iteration", "n_tokens",
    "gen_input_tokens", "gen_output_tokens", "judge_input_tokens", "judge_output_tokens",
)  # fmt: skip


@dataclass(frozen=True)
class BacktranslationSettings:
    mode: Mode = "english_instruction"
    show_segment_translation: bool = False
    temperature: float = 0.7
    max_tokens: int = BACKTRANSLATION_MAX_TOKENS
    json_schema: bool = False  # JSON answers under a schema (backends that enforce one: llama.cpp)


@dataclass
class StageResult:
    rows: pd.DataFrame
    rejects: pd.DataFrame
    reasons: Counter[str] = field(default_factory=Counter)


def pair_id(lang: str, chunk_id: str, segment: str, mode: str) -> str:
    """Stable per segment and mode: a new instruction for the same segment keeps the id, so a stored
    review finds its row (and, its English source changed, flags it for review again)."""
    return stable_id("backtranslation", lang, chunk_id, segment, mode)


def _frame(records: list[dict[str, object]], columns: Sequence[str]) -> pd.DataFrame:
    if not records:
        frame = pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    else:
        frame = pd.DataFrame.from_records(records, columns=list(columns))
    if "curation_score" in frame.columns:
        frame["curation_score"] = frame["curation_score"].astype("float64")
    return frame


def backtranslate(
    segments: pd.DataFrame,
    lang_key: str,
    language: str,
    complete: Complete,
    settings: BacktranslationSettings,
    *,
    to_english: TranslateFn | None = None,
    to_target: TranslateFn | None = None,
    examples: Sequence[FewShotExample] = (),
    generator: str = "",
    translator: str = "",
    iteration: int = 1,
) -> StageResult:
    """One pair per segment whose instruction the model wrote and the parser accepted."""
    if settings.show_segment_translation and to_english is None:
        raise ValueError("show_segment_translation needs a translator (to_english)")
    if settings.mode == "target_instruction" and to_target is None:
        raise ValueError("mode 'target_instruction' needs a translator (to_target)")
    records = segments.to_dict("records")
    reasons: Counter[str] = Counter()
    english = [None] * len(records)
    if settings.show_segment_translation and records:
        english = to_english([str(r["text"]) for r in records])  # type: ignore[misc]
    requests = [
        build_backtranslation_request(
            str(r["text"]), language, segment_translation=english[i], examples=examples,
            temperature=settings.temperature, max_tokens=settings.max_tokens, json_schema=settings.json_schema,
        )
        for i, r in enumerate(records)
    ]
    results = complete(requests) if requests else []
    kept: list[dict[str, object]] = []
    rejected: list[dict[str, object]] = []
    for record, mt, result in zip(records, english, results, strict=True):
        base = {
            "chunk_id": record["chunk_id"], "doc_id": record["doc_id"], "source": record["source"],
            "source_url": record["source_url"], "text": record["text"], "iteration": iteration,
        }
        if settings.show_segment_translation and mt is None:
            reasons["segment_translation_failed"] += 1
            rejected.append({**base, "answer": "", "reason": "segment_translation_failed"})
            continue
        if not result.ok:
            reason = "call_error" if result.error else "empty"
            reasons[reason] += 1
            rejected.append({**base, "answer": result.error or "", "reason": reason})
            continue
        parsed = parse_backtranslation(result.text, truncated=result.truncated)
        if not parsed.ok:
            reasons[parsed.reason or "unparsed"] += 1
            rejected.append({**base, "answer": result.text or "", "reason": parsed.reason or "unparsed"})
            continue
        if copies_segment(parsed.instruction or "", str(record["text"])):
            reasons["copies_segment"] += 1
            rejected.append({**base, "answer": result.text or "", "reason": "copies_segment"})
            continue
        checks = ["category_defaulted"] if parsed.category_defaulted else []
        instruction_en = parsed.instruction or ""
        kept.append({
            "id": pair_id(lang_key, str(record["chunk_id"]), str(record["text"]), settings.mode),
            "lang": lang_key, "category": parsed.category, "input": "", "output": str(record["text"]),
            "instruction_en": instruction_en, "input_en": "", "output_en": mt or "",
            "origin": "backtranslation", "dataset": "", "record_id": "", "instruction_id": "",
            "doc_id": str(record["doc_id"]), "chunk_id": str(record["chunk_id"]), "source": str(record["source"]),
            "source_url": str(record["source_url"]), "title": str(record.get("title") or ""),
            "license": str(record["license"]), "generator": generator,
            "translator": translator if (settings.show_segment_translation or settings.mode == "target_instruction") else "",
            "judge": "", "curation_score": math.nan, "_checks": checks, "review_status": "unreviewed",
            "mode": settings.mode, "iteration": iteration, "n_tokens": int(record.get("n_tokens") or 0),
            "gen_input_tokens": result.input_tokens, "gen_output_tokens": result.output_tokens,
            "judge_input_tokens": 0, "judge_output_tokens": 0,
        })
    if settings.mode == "target_instruction" and kept:
        translated = to_target([str(r["instruction_en"]) for r in kept])  # type: ignore[misc]
        still: list[dict[str, object]] = []
        for row, text in zip(kept, translated, strict=True):
            if text is None or not text.strip():
                reasons["instruction_translation_failed"] += 1
                rejected.append({"chunk_id": row["chunk_id"], "doc_id": row["doc_id"], "source": row["source"],
                                 "source_url": row["source_url"], "text": row["output"], "iteration": iteration,
                                 "answer": row["instruction_en"], "reason": "instruction_translation_failed"})
                continue
            still.append({**row, "instruction": text.strip(), "instruction_lang": lang_key})
        kept = still
    else:
        for row in kept:
            row["instruction"] = with_answer_language(str(row["instruction_en"]), language)
            row["instruction_lang"] = "eng"
    for row in kept:
        row["checks"] = json.dumps(row.pop("_checks"))
    reject_columns = ("chunk_id", "doc_id", "source", "source_url", "text", "iteration", "answer", "reason")
    return StageResult(_frame(kept, PAIR_COLUMNS), _frame(rejected, reject_columns), reasons)


@dataclass(frozen=True)
class CurationSettings:
    threshold: int = 4
    temperature: float = 0.0
    max_tokens: int = JUDGE_MAX_TOKENS
    json_schema: bool = False  # {"reasoning", "score"} under a schema (backends that enforce one)


@dataclass
class CurationResult:
    kept: pd.DataFrame
    rejects: pd.DataFrame  # pairs below the threshold or unparsed, with reason and the judge's answer
    scores: Counter[int] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    judged: int = 0


def curate(
    pairs: pd.DataFrame, language: str, judge_complete: Complete, settings: CurationSettings, *, judge: str = ""
) -> CurationResult:
    """Score every pair on the rubric; keep score >= threshold. Unparsed answers are counted by reason."""
    if not 1 <= settings.threshold <= 5:
        raise ValueError(f"curation threshold must be 1-5, got {settings.threshold}")
    records = pairs.to_dict("records")
    requests = [
        build_judge_request(str(r["instruction"]), str(r["output"]), language, temperature=settings.temperature,
                            max_tokens=settings.max_tokens, json_schema=settings.json_schema)
        for r in records
    ]
    results = judge_complete(requests) if requests else []
    out = CurationResult(kept=pd.DataFrame(), rejects=pd.DataFrame(), judged=len(records))
    kept: list[dict[str, object]] = []
    rejected: list[dict[str, object]] = []
    for record, result in zip(records, results, strict=True):
        row = {**record, "judge": judge, "judge_input_tokens": result.input_tokens,
               "judge_output_tokens": result.output_tokens}
        if not result.ok:
            out.reasons["judge_error"] += 1
            rejected.append({**row, "judge_answer": result.error or "", "reason": "judge_error"})
            continue
        # a judge cut off by max_tokens had not reached its last line: any score in it is not its verdict
        parsed = parse_score(None if result.truncated else result.text)
        if parsed.score is None:
            reason = "unparsed:truncated" if result.truncated else f"unparsed:{parsed.reason}"
            out.reasons[reason] += 1
            rejected.append({**row, "judge_answer": result.text or "", "reason": reason})
            continue
        out.scores[parsed.score] += 1
        row["curation_score"] = float(parsed.score)
        if parsed.score < settings.threshold:
            out.reasons["below_threshold"] += 1
            rejected.append({**row, "judge_answer": result.text or "", "reason": "below_threshold"})
        else:
            kept.append(row)
    columns = list(pairs.columns) if len(pairs.columns) else list(PAIR_COLUMNS)
    out.kept = _frame(kept, columns)
    out.rejects = _frame(rejected, [*columns, "judge_answer", "reason"])
    return out


def few_shot_examples(kept: pd.DataFrame, n: int) -> list[FewShotExample]:
    """The best-scored curated pairs (ties by id) as examples for the next augmentation round."""
    if kept.empty or n <= 0:
        return []
    best = kept.sort_values(["curation_score", "id"], ascending=[False, True], kind="mergesort").head(n)
    return [FewShotExample(str(r["output"]), str(r["instruction_en"]), str(r["category"]))
            for r in best.to_dict("records")]


def best_per_segment(*rounds: pd.DataFrame) -> pd.DataFrame:
    """One pair per id across rounds: the highest score, a later round on ties."""
    frames = [f for f in rounds if not f.empty]
    if not frames:
        return rounds[0] if rounds else pd.DataFrame()
    both = pd.concat(frames, ignore_index=True)
    both = both.sort_values(["id", "curation_score", "iteration"], ascending=[True, False, False], kind="mergesort")
    return both.drop_duplicates("id", keep="first").reset_index(drop=True)
