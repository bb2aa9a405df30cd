"""The self-instruct bootstrapping loop (Wang et al. 2023; Alpaca), with exact ROUGE-L novelty.

Rounds of ``prompts_per_round`` prompts go to the LLM together (the backend runs them
concurrently). Every prompt is derived deterministically from the language, the round, its slot
and what was kept before the round, and carries a seed: a re-run after a crash rebuilds the same
prompts, the call cache answers them, and no batch is ever paid for twice.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from instruct_global.languages import Language
from instruct_global.lib.common.categories import CATEGORIES, exact_quotas, normalise_mix
from instruct_global.lib.common.ids import stable_id
from instruct_global.lib.generate.novelty import NoveltyFilter
from instruct_global.lib.generate.self_instruct import (
    FilterConfig,
    SeedTask,
    build_self_instruct_prompt,
    category_of,
    filter_instruction,
    parse_json_instructions,
    parse_numbered_instructions,
    sample_prompt_examples,
)
from instruct_global.lib.generate.skeleton_generation import ENGLISH_COLUMNS, Complete


@dataclass(frozen=True)
class SelfInstructSettings:
    target_count: int = 100
    tasks_per_prompt: int = 8
    prompts_per_round: int = 8
    n_seed_examples: int = 6
    n_machine_examples: int = 2
    rouge_threshold: float = 0.7
    enforce_category_quotas: bool = True
    max_rounds: int = 50
    # Stop after this many rounds in a row kept nothing (0: never): the quotas left cannot be met,
    # and the remaining rounds up to max_rounds would be paid for in vain.
    max_stalled_rounds: int = 3
    exact_score_above: float = 0.3
    temperature: float = 1.0
    filters: FilterConfig = field(default_factory=FilterConfig)
    # JSON answers under a schema (backends that enforce it while decoding), else numbered text
    json_schema: bool = False


@dataclass
class SelfInstructResult:
    instructions: pd.DataFrame
    rejects: pd.DataFrame
    reasons: Counter[str] = field(default_factory=Counter)
    seen: int = 0
    requests: int = 0
    rounds: int = 0
    malformed: int = 0
    truncated_dropped: int = 0
    quotas: dict[str, int] = field(default_factory=dict)
    stop_reason: str = ""  # target_reached | stalled | max_rounds


def run_self_instruct(
    seeds: Sequence[SeedTask],
    language: Language,
    complete: Complete,
    settings: SelfInstructSettings,
    mix: Mapping[str, float],
) -> SelfInstructResult:
    # scores above exact_score_above are exact; below it only "below" is known, which is all the
    # histogram's first bin needs (a lower exact_above costs more CPU: see benchmarks/bench_novelty.py)
    novelty = NoveltyFilter(
        threshold=settings.rouge_threshold, exact_above=min(settings.exact_score_above, settings.rouge_threshold)
    )
    for seed in seeds:
        novelty.add(seed.instruction)
    quotas = exact_quotas(normalise_mix(mix), settings.target_count)
    kept: list[dict[str, Any]] = []
    kept_ids: set[str] = set()
    per_category: Counter[str] = Counter()
    rejects: list[dict[str, Any]] = []
    result = SelfInstructResult(instructions=pd.DataFrame(), rejects=pd.DataFrame(), quotas=quotas)

    stalled = 0
    for round_index in range(settings.max_rounds):
        if len(kept) >= settings.target_count:
            break
        if settings.max_stalled_rounds and stalled >= settings.max_stalled_rounds:
            break
        kept_before = len(kept)
        result.rounds += 1
        deficits = _deficit_order(quotas, per_category) if settings.enforce_category_quotas else []
        slots = []
        for slot in range(settings.prompts_per_round):
            rng = random.Random(stable_id("self-instruct", language.key, round_index, slot))
            hint = deficits[slot % len(deficits)] if deficits else None
            examples = sample_prompt_examples(
                seeds, kept, settings.n_seed_examples, settings.n_machine_examples, rng=rng, prefer_category=hint
            )
            request = build_self_instruct_prompt(
                examples, language, settings.tasks_per_prompt, hint,
                allow_programming=settings.filters.allow_programming, temperature=settings.temperature,
                json_schema=settings.json_schema,
            )
            slots.append((len(examples) + 1, replace(request, seed=rng.randrange(2**31))))
        answers = complete([request for _, request in slots])
        result.requests += len(slots)
        for (start_index, _), answer in zip(slots, answers, strict=True):
            if not answer.ok:
                result.reasons["llm_error"] += 1
                continue
            parse = parse_json_instructions if settings.json_schema else parse_numbered_instructions
            parsed = parse(answer.text or "", answer.finish_reason, start_index)
            result.malformed += parsed.malformed
            result.truncated_dropped += parsed.truncated_dropped
            result.reasons["malformed"] += parsed.malformed
            result.reasons["truncated"] += parsed.truncated_dropped
            if not (parsed.tasks or parsed.malformed or parsed.truncated_dropped):
                # prose without a single task line: lost as a whole, and counted as such
                result.reasons["no_task_in_answer"] += 1
            for task in parsed.tasks:
                result.seen += 1
                reason, row = _judge(task, novelty, quotas, per_category, settings, kept_ids)
                if reason is None:
                    kept.append(row)
                    kept_ids.add(row["instruction_id"])
                    per_category[row["category"]] += 1
                else:
                    result.reasons[reason.split(":")[0]] += 1
                    rejects.append({**row, "reason": reason})
        stalled = 0 if len(kept) > kept_before else stalled + 1
    if len(kept) >= settings.target_count:
        result.stop_reason = "target_reached"
    elif settings.max_stalled_rounds and stalled >= settings.max_stalled_rounds:
        result.stop_reason = "stalled"
    else:
        result.stop_reason = "max_rounds"
    result.reasons = Counter({k: v for k, v in result.reasons.items() if v})
    # float even when empty: the frame contract rejects an object max_rouge_l
    as_float = {"max_rouge_l": "float64"}
    result.instructions = pd.DataFrame(kept, columns=list(ENGLISH_COLUMNS)).astype(as_float)
    result.rejects = pd.DataFrame(rejects, columns=[*ENGLISH_COLUMNS, "reason"]).astype(as_float)
    return result


def _deficit_order(quotas: Mapping[str, int], have: Counter[str]) -> list[str]:
    """Categories still short of their quota, most missing first (ties in canonical order)."""
    short = [c for c in CATEGORIES if quotas.get(c, 0) > have[c]]
    return sorted(short, key=lambda c: (-(quotas[c] - have[c]), CATEGORIES.index(c)))


def _judge(
    task: Mapping[str, Any],
    novelty: NoveltyFilter,
    quotas: Mapping[str, int],
    per_category: Counter[str],
    settings: SelfInstructSettings,
    kept_ids: set[str],
) -> tuple[str | None, dict[str, Any]]:
    category = category_of(task)
    row: dict[str, Any] = {
        "instruction_id": stable_id("self_instruct", task.get("instruction"), task.get("input"), task.get("output")),
        "category": category,
        "instruction_en": str(task.get("instruction") or ""),
        "input_en": str(task.get("input") or ""),
        "output_en": str(task.get("output") or ""),
        "origin": "self_instruct",
        "dataset": "",
        "max_rouge_l": math.nan,
    }
    if len(kept_ids) >= settings.target_count:
        return "target_reached", row
    keep, reason = filter_instruction(task, settings.filters)
    if not keep:
        return reason, row
    if settings.enforce_category_quotas and per_category[category] >= quotas.get(category, 0):
        return "category_quota_full", row
    # the same task again; ROUGE-L catches it unless the threshold is 1.0, and ids must stay unique
    if row["instruction_id"] in kept_ids:
        return "duplicate", row
    # novelty last: it is the only check that changes state (a kept text joins the index)
    check = novelty.submit(row["instruction_en"])
    row["max_rouge_l"] = check.max_score
    if not check.novel:
        return "rouge_l_above_threshold", row
    return None, row
