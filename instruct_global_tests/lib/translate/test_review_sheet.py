"""The human review round trip: export, a "reviewer" edits the file, read, validate, store, apply."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from instruct_global.lib.translate.review_sheet import (
    SHEET_COLUMNS,
    ReviewEdit,
    ReviewSheetError,
    ReviewStore,
    ReviewStoreError,
    apply_review,
    apply_stored_reviews,
    build_review_sheet,
    parse_approved,
    read_returned_sheet,
    risk_score,
    validate_returned_sheet,
    write_review_sheet,
)

TEXT_COLUMNS = [
    "id", "lang", "category", "warnings", "english_instruction", "english_input", "english_output",
    "instruction", "input", "output", "source_hash",
]  # fmt: skip


def _row(rid: str, instruction_en: str, instruction: str, **extra: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": rid, "lang": "yor", "category": "generation", "instruction_en": instruction_en, "input_en": "",
        "output_en": "", "instruction": instruction, "input": "", "output": "", "checks": [], "lid_score": 0.95,
        "origin": "template",
    }  # fmt: skip
    base.update(extra)
    return base


@pytest.fixture
def rows() -> pd.DataFrame:
    return pd.DataFrame(
        [
            _row("a1", "Write a poem about {variable_1}.", "Kọ ewì nípa {variable_1}."),
            _row(
                "b2",
                "Summarise the text.",
                "Ṣe àkópọ̀ ọ̀rọ̀ náà.",
                input_en="The rain fell in Lagos.",
                input="Òjò rọ̀ ní Èkó.",
                output_en="It rained in Lagos.",
                output="Òjò rọ̀ ní Èkó.",
                checks=["length_ratio"],
                lid_score=0.6,
            ),
            _row(
                "c3",
                "Name a market in {variable_1} and {variable_2}.",
                "Dárúkọ ọjà kan ní {variable_1} àti {variable_2}.",
                checks=["repetition", "wrong_language"],
                lid_score=0.3,
            ),
            _row(
                "d4",
                "What is the capital of Kenya?",
                "Kí ni olú-ìlú Kenya?",
                output_en="Nairobi.",
                output="Nàìróbì.",
                lid_score=None,
            ),
            _row(
                "e5",
                "Explain this formula.",
                "Ṣàlàyé fọ́múlà yìí.",
                input_en="- one\n- two",
                input="- ọ̀kan\n- méjì",
                output_en="=SUM(A1:A3) adds",
                output="=SUM(A1:A3) ń ṣàkópọ̀ \x07",
                warnings="long_input",
            ),
        ]
    )


def _sheet_row(sheet: pd.DataFrame, rid: str) -> int:
    return int(sheet.index[sheet["id"] == rid][0]) + 2


def _export(rows: pd.DataFrame, folder: Path) -> tuple[pd.DataFrame, Path, Path]:
    sheet = build_review_sheet(rows)
    csv_path, xlsx_path = folder / "review_yor.csv", folder / "review_yor.xlsx"
    write_review_sheet(sheet, csv_path, xlsx_path)
    return sheet, csv_path, xlsx_path


def _edit_csv(path: Path, edits: dict[str, dict[str, str]]) -> None:
    """What a reviewer's spreadsheet does: read, change cells, save as "CSV UTF-8"."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    for rid, cells in edits.items():
        for column, value in cells.items():
            frame.loc[frame["id"] == rid, column] = value
    frame.to_csv(path, index=False, encoding="utf-8-sig")


def _edit_xlsx(path: Path, edits: dict[str, dict[str, object]]) -> None:
    book = openpyxl.load_workbook(path)
    ws = book.active
    header = [cell.value for cell in ws[1]]
    for row in ws.iter_rows(min_row=2):
        rid = row[header.index("id")].value
        for column, value in edits.get(rid, {}).items():
            cell = row[header.index(column)]
            cell.value = value
            if isinstance(value, str):
                cell.data_type = "s"  # typed or pasted as text (a formula is refused, see reliability tests)
    book.save(path)


REVIEWER_EDITS = {
    "a1": {"corrected_instruction": "Kọ ewì kúkúrú nípa {variable_1}."},
    "b2": {"approved": "✓"},
    "c3": {"approved": "no", "reviewer_note": "Ìtumọ̀ kò tọ́"},
    "e5": {"approved": "Yes", "corrected_output": "=SUM(A1:A3) ń ṣàkópọ̀"},  # pasted back: no correction
}
EXPECTED_COUNTS = {"approved": 2, "corrected": 1, "rejected": 1, "needs_review_again": 0, "unreviewed": 1}


def _check_applied(rows: pd.DataFrame, store: ReviewStore) -> pd.DataFrame:
    applied, counts = apply_stored_reviews(rows, store)
    assert counts == EXPECTED_COUNTS
    by_id = applied.set_index("id")
    assert by_id.loc["a1", "instruction"] == "Kọ ewì kúkúrú nípa {variable_1}."
    assert by_id.loc["a1", "machine_instruction"] == "Kọ ewì nípa {variable_1}."
    assert dict(by_id["review_status"]) == {
        "a1": "corrected", "b2": "approved", "c3": "rejected", "d4": "unreviewed", "e5": "approved",
    }  # fmt: skip
    assert by_id.loc["c3", "reviewer_note"] == "Ìtumọ̀ kò tọ́"
    assert (
        by_id.loc["c3", "instruction"] == rows.set_index("id").loc["c3", "instruction"]
    )  # kept, not deleted
    return applied


def test_round_trip_csv(rows: pd.DataFrame, tmp_path: Path) -> None:
    _, csv_path, _ = _export(rows, tmp_path)
    assert csv_path.read_bytes().startswith(b"\xef\xbb\xbf")
    _edit_csv(csv_path, REVIEWER_EDITS)
    returned = read_returned_sheet(csv_path)
    validation = validate_returned_sheet(returned, rows)
    assert validation.ok and {e.id: e.status for e in validation.edits} == {
        "a1": "corrected", "b2": "approved", "c3": "rejected", "e5": "approved",
    }  # fmt: skip
    store = ReviewStore(tmp_path / "reviews" / "yor.jsonl")
    applied = apply_review(rows, validation.edits, store)
    assert list(applied["review_status"]) == ["corrected", "approved", "rejected", "unreviewed", "approved"]
    _check_applied(rows, store)
    assert "Ìtumọ̀ kò tọ́" in store.path.read_text(encoding="utf-8")
    assert [p.name for p in store.path.parent.iterdir()] == ["yor.jsonl"]  # no temp files left


def test_round_trip_xlsx_with_typed_cells(rows: pd.DataFrame, tmp_path: Path) -> None:
    _, _, xlsx_path = _export(rows, tmp_path)
    edits: dict[str, dict[str, object]] = {**REVIEWER_EDITS}
    edits["b2"] = {"approved": True}  # typed cells as Excel stores them: booleans and numbers
    edits["c3"] = {"approved": 0, "reviewer_note": "Ìtumọ̀ kò tọ́"}
    _edit_xlsx(xlsx_path, edits)
    validation = validate_returned_sheet(read_returned_sheet(xlsx_path), rows)
    store = ReviewStore(tmp_path / "reviews.jsonl")
    store.save_edits(validation.edits)
    _check_applied(rows, store)


def test_sheet_columns_order_and_risk(rows: pd.DataFrame) -> None:
    sheet = build_review_sheet(rows)
    assert list(sheet.columns) == SHEET_COLUMNS
    assert list(sheet["id"]) == ["c3", "b2", "e5", "a1", "d4"]  # a1 has a LID score below 1, d4 none
    assert sheet.loc[0, "warnings"] == "repetition; wrong_language"
    assert sheet.loc[0, "risk"] == risk_score(
        2, 0, len("Dárúkọ ọjà kan ní {variable_1} àti {variable_2}."), 0.3
    )
    assert (
        (sheet[["corrected_instruction", "corrected_input", "corrected_output", "approved"]] == "")
        .all()
        .all()
    )
    # deterministic: same rows in another order give the same sheet
    pd.testing.assert_frame_equal(build_review_sheet(rows.iloc[::-1]), sheet)


def test_risk_score_documented_weights() -> None:
    assert risk_score(0, 0, 0, None) == 0.0
    assert risk_score(1, 2, 500, 0.75) == 3 + 2 + 0.5 + 0.5
    assert risk_score(0, 0, 10_000, None) == 2.0  # length is capped


def test_diacritics_and_awkward_cells_survive_both_formats(rows: pd.DataFrame, tmp_path: Path) -> None:
    sheet, csv_path, xlsx_path = _export(rows, tmp_path)
    for path in (csv_path, xlsx_path):
        returned = read_returned_sheet(path)
        assert list(returned.columns) == SHEET_COLUMNS
        for column in TEXT_COLUMNS:
            expected = [v.replace("\x07", "") if path == xlsx_path else v for v in sheet[column]]
            assert list(returned[column]) == expected, (path.name, column)
        assert validate_returned_sheet(returned, rows).edits == []


def test_xlsx_is_reviewer_friendly(rows: pd.DataFrame, tmp_path: Path) -> None:
    sheet, _, xlsx_path = _export(rows, tmp_path)
    ws = openpyxl.load_workbook(xlsx_path).active
    assert ws.freeze_panes == "A2"
    assert all(cell.font.bold for cell in ws[1])
    assert ws.cell(row=2, column=SHEET_COLUMNS.index("output") + 1).alignment.wrap_text
    assert ws.column_dimensions["F"].width == 48 and ws.column_dimensions["A"].width == 18
    formula_like = ws.cell(row=_sheet_row(sheet, "e5"), column=SHEET_COLUMNS.index("output") + 1)
    assert formula_like.data_type == "s" and formula_like.value.startswith("=SUM")


def _rejected(
    returned: pd.DataFrame, rows: pd.DataFrame, **kwargs: object
) -> list[tuple[int | None, str, str]]:
    with pytest.raises(ReviewSheetError) as info:
        validate_returned_sheet(returned, rows, **kwargs)  # type: ignore[arg-type]
    for error in info.value.errors:
        assert str(error) in str(info.value)
    assert "nothing was applied" in str(info.value)
    return [(e.row_number, e.id, e.column) for e in info.value.errors]


def test_malformed_sheet_is_reported_row_by_row_and_nothing_applied(
    rows: pd.DataFrame, tmp_path: Path
) -> None:
    sheet, csv_path, _ = _export(rows, tmp_path)
    _edit_csv(csv_path, {
        **REVIEWER_EDITS,
        "d4": {"id": "zz9"},  # unknown id
        "b2": {"english_input": "The rain fell in Abuja.", "approved": "yes"},  # English source edited
        "a1": {"corrected_instruction": "Kọ ewì nípa {variable_2}"},  # broken placeholder
        "c3": {"approved": "maybe"},
        "e5": {"corrected_output": "naÃ¯ve cafÃ©"},  # mojibake
    })  # fmt: skip
    store = ReviewStore(tmp_path / "reviews.jsonl")
    problems = _rejected(read_returned_sheet(csv_path), rows)
    assert sorted(problems) == sorted([
        (_sheet_row(sheet, "d4"), "zz9", "id"),
        (_sheet_row(sheet, "b2"), "b2", "english_input"),
        (_sheet_row(sheet, "a1"), "a1", "corrected_instruction"),
        (_sheet_row(sheet, "c3"), "c3", "approved"),
        (_sheet_row(sheet, "e5"), "e5", "corrected_output"),
    ])  # fmt: skip
    assert not store.path.exists()
    validation = validate_returned_sheet(read_returned_sheet(csv_path), rows, raise_on_error=False)
    assert len(validation.errors) == 5 and validation.edits == []


def test_placeholder_error_names_the_problem(rows: pd.DataFrame, tmp_path: Path) -> None:
    _, csv_path, _ = _export(rows, tmp_path)
    _edit_csv(
        csv_path, {"c3": {"corrected_instruction": "Dárúkọ ọjà kan ní {variable_1} àti ｛variable_2｝."}}
    )
    with pytest.raises(ReviewSheetError, match=r"placeholder_mangled; placeholder_missing:\{variable_2\}"):
        validate_returned_sheet(read_returned_sheet(csv_path), rows)


def test_expected_placeholders_can_be_given(rows: pd.DataFrame, tmp_path: Path) -> None:
    _, csv_path, _ = _export(rows, tmp_path)
    _edit_csv(csv_path, {"d4": {"corrected_output": "Nàìróbì ni."}})
    returned = read_returned_sheet(csv_path)
    assert validate_returned_sheet(returned, rows).ok
    expected = {"d4": {"output": ["{variable_1}"]}}
    problems = _rejected(returned, rows, expected_placeholders_by_id=expected)
    assert [p[2] for p in problems] == ["corrected_output"]


def test_duplicate_and_empty_ids_and_edited_hash(rows: pd.DataFrame, tmp_path: Path) -> None:
    _, csv_path, _ = _export(rows, tmp_path)
    frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    frame.loc[4, "id"] = frame.loc[0, "id"]
    frame.loc[3, "id"] = ""
    frame.loc[2, "source_hash"] = "0" * 16
    frame.to_csv(csv_path, index=False, encoding="utf-8-sig")
    assert sorted(_rejected(read_returned_sheet(csv_path), rows)) == [
        (4, frame.loc[2, "id"], "source_hash"), (5, "", "id"), (6, frame.loc[0, "id"], "id"),
    ]  # fmt: skip


def test_machine_output_edited_in_place_is_caught(rows: pd.DataFrame, tmp_path: Path) -> None:
    sheet, csv_path, _ = _export(rows, tmp_path)
    _edit_csv(csv_path, {"d4": {"output": "Nàìróbì ni olú-ìlú.", "approved": "yes"}})
    assert _rejected(read_returned_sheet(csv_path), rows) == [(_sheet_row(sheet, "d4"), "d4", "output")]


def test_missing_columns_are_reported_on_the_header_row(rows: pd.DataFrame, tmp_path: Path) -> None:
    sheet, csv_path, _ = _export(rows, tmp_path)
    sheet.drop(columns=["approved", "source_hash"]).to_csv(csv_path, index=False, encoding="utf-8-sig")
    assert _rejected(read_returned_sheet(csv_path), rows) == [(1, "", "approved"), (1, "", "source_hash")]


def test_latin1_csv_is_refused_with_file_and_line(rows: pd.DataFrame, tmp_path: Path) -> None:
    sheet, csv_path, _ = _export(rows, tmp_path)
    sheet.to_csv(
        csv_path, index=False, encoding="cp1252", errors="replace"
    )  # "Save as CSV" in a legacy locale
    with pytest.raises(ReviewSheetError, match=r"review_yor\.csv: not UTF-8 text: byte \d+ \(line 2\)"):
        read_returned_sheet(csv_path)


def test_utf16_and_unknown_formats_are_refused(tmp_path: Path) -> None:
    utf16 = tmp_path / "sheet.csv"
    utf16.write_bytes("id\ta1\n".encode("utf-16"))
    with pytest.raises(ReviewSheetError, match="UTF-16"):
        read_returned_sheet(utf16)
    with pytest.raises(ReviewSheetError, match=r"must be \.csv or \.xlsx"):
        read_returned_sheet(tmp_path / "sheet.ods")
    broken = tmp_path / "sheet.xlsx"
    broken.write_bytes(b"not a zip")
    with pytest.raises(ReviewSheetError, match="cannot open as an XLSX"):
        read_returned_sheet(broken)


def test_semicolon_csv_without_bom_and_blank_rows_keep_row_numbers(
    rows: pd.DataFrame, tmp_path: Path
) -> None:
    sheet, csv_path, _ = _export(rows, tmp_path)
    body = sheet.to_csv(index=False, sep=";").split("\n")
    body.insert(2, ";" * (len(SHEET_COLUMNS) - 1))  # an empty row after the first data row
    body = [line.replace(sheet.loc[1, "id"] + ";", "nope;", 1) for line in body]
    csv_path.write_text("\n".join(body) + "\n\n\n", encoding="utf-8")
    returned = read_returned_sheet(csv_path)
    assert len(returned) == len(sheet) + 1  # inner blank row kept, trailing ones dropped
    assert _rejected(returned, rows) == [(4, "nope", "id")]


def test_upstream_source_change_flags_exactly_that_row(rows: pd.DataFrame, tmp_path: Path) -> None:
    sheet, csv_path, _ = _export(rows, tmp_path)
    _edit_csv(csv_path, REVIEWER_EDITS)
    returned = read_returned_sheet(csv_path)
    store = ReviewStore(tmp_path / "reviews.jsonl")
    store.save_edits(validate_returned_sheet(returned, rows).edits)

    changed = rows.copy()
    changed.loc[changed["id"] == "c3", "instruction_en"] = (
        "Name two markets in {variable_1} and {variable_2}."
    )
    applied, counts = apply_stored_reviews(changed, store)
    assert counts == {**EXPECTED_COUNTS, "rejected": 0, "needs_review_again": 1}
    assert dict(applied.set_index("id")["review_status"])["c3"] == "needs_review_again"

    re_exported = build_review_sheet(changed).set_index("id")["source_hash"]
    before = sheet.set_index("id")["source_hash"]
    assert [rid for rid in before.index if before[rid] != re_exported[rid]] == ["c3"]

    # The old sheet returned late: rejected for that row only, or accepted as stale on request.
    assert _rejected(returned, changed) == [(_sheet_row(sheet, "c3"), "c3", "source_hash")]
    stale = validate_returned_sheet(returned, changed, allow_stale=True)
    fresh_store = ReviewStore(tmp_path / "fresh.jsonl")
    assert apply_stored_reviews(changed, fresh_store)[1]["unreviewed"] == 5
    fresh_store.save_edits(stale.edits)
    assert apply_stored_reviews(changed, fresh_store)[1] == counts


def test_approval_lapses_when_the_machine_output_changes_but_a_correction_does_not(
    rows: pd.DataFrame, tmp_path: Path
) -> None:
    _, csv_path, _ = _export(rows, tmp_path)
    _edit_csv(csv_path, REVIEWER_EDITS)
    store = ReviewStore(tmp_path / "reviews.jsonl")
    store.save_edits(validate_returned_sheet(read_returned_sheet(csv_path), rows).edits)
    retranslated = rows.copy()
    retranslated["instruction"] = retranslated["instruction"] + " "  # whitespace only: same text
    retranslated.loc[retranslated["id"] == "b2", "output"] = "Òjò rọ̀ gan-an ní Èkó."
    retranslated.loc[retranslated["id"] == "a1", "instruction"] = "Kọ orin nípa {variable_1}."
    applied, _ = apply_stored_reviews(retranslated, store)
    status = dict(applied.set_index("id")["review_status"])
    assert status["b2"] == "needs_review_again" and status["e5"] == "approved"
    assert status["a1"] == "corrected"
    assert applied.set_index("id").loc["a1", "instruction"] == "Kọ ewì kúkúrú nípa {variable_1}."


def test_store_keeps_the_latest_review_and_refuses_a_corrupt_file(tmp_path: Path) -> None:
    store = ReviewStore(tmp_path / "reviews.jsonl")
    assert store.load() == {} and len(store) == 0
    first = ReviewEdit("a1", 2, "h", "o", True)
    second = ReviewEdit("a1", 3, "h", "o", False, reviewer_note="rárá")
    store.save_edits([first], applied_at="2025-01-01T00:00:00+00:00")
    store.save_edits([second], applied_at="2025-01-02T00:00:00+00:00")
    review = store.get("a1")
    assert review is not None and review.approved is False and review.applied_at.startswith("2025-01-02")
    assert len(store) == 1
    store.path.write_text(store.path.read_text(encoding="utf-8") + "{not json\n", encoding="utf-8")
    with pytest.raises(ReviewStoreError, match="line 2"):
        store.load()


def test_concurrent_saves_keep_every_edit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two runs storing sheets of one language at once (a CSV and an XLSX returned together)."""
    import threading
    import time

    store_path = tmp_path / "store" / "yor.jsonl"
    original_load = ReviewStore.load

    def slow_load(self: ReviewStore) -> dict:
        reviews = original_load(self)
        time.sleep(0.2)  # both runs have read the store before either writes it back
        return reviews

    monkeypatch.setattr(ReviewStore, "load", slow_load)
    edits = [ReviewEdit("a1", 2, "h", "o", True), ReviewEdit("b2", 2, "h", "o", False)]
    threads = [threading.Thread(target=ReviewStore(store_path).save_edits, args=([edit],)) for edit in edits]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    monkeypatch.setattr(ReviewStore, "load", original_load)
    assert set(ReviewStore(store_path).load()) == {"a1", "b2"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("yes", True), ("Y", True), ("TRUE", True), ("1", True), ("✓", True), ("✔", True), (" ok. ", True),
        (1, True), (1.0, True), (True, True), ("no", False), ("N", False), ("false", False), ("0", False),
        ("✗", False), (0, False), (False, False), ("", None), (None, None), (float("nan"), None),
    ],
)  # fmt: skip
def test_parse_approved(value: object, expected: bool | None) -> None:
    assert parse_approved(value) is expected


def test_parse_approved_refuses_the_unreadable() -> None:
    with pytest.raises(ValueError, match="yes or no"):
        parse_approved("maybe")


def test_huge_cells_are_truncated_for_excel_and_still_match(rows: pd.DataFrame, tmp_path: Path) -> None:
    big = rows.copy()
    big.loc[big["id"] == "d4", "output_en"] = "word " * 8000
    big.loc[big["id"] == "d4", "output"] = "ọ̀rọ̀ " * 8000
    _, _, xlsx_path = _export(big, tmp_path)
    _edit_xlsx(xlsx_path, {"d4": {"approved": "y"}})
    returned = read_returned_sheet(xlsx_path)
    assert returned.set_index("id").loc["d4", "output"].endswith("[truncated for Excel]")
    (edit,) = validate_returned_sheet(returned, big).edits
    assert edit.id == "d4" and edit.status == "approved"


def test_archive_keeps_every_applied_sheet(tmp_path: Path) -> None:
    from instruct_global.lib.translate.review_paths import review_paths

    paths = review_paths(tmp_path, "yor")
    paths.inbox_dir.mkdir(parents=True)
    archived = []
    for version in ("first", "second"):  # two sheets applied within the same second
        sheet = paths.inbox_dir / "yor.csv"
        sheet.write_text(version, encoding="utf-8")
        archived.append(paths.archive(sheet))
        assert not sheet.exists()
    assert [p.read_text(encoding="utf-8") for p in archived] == ["first", "second"]
