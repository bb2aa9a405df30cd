"""One review round for a language: apply a returned sheet (if any), then every stored review.

The flow the ``reviewed_instructions`` asset runs: a returned sheet that is still there is validated
as a whole (any bad row raises, naming each one, and nothing from it is applied), its edits are
stored by stable id, and the sheet is archived so it is never applied twice; then the stored
reviews are applied to the current rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from instruct_global.lib.translate.review_paths import ReviewPaths
from instruct_global.lib.translate.review_sheet import (
    ReviewStore,
    apply_stored_reviews,
    read_returned_sheet,
    validate_returned_sheet,
)


@dataclass
class ReviewRound:
    reviewed: pd.DataFrame
    status_counts: dict[str, int]
    applied_from_sheet: int = 0
    archived_to: Path | None = None
    notes: list[str] = field(default_factory=list)


def run_review_round(
    rows: pd.DataFrame,
    paths: ReviewPaths,
    returned_sheet: str | Path | None = None,
    warn: Callable[[str], None] | None = None,
) -> ReviewRound:
    store = ReviewStore(paths.store)
    applied = 0
    archived: Path | None = None
    notes: list[str] = []
    sheet_path = Path(returned_sheet) if returned_sheet else None
    if sheet_path is not None and not sheet_path.exists():
        # an earlier run already applied and archived this sheet
        message = f"{sheet_path} is gone (already applied?); applying stored reviews only"
        notes.append(message)
        if warn is not None:
            warn(message)
        sheet_path = None
    if sheet_path is not None:
        validation = validate_returned_sheet(read_returned_sheet(sheet_path), rows, sheet_name=sheet_path.name)
        applied = store.save_edits(validation.edits)
        archived = paths.archive(sheet_path)
        notes.append(f"applied {applied} reviewed rows from {sheet_path.name}")
    reviewed, counts = apply_stored_reviews(rows, store)
    return ReviewRound(reviewed, counts, applied, archived, notes)
