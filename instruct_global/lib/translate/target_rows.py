"""English instruction rows into target-language rows: translate, check, fill.

Pure: the translator is a ``translate_fn`` (texts → texts or None) and language ID an
``identify`` callable, so this runs the same under Dagster and in unit tests.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from instruct_global.lib.common.ids import stable_id
from instruct_global.lib.common.placeholders import fill_placeholders
from instruct_global.lib.translate.checks import DEFAULT_CONFIG, TranslationCheckConfig, check_translation
from instruct_global.lib.translate.placeholder_protection import translate_with_protection

FIELDS = ("instruction", "input", "output")
TranslateFn = Callable[[list[str]], list[str | None]]
Identify = Callable[[str], Any]

TARGET_COLUMNS = (
    "id", "lang", "category", "instruction", "input", "output", "instruction_en", "input_en", "output_en",
    "origin", "dataset", "instruction_id", "record_id", "checks", "review_status", "translation_strategy",
)  # fmt: skip


@dataclass
class TranslatedRows:
    rows: pd.DataFrame
    rejects: pd.DataFrame
    reasons: Counter[str] = field(default_factory=Counter)
    strategies: Counter[str] = field(default_factory=Counter)
    texts_sent: int = 0


def translate_rows(
    english: pd.DataFrame,
    lang_key: str,
    translate_fn: TranslateFn,
    *,
    identify: Identify | None = None,
    strategies: Sequence[str] = ("sentinel", "split"),
    check_config: TranslationCheckConfig = DEFAULT_CONFIG,
) -> TranslatedRows:
    """Translate instruction/input/output of each English row; a row failing any check is a reject.

    Texts are de-duplicated before translation (templates share inputs like ``{variable_1}``).
    """
    texts = sorted({str(row[f"{f}_en"] or "") for _, row in english.iterrows() for f in FIELDS} - {""})
    results = dict(zip(texts, translate_with_protection(texts, translate_fn, strategies), strict=True))
    out = TranslatedRows(rows=pd.DataFrame(), rejects=pd.DataFrame(), texts_sent=len(texts))
    kept, rejected = [], []
    for record in english.to_dict("records"):
        row = _target_row(record, lang_key)
        failures: list[str] = []
        for f in FIELDS:
            source = str(record.get(f"{f}_en") or "")
            if not source:
                continue
            result = results[source]
            out.strategies[result.strategy_used or "failed"] += 1
            if result.text is None:
                failures.append(f"{f}:{result.reason}")
                continue
            row[f] = result.text
            row["translation_strategy"] = result.strategy_used
            failures += [f"{f}:{reason}" for reason in check_translation(
                source, result.text, lang_key=lang_key, identify=identify, config=check_config)]
        row["checks"] = json.dumps(failures, ensure_ascii=False)
        if failures:
            for failure in dict.fromkeys(f.split(":", 1)[1].split(":")[0] for f in failures):
                out.reasons[failure] += 1
            rejected.append({**row, "reason": "; ".join(failures)})
        else:
            kept.append(row)
    out.rows = pd.DataFrame(kept, columns=list(TARGET_COLUMNS))
    out.rejects = pd.DataFrame(rejected, columns=[*TARGET_COLUMNS, "reason"])
    return out


def _target_row(record: Mapping[str, Any], lang_key: str) -> dict[str, Any]:
    return {
        "id": stable_id("translated", lang_key, record["instruction_id"]),
        "lang": lang_key,
        "category": record["category"],
        "instruction": "", "input": "", "output": "",
        "instruction_en": record.get("instruction_en") or "",
        "input_en": record.get("input_en") or "",
        "output_en": record.get("output_en") or "",
        "origin": record["origin"],
        "dataset": record.get("dataset") or "",
        "instruction_id": record["instruction_id"],
        "record_id": "",
        "checks": "[]",
        "review_status": "unreviewed",
        "translation_strategy": "",
    }


@dataclass
class FilledRows:
    rows: pd.DataFrame
    shortfall: dict[str, int] = field(default_factory=dict)
    per_category: dict[str, int] = field(default_factory=dict)


def fill_templates(
    templates: pd.DataFrame,
    records: pd.DataFrame,
    quotas: Mapping[str, int],
    lang_key: str,
    *,
    skeletons: pd.DataFrame | None = None,
) -> FilledRows:
    """Exactly ``quotas[dataset]`` rows per dataset: translated templates × the dataset's records.

    Values are inserted as they are in the user's data (already in the target language, or English
    where the dataset holds English): they never pass through machine translation. Pairs are drawn
    without repetition in a deterministic order; each row's id depends on dataset, record and slot,
    not on the template text, so a reviewer's edit stays attached when a template is regenerated
    (and is then flagged by its changed English source).

    ``skeletons`` (the English templates, translated or not, in generation order) fixes the slots:
    a template rejected by translation then leaves its slot empty, and only its pairs are replaced
    (by the next ones in the draw), instead of shifting later templates into other slots and
    reshuffling every pair of the dataset. Without it, slots are positions among ``templates``.
    """
    rows: list[dict[str, Any]] = []
    shortfall: dict[str, int] = {}
    for dataset, quota in sorted(quotas.items()):
        # templates keep their generation order, so a regenerated template keeps its position
        dataset_templates = templates[templates["dataset"] == dataset].reset_index(drop=True)
        dataset_records = records[records["dataset"] == dataset].sort_values("row_number").reset_index(drop=True)
        slot_ids = _slot_ids(dataset_templates, skeletons, dataset)
        slot_of = {instruction_id: slot for slot, instruction_id in enumerate(slot_ids)}
        template_at = {slot_of[i]: position for position, i in enumerate(dataset_templates["instruction_id"])}
        drawn = _spread_pairs(len(slot_ids), len(dataset_records), stable_id("fill", lang_key, dataset))
        pairs = [(slot, r) for slot, r in drawn if slot in template_at]  # a rejected template's slot stays empty
        if len(pairs) < quota:
            shortfall[dataset] = quota - len(pairs)
        for t, r in pairs[:quota]:
            template = dataset_templates.iloc[template_at[t]]
            record = dataset_records.iloc[r]
            values = json.loads(record["variables"])
            rows.append({
                "id": stable_id("filled", lang_key, dataset, record["record_id"], t),
                "lang": lang_key,
                "category": template["category"],
                **{f: fill_placeholders(str(template[f] or ""), values) for f in FIELDS},
                **{f"{f}_en": template[f"{f}_en"] for f in FIELDS},
                "origin": "template",
                "dataset": dataset,
                "instruction_id": template["instruction_id"],
                "record_id": record["record_id"],
                "checks": template["checks"],
                "review_status": "unreviewed",
                "translation_strategy": template["translation_strategy"],
            })
    frame = pd.DataFrame(rows, columns=list(TARGET_COLUMNS))
    per_category = frame["category"].value_counts().to_dict() if not frame.empty else {}
    return FilledRows(rows=frame, shortfall=shortfall, per_category=per_category)


def _slot_ids(dataset_templates: pd.DataFrame, skeletons: pd.DataFrame | None, dataset: str) -> list[str]:
    """Instruction ids by slot: the dataset's English templates in order, else the translated ones."""
    translated = list(dataset_templates["instruction_id"])
    if skeletons is None:
        return translated
    slots = list(dict.fromkeys(skeletons.loc[skeletons["dataset"] == dataset, "instruction_id"]))
    unknown = [i for i in translated if i not in slots]
    if unknown:
        raise ValueError(
            f"translated templates of {dataset!r} missing from the skeletons: {unknown[:5]}; "
            "the translations are older than the templates: re-materialise translated_instructions"
        )
    return slots


def _spread_pairs(n_templates: int, n_records: int, seed: str) -> list[tuple[int, int]]:
    """Every (template, record) pair once, ordered so each round uses every record once and the
    templates rotate between rounds; records and rounds are shuffled deterministically."""
    if not n_templates or not n_records:
        return []
    rng = random.Random(seed)
    record_order = list(range(n_records))
    rng.shuffle(record_order)
    rounds = list(range(n_templates))
    rng.shuffle(rounds)
    return [((position + shift) % n_templates, record) for shift in rounds for position, record in enumerate(record_order)]


def review_warnings(row: Mapping[str, Any]) -> str:
    """Soft warnings a reviewer should see first (rows with failed checks never get this far)."""
    warnings = []
    if row.get("review_status") == "needs_review_again":
        warnings.append("English source changed since review")
    if row.get("translation_strategy") == "split":
        warnings.append("translated around placeholders (split): check fluency")
    return "; ".join(warnings)
