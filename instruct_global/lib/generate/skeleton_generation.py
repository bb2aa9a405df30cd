"""Skeleton questions: English instruction templates per source dataset, with exact category quotas.

The loop is pure: the LLM is a ``complete`` callable (the resource's ``complete``), so it runs the
same under Dagster and in unit tests. Each request carries a seed derived from dataset and attempt,
so a re-run rebuilds exactly the same requests and the call cache answers all of them for free.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from instruct_global.languages import Language
from instruct_global.lib.common.categories import CATEGORIES, exact_quotas, restrict_mix
from instruct_global.lib.common.ids import stable_id
from instruct_global.lib.common.llm_types import ChatRequest, ChatResult
from instruct_global.lib.common.placeholders import expected_names
from instruct_global.lib.generate.skeleton_prompts import (
    build_skeleton_prompt,
    parse_skeleton_response,
    validate_template,
)

Complete = Callable[[Sequence[ChatRequest]], list[ChatResult]]

ENGLISH_COLUMNS = (
    "instruction_id", "category", "instruction_en", "input_en", "output_en", "origin", "dataset", "max_rouge_l",
)  # fmt: skip


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    category: str
    description: str
    variable_descriptions: dict[str, str]
    example_record: dict[str, str]
    n_records: int


def dataset_specs(records: pd.DataFrame) -> list[DatasetSpec]:
    """One spec per dataset of ``source_records`` (variables are JSON strings there)."""
    specs = []
    for name, rows in records.groupby("dataset", sort=True):
        first = rows.iloc[0]
        variables = json.loads(first["variables"])
        descriptions = json.loads(first["variable_descriptions"]) if "variable_descriptions" in rows else {}
        specs.append(
            DatasetSpec(
                name=str(name),
                category=str(first["category"]),
                description=str(first.get("description") or ""),
                variable_descriptions={k: str(descriptions.get(k, k)) for k in variables},
                example_record={k: str(v) for k, v in variables.items()},
                n_records=len(rows),
            )
        )
    return specs


def dataset_quotas(specs: Sequence[DatasetSpec], mix: Mapping[str, float], dataset_size: int) -> dict[str, int]:
    """Exact instructions per dataset: category quotas by largest remainder over the categories the
    datasets cover, each category's quota split over its datasets the same way."""
    covered = {s.category for s in specs}
    if not covered:
        return {}
    category_quota = exact_quotas(restrict_mix(mix, covered), dataset_size)
    quotas: dict[str, int] = {}
    for category in CATEGORIES:
        members = [s for s in specs if s.category == category]
        if not members:
            continue
        share = {s.name: 1.0 for s in members}
        split = _largest_remainder(share, category_quota.get(category, 0))
        quotas.update(split)
    return quotas


def _largest_remainder(weights: Mapping[str, float], total: int) -> dict[str, int]:
    names = list(weights)
    whole = sum(weights.values())
    exact = {n: total * weights[n] / whole for n in names}
    out = {n: int(exact[n]) for n in names}
    left = total - sum(out.values())
    for name in sorted(names, key=lambda n: (-(exact[n] - out[n]), names.index(n)))[:left]:
        out[name] += 1
    return out


@dataclass
class SkeletonResult:
    templates: pd.DataFrame
    rejects: pd.DataFrame
    reasons: Counter[str] = field(default_factory=Counter)
    unparsable: int = 0
    requests: int = 0
    shortfall: dict[str, int] = field(default_factory=dict)


def generate_skeletons(
    specs: Sequence[DatasetSpec],
    quotas: Mapping[str, int],
    language: Language,
    complete: Complete,
    *,
    templates_per_dataset: int = 5,
    max_attempts: int = 3,
    temperature: float = 0.7,
    json_mode: bool = False,
    json_schema: bool = False,
) -> SkeletonResult:
    """Templates for every dataset with a quota: ``min(quota, templates_per_dataset)`` each.

    Each attempt asks every dataset still short for exactly what it lacks (all datasets in one
    ``complete`` call, so the backend runs them concurrently); failing templates are rejected with
    their reason and regenerated, at most ``max_attempts`` times.
    """
    wanted = {s.name: min(quotas.get(s.name, 0), templates_per_dataset) for s in specs}
    kept: dict[str, list[dict[str, Any]]] = {s.name: [] for s in specs}
    seen: dict[str, set[str]] = {s.name: set() for s in specs}
    rejects: list[dict[str, Any]] = []
    result = SkeletonResult(templates=pd.DataFrame(), rejects=pd.DataFrame())
    for attempt in range(max_attempts):
        short = [s for s in specs if len(kept[s.name]) < wanted[s.name]]
        if not short:
            break
        requests = []
        for spec in short:
            request = build_skeleton_prompt(
                spec.name, spec.category, spec.description, spec.variable_descriptions, spec.example_record,
                language, wanted[spec.name] - len(kept[spec.name]),
                [t["instruction_en"] for t in kept[spec.name]], temperature=temperature, json_mode=json_mode,
                json_schema=json_schema,
            )
            # the seed makes each attempt a distinct (cacheable) call
            requests.append(_with_seed(request, int(stable_id(spec.name, attempt)[:8], 16)))
        answers = complete(requests)
        result.requests += len(requests)
        for spec, answer in zip(short, answers, strict=True):
            if not answer.ok:
                result.reasons["llm_error"] += 1
                continue
            templates, bad = parse_skeleton_response(answer.text)
            result.unparsable += bad
            if bad:  # a zero entry would show as a row in the drop table
                result.reasons["unparsable"] += bad
            expected = expected_names(len(spec.variable_descriptions))
            for template in templates:
                keep, reason = validate_template(template, expected, seen[spec.name])
                row = _template_row(spec, template, quotas.get(spec.name, 0))
                if keep and len(kept[spec.name]) < wanted[spec.name]:
                    kept[spec.name].append(row)
                elif keep:
                    result.reasons["surplus"] += 1
                else:
                    result.reasons[str(reason).split(":")[0]] += 1
                    rejects.append({**row, "reason": reason, "attempt": attempt})
    rows = [row for spec in specs for row in kept[spec.name]]
    result.templates = pd.DataFrame(rows, columns=[*ENGLISH_COLUMNS, "quota"])
    result.rejects = pd.DataFrame(rejects, columns=[*ENGLISH_COLUMNS, "quota", "reason", "attempt"])
    result.shortfall = {n: wanted[n] - len(kept[n]) for n in wanted if len(kept[n]) < wanted[n]}
    # an empty frame would type max_rouge_l as object, which the frame contract (float) rejects
    result.templates = result.templates.astype({"quota": "int64", "max_rouge_l": "float64"})
    result.rejects = result.rejects.astype({"max_rouge_l": "float64"})
    return result


def _with_seed(request: ChatRequest, seed: int) -> ChatRequest:
    return replace(request, seed=seed)


def _template_row(spec: DatasetSpec, template: Mapping[str, str], quota: int) -> dict[str, Any]:
    instruction, input_, output = (str(template.get(k) or "") for k in ("instruction", "input", "output"))
    return {
        "instruction_id": stable_id("template", spec.name, instruction, input_, output),
        "category": spec.category,
        "instruction_en": instruction,
        "input_en": input_,
        "output_en": output,
        "origin": "template",
        "dataset": spec.name,
        "max_rouge_l": float("nan"),
        "quota": quota,  # rejects carry it too, so a dataset whose templates all failed keeps its quota
    }
