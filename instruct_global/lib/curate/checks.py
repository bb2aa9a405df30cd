"""Pure validators behind the instruction_dataset asset checks."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

import pandas as pd

from instruct_global.lib.common.placeholders import PLACEHOLDER_RE
from instruct_global.lib.corpus.checks import CheckOutcome

REQUIRED_FIELDS = ("id", "lang", "category", "instruction", "output", "origin", "license")


def no_empty_fields(rows: pd.DataFrame) -> CheckOutcome:
    empty = {c: int((rows[c].astype(str).str.strip() == "").sum()) for c in REQUIRED_FIELDS if c in rows}
    bad = {c: n for c, n in empty.items() if n}
    return CheckOutcome(not bad, f"empty required fields: {bad}" if bad else "no empty required field",
                        float(sum(bad.values())))


def no_leftover_placeholders(rows: pd.DataFrame) -> CheckOutcome:
    fields = ("instruction", "input", "output")
    hits = 0 if rows.empty else int(sum(
        rows[f].astype(str).map(lambda t: bool(PLACEHOLDER_RE.search(t))).sum() for f in fields))
    return CheckOutcome(hits == 0, f"{hits} fields still hold a {{variable_N}} placeholder", float(hits))


def lid_pass_rate(rows: pd.DataFrame, lang_key: str, identify: Callable[[str], object], minimum: float,
                  min_score: float = 0.5) -> CheckOutcome:
    """Share of target-language fields (output; instruction where it is not English) that language
    ID assigns to the partition's language."""
    texts: list[str] = []
    for row in rows.to_dict("records"):
        texts.append(str(row["output"]))
        if row.get("instruction_lang") != "eng":
            texts.append(str(row["instruction"]))
    texts = [t for t in texts if len(t.split()) >= 3]  # a word or two says nothing
    if not texts:
        return CheckOutcome(True, "no target-language field long enough to identify", 1.0)
    passed = 0
    for text in texts:
        result = identify(text)
        passed += getattr(result, "lang", None) == lang_key and float(getattr(result, "score", 0.0)) >= min_score
    rate = passed / len(texts)
    return CheckOutcome(rate >= minimum, f"language-ID pass rate {rate:.1%} of {len(texts)} fields; "
                        f"minimum {minimum:.0%}", rate)


def duplicate_rate(reasons: Mapping[str, int], rows_considered: int, maximum: float) -> CheckOutcome:
    duplicates = sum(reasons.get(r, 0) for r in ("exact_duplicate", "near_duplicate", "duplicate_id"))
    rate = duplicates / rows_considered if rows_considered else 0.0
    return CheckOutcome(rate <= maximum, f"{duplicates} duplicates removed of {rows_considered} rows "
                        f"({rate:.1%}); maximum {maximum:.0%}", rate)


def category_balance(rows: pd.DataFrame, mix: Mapping[str, float], tolerance: float) -> CheckOutcome:
    """Largest gap between a category's share and its requested share (total variation per category)."""
    if rows.empty:
        return CheckOutcome(False, "no rows", 1.0)
    shares = rows["category"].value_counts(normalize=True).to_dict()
    gaps = {c: abs(shares.get(c, 0.0) - mix.get(c, 0.0)) for c in set(shares) | set(mix)}
    worst = max(gaps, key=lambda c: gaps[c])
    detail = json.dumps({c: round(v, 3) for c, v in sorted(gaps.items(), key=lambda kv: -kv[1])[:4]})
    return CheckOutcome(gaps[worst] <= tolerance, f"largest share gap {gaps[worst]:.1%} ({worst}); tolerance "
                        f"{tolerance:.0%}; gaps {detail}", gaps[worst])
