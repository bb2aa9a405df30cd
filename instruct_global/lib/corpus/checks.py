"""Pure validators behind the clean_documents asset checks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class CheckOutcome:
    passed: bool
    description: str
    value: float


def min_documents(kept: int, minimum: int) -> CheckOutcome:
    return CheckOutcome(kept >= minimum, f"{kept} documents kept; at least {minimum} expected", float(kept))


def lid_pass_rate(drops: Mapping[str, int], documents_in: int, minimum: float) -> CheckOutcome:
    """Share of documents that reached language ID and passed it."""
    judged = documents_in - sum(drops.get(r, 0) for r in ("invalid_doc_id", "empty_after_cleaning", "too_short",
                                                            "exact_duplicate"))
    rate = 1.0 if judged <= 0 else 1.0 - drops.get("wrong_language", 0) / judged
    return CheckOutcome(rate >= minimum, f"language-ID pass rate {rate:.1%} of {judged} judged; minimum {minimum:.0%}",
                        rate)


def duplicate_rate(drops: Mapping[str, int], documents_in: int, maximum: float) -> CheckOutcome:
    duplicates = drops.get("exact_duplicate", 0) + drops.get("near_duplicate", 0)
    rate = duplicates / documents_in if documents_in else 0.0
    return CheckOutcome(rate <= maximum, f"{duplicates} duplicates of {documents_in} documents ({rate:.1%}); "
                        f"maximum {maximum:.0%}", rate)
