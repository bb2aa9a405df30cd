"""One review round: a returned sheet is validated, stored, archived, then every stored review applies."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from instruct_global.lib.translate.review_paths import review_paths
from instruct_global.lib.translate.review_round import run_review_round
from instruct_global.lib.translate.review_sheet import ReviewSheetError
from instruct_global_tests.lib.translate.test_review_sheet import (
    EXPECTED_COUNTS,
    REVIEWER_EDITS,
    _edit_csv,
    _export,
    rows,  # noqa: F401  (the fixture)
)


def test_a_returned_sheet_is_applied_once_and_archived(rows: pd.DataFrame, tmp_path: Path) -> None:  # noqa: F811
    _, outbox_csv, _ = _export(rows, tmp_path)
    paths = review_paths(tmp_path / "data", "yor")
    paths.inbox_dir.mkdir(parents=True)
    returned = paths.inbox_dir / "yor.csv"
    outbox_csv.replace(returned)
    _edit_csv(returned, REVIEWER_EDITS)

    first = run_review_round(rows, paths, returned)
    assert first.applied_from_sheet == 4 and first.status_counts == EXPECTED_COUNTS
    assert not returned.exists() and first.archived_to is not None and first.archived_to.is_file()

    warnings: list[str] = []
    again = run_review_round(rows, paths, returned, warn=warnings.append)  # the sheet is gone: stored reviews only
    assert again.applied_from_sheet == 0 and again.status_counts == EXPECTED_COUNTS
    assert warnings and "already applied" in warnings[0]


def test_a_bad_sheet_applies_nothing_and_stays_in_the_inbox(rows: pd.DataFrame, tmp_path: Path) -> None:  # noqa: F811
    _, outbox_csv, _ = _export(rows, tmp_path)
    paths = review_paths(tmp_path / "data", "yor")
    paths.inbox_dir.mkdir(parents=True)
    returned = paths.inbox_dir / "yor.csv"
    outbox_csv.replace(returned)
    _edit_csv(returned, {**REVIEWER_EDITS, "d4": {"corrected_instruction": "Kí ni {variable_9}?"}})
    with pytest.raises(ReviewSheetError, match="d4"):
        run_review_round(rows, paths, returned)
    assert returned.exists() and not paths.store.exists()
