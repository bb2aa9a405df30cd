"""The human review round trip: export a sheet, read it back, validate it, store and apply the edits.

Flow: ``build_review_sheet`` -> ``write_review_sheet`` (CSV and/or XLSX) -> a reviewer fills
``corrected_*``, ``approved`` and ``reviewer_note`` -> ``read_returned_sheet`` ->
``validate_returned_sheet`` (all or nothing: any error rejects the whole sheet) ->
``ReviewStore.save_edits`` -> ``apply_stored_reviews`` on every later materialisation.

A review is bound to what the reviewer saw: ``source_hash`` (the English source fields) and
``output_hash`` (the machine output). When the English source changes upstream the stored review
no longer applies and the row is flagged ``needs_review_again``; a plain approval also lapses when
the machine output changed (the reviewer approved a text that is gone), a correction does not
(it replaces the machine output anyway).

Risk score (riskiest rows first, ties by id, so the order is deterministic)::

    risk = 3 * failed checks            (``checks`` column: reasons from check_translation)
         + 1 * warnings                 (``warnings`` column: softer notes)
         + min(machine chars / 1000, 2) (long texts hide more errors and take longer to read)
         + 2 * (1 - lid_score)          (only when a ``lid_score`` column has a value)

Spreadsheet safety (``lib.common.spreadsheet_safety``): in CSV a cell that a spreadsheet would run
as a formula (``=``, ``+``, ``-``, ``@``, tab, CR first) is written with a leading apostrophe that
``read_returned_sheet`` removes again; in XLSX such cells are quote-prefixed text, and a returned
XLSX that holds a formula is refused, naming the cell.

Known limits: a reviewer cannot correct a field to "empty" (an empty ``corrected_*`` cell means
"no correction"); CSV opened and re-saved in Excel may rewrite cells that look like numbers or
dates, which then shows up as a validation error; prefer XLSX for Excel users.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import regex
from ftfy.badness import is_bad

from instruct_global.lib.common.atomic import atomic_write
from instruct_global.lib.common.spreadsheet_safety import is_formula_like, neutralise_formula, restore_formula
from instruct_global.lib.translate.placeholder_protection import (
    placeholder_mismatches,
    placeholder_mismatches_against,
)

FIELDS = ("instruction", "input", "output")
# Row frames name the English fields "<field>_en" (docs/ARCHITECTURE.md, "Data contracts"); the sheet spells them out for reviewers.
ENGLISH_ROW_COLUMNS = {f: f"{f}_en" for f in FIELDS}
ENGLISH_SHEET_COLUMNS = {f: f"english_{f}" for f in FIELDS}
CORRECTED_COLUMNS = {f: f"corrected_{f}" for f in FIELDS}
SHEET_COLUMNS = [
    "id", "lang", "category", "risk", "warnings",
    *ENGLISH_SHEET_COLUMNS.values(), *FIELDS, *CORRECTED_COLUMNS.values(),
    "approved", "reviewer_note", "source_hash",
]  # fmt: skip
EDITABLE_COLUMNS = (*CORRECTED_COLUMNS.values(), "approved", "reviewer_note")
REQUIRED_RETURN_COLUMNS = (
    "id", *ENGLISH_SHEET_COLUMNS.values(), *FIELDS, *CORRECTED_COLUMNS.values(), "approved", "source_hash",
)  # fmt: skip
REVIEW_STATUSES = ("approved", "corrected", "rejected", "needs_review_again", "unreviewed")

_TRUE = frozenset({"yes", "y", "true", "t", "1", "1.0", "✓", "✔", "☑", "ok", "approve", "approved"})
_FALSE = frozenset({"no", "n", "false", "f", "0", "0.0", "✗", "✘", "☒", "reject", "rejected"})
# XML 1.0 forbids these control characters, so openpyxl refuses them; they are dropped on export
# and ignored when comparing, so a sheet still matches the rows it came from.
_ILLEGAL_XML_RE = regex.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
XLSX_CELL_LIMIT = 32767  # Excel's maximum characters in one cell
XLSX_TRUNCATION_MARK = " …[truncated for Excel]"
_COLUMN_WIDTHS = {"id": 18, "lang": 6, "category": 14, "risk": 7, "warnings": 28, "approved": 10,
                  "reviewer_note": 30, "source_hash": 18}  # fmt: skip
_TEXT_WIDTH = 48


class ReviewSheetError(ValueError):
    """A returned sheet was rejected; ``errors`` lists every problem, nothing was applied."""

    def __init__(self, message: str, errors: Sequence[ReviewError] = ()) -> None:
        super().__init__(message)
        self.errors = list(errors)


class ReviewStoreError(ValueError):
    """The review store file cannot be read."""


@dataclass(frozen=True)
class ReviewError:
    row_number: int | None  # as the reviewer sees it: header is row 1; None for file-level problems
    id: str
    column: str
    message: str

    def __str__(self) -> str:
        where = [f"row {self.row_number}" if self.row_number is not None else "file"]
        if self.id:
            where.append(f"id {self.id}")
        if self.column:
            where.append(f"column {self.column}")
        return f"{', '.join(where)}: {self.message}"


@dataclass(frozen=True)
class ReviewEdit:
    id: str
    row_number: int
    source_hash: str  # English source the reviewer saw
    output_hash: str  # machine output the reviewer saw
    approved: bool | None  # None: the reviewer left "approved" empty
    corrected_instruction: str | None = None
    corrected_input: str | None = None
    corrected_output: str | None = None
    reviewer_note: str = ""

    def corrections(self) -> dict[str, str]:
        values = {f: getattr(self, f"corrected_{f}") for f in FIELDS}
        return {f: v for f, v in values.items() if v is not None}

    @property
    def status(self) -> str:
        """What this edit means once its hashes are known to still hold."""
        if self.approved is False:
            return "rejected"
        if self.corrections():
            return "corrected"
        return "approved" if self.approved else "unreviewed"


@dataclass(frozen=True)
class StoredReview:
    id: str
    source_hash: str
    output_hash: str
    approved: bool | None
    corrected_instruction: str | None
    corrected_input: str | None
    corrected_output: str | None
    reviewer_note: str
    applied_at: str  # ISO 8601 UTC, when the sheet was stored


@dataclass
class ReviewValidation:
    errors: list[ReviewError] = field(default_factory=list)
    edits: list[ReviewEdit] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def raise_for_errors(self, sheet_name: str = "review sheet") -> None:
        if self.errors:
            raise ReviewSheetError(_error_message(sheet_name, self.errors), self.errors)


def _error_message(sheet_name: str, errors: Sequence[ReviewError]) -> str:
    lines = [f"{sheet_name} rejected, nothing was applied ({len(errors)} problem(s)):"]
    lines += [f"  - {error}" for error in errors]
    return "\n".join(lines)


# --- text normalisation and hashes --------------------------------------------------------------


def _text(value: Any) -> str:
    """A cell as text: None/NaN -> "", numbers without a spurious ".0"."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, float):
        if value != value:  # NaN
            return ""
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def normalise_cell(value: Any) -> str:
    """What a cell means, independent of the tool that saved it: NFC, \\n newlines, no XML-illegal
    control characters, no surrounding whitespace."""
    text = _text(value).replace("\r\n", "\n").replace("\r", "\n")
    return unicodedata.normalize("NFC", _ILLEGAL_XML_RE.sub("", text)).strip()


def _hash(values: Iterable[Any]) -> str:
    joined = "\x1f".join(normalise_cell(v) for v in values)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:16]


def source_hash_of(instruction_en: Any, input_en: Any, output_en: Any) -> str:
    """Hash of the English source fields: a changed upstream source gets a different hash."""
    return _hash((instruction_en, input_en, output_en))


def output_hash_of(instruction: Any, input_: Any, output: Any) -> str:
    """Hash of the machine output fields a reviewer approved."""
    return _hash((instruction, input_, output))


def _row_field(row: Mapping[str, Any], column: str) -> str:
    return _text(row.get(column))


def _row_source_hash(row: Mapping[str, Any]) -> str:
    return source_hash_of(*(_row_field(row, ENGLISH_ROW_COLUMNS[f]) for f in FIELDS))


def _row_output_hash(row: Mapping[str, Any]) -> str:
    return output_hash_of(*(_row_field(row, f) for f in FIELDS))


def _matches(sheet_value: Any, current: Any) -> bool:
    """Sheet cell equals the current value, allowing for the XLSX truncation of huge cells."""
    sheet = _text(sheet_value)
    if sheet.endswith(XLSX_TRUNCATION_MARK.strip()):
        head = normalise_cell(sheet[: -len(XLSX_TRUNCATION_MARK.strip())])
        return normalise_cell(current).startswith(head)
    return normalise_cell(sheet) == normalise_cell(current)


# --- building the sheet -------------------------------------------------------------------------


def _reasons(value: Any) -> list[str]:
    """Check reasons from a list/array cell or a "a; b" string."""
    if value is None or (isinstance(value, float) and value != value):
        return []
    if isinstance(value, str):
        parts = value.replace(",", ";").split(";")
    elif isinstance(value, Mapping):  # {"check": passed?}
        parts = [str(k) for k, passed in value.items() if not passed]
    else:
        try:
            parts = [str(v) for v in value]
        except TypeError:
            parts = [str(value)]
    return [p.strip() for p in parts if p and p.strip()]


def risk_score(failed_checks: int, warnings: int, machine_chars: int, lid_score: float | None) -> float:
    """See the module docstring: higher means review first."""
    risk = 3.0 * failed_checks + 1.0 * warnings + min(machine_chars / 1000.0, 2.0)
    if lid_score is not None and lid_score == lid_score:
        risk += 2.0 * (1.0 - min(max(float(lid_score), 0.0), 1.0))
    return round(risk, 3)


def build_review_sheet(rows: pd.DataFrame) -> pd.DataFrame:
    """One sheet row per target-language row, riskiest first; the editable columns empty.

    Reads ``id``, ``lang``, ``category``, ``instruction``/``input``/``output``, their English
    ``*_en`` fields, and, when present, ``checks`` (failed check reasons), ``warnings`` and
    ``lid_score``. Missing text columns count as empty; ``id`` is required.
    """
    if "id" not in rows.columns:
        raise ValueError("review sheet rows need an 'id' column")
    records = []
    for row in rows.to_dict("records"):
        failed, warned = _reasons(row.get("checks")), _reasons(row.get("warnings"))
        lid = row.get("lid_score")
        lid_value = None if lid is None or _text(lid) == "" else float(lid)
        machine = {f: _row_field(row, f) for f in FIELDS}
        record = {
            "id": _text(row["id"]),
            "lang": _row_field(row, "lang"),
            "category": _row_field(row, "category"),
            "risk": risk_score(len(failed), len(warned), sum(len(v) for v in machine.values()), lid_value),
            "warnings": "; ".join(dict.fromkeys(failed + warned)),
            **{ENGLISH_SHEET_COLUMNS[f]: _row_field(row, ENGLISH_ROW_COLUMNS[f]) for f in FIELDS},
            **machine,
            **{column: "" for column in EDITABLE_COLUMNS},
            "source_hash": _row_source_hash(row),
        }
        records.append(record)
    sheet = pd.DataFrame.from_records(records, columns=SHEET_COLUMNS)
    if sheet.empty:
        return sheet
    sheet = sheet.sort_values(["risk", "id"], ascending=[False, True], kind="mergesort")
    return sheet.reset_index(drop=True)


# --- writing ------------------------------------------------------------------------------------


def csv_safe(sheet: pd.DataFrame) -> pd.DataFrame:
    """Every text cell that a spreadsheet would run as a formula gets its apostrophe (undone on reading)."""
    out = sheet.copy()
    for column in out.columns:
        if out[column].dtype == object:
            out[column] = [neutralise_formula(v) if isinstance(v, str) else v for v in out[column]]
    return out


def _write_csv(sheet: pd.DataFrame, handle: io.BufferedWriter) -> None:
    # utf-8-sig: the BOM is how Excel knows the file is UTF-8 (else ẹ, ọ, ሰ turn to mojibake).
    text = csv_safe(sheet).to_csv(index=False, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    handle.write(text.encode("utf-8-sig"))


def _xlsx_value(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    text = _ILLEGAL_XML_RE.sub("", _text(value))
    if len(text) > XLSX_CELL_LIMIT:
        text = text[: XLSX_CELL_LIMIT - len(XLSX_TRUNCATION_MARK)] + XLSX_TRUNCATION_MARK
    return text


@dataclass(frozen=True)
class SheetLayout:
    """How a reviewer's sheet looks in XLSX: the tab, which columns they fill, widths, dropdowns."""

    title: str
    editable: tuple[str, ...]
    widths: Mapping[str, int]
    default_width: int = _TEXT_WIDTH
    # column -> dropdown values; a dropdown suggests, it does not refuse: the reader validates
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


REVIEW_LAYOUT = SheetLayout("review", EDITABLE_COLUMNS, _COLUMN_WIDTHS, choices={"approved": ("yes", "no")})


def _write_xlsx(sheet: pd.DataFrame, handle: io.BufferedWriter, layout: SheetLayout = REVIEW_LAYOUT) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    book = Workbook()
    ws = book.active
    ws.title = layout.title
    columns = list(sheet.columns)
    header_font = Font(bold=True, color="FFFFFF")
    read_only_fill = PatternFill("solid", fgColor="44546A")
    editable_fill = PatternFill("solid", fgColor="2E7D32")  # green: the columns reviewers fill
    wrap = Alignment(wrap_text=True, vertical="top")
    for c, name in enumerate(columns, start=1):
        cell = ws.cell(row=1, column=c, value=name)
        cell.font = header_font
        cell.fill = editable_fill if name in layout.editable else read_only_fill
        cell.alignment = Alignment(wrap_text=True, vertical="center")
        ws.column_dimensions[get_column_letter(c)].width = layout.widths.get(name, layout.default_width)
    for r, values in enumerate(sheet.itertuples(index=False, name=None), start=2):
        for c, value in enumerate(values, start=1):
            cell = ws.cell(row=r, column=c, value=_xlsx_value(value))
            if isinstance(cell.value, str):
                cell.data_type = "s"  # openpyxl would store "=SUM(...)" or "- item" text as a formula
                if is_formula_like(cell.value):
                    cell.quotePrefix = True  # Excel's text marker: shown as typed, stays text when edited
            cell.alignment = wrap
    ws.freeze_panes = "A2"
    last = get_column_letter(len(columns))
    ws.auto_filter.ref = f"A1:{last}{max(len(sheet) + 1, 1)}"
    for column, values in layout.choices.items():
        if column in columns and len(sheet):
            letter = get_column_letter(columns.index(column) + 1)
            # suggests the values but accepts other forms the reader understands ("✓", "Yes")
            choice = DataValidation(type="list", formula1=f'"{",".join(values)}"', allow_blank=True,
                                    showErrorMessage=False)
            choice.add(f"{letter}2:{letter}{len(sheet) + 1}")
            ws.add_data_validation(choice)
    book.save(handle)


def write_sheet(
    sheet: pd.DataFrame, csv_path: str | Path | None, xlsx_path: str | Path | None, layout: SheetLayout
) -> None:
    """Write a sheet as CSV (UTF-8 with BOM) and/or XLSX; each file appears whole or not at all."""
    if csv_path is not None:
        atomic_write(Path(csv_path), lambda handle: _write_csv(sheet, handle))
    if xlsx_path is not None:
        atomic_write(Path(xlsx_path), lambda handle: _write_xlsx(sheet, handle, layout))


def write_review_sheet(
    sheet: pd.DataFrame, csv_path: str | Path | None, xlsx_path: str | Path | None
) -> None:
    """The review sheet as CSV and/or XLSX, each written atomically."""
    write_sheet(sheet, csv_path, xlsx_path, REVIEW_LAYOUT)


# --- reading ------------------------------------------------------------------------------------


def _decode_csv(path: Path, data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ReviewSheetError(
            f"{path}: the file is UTF-16 text (Excel's 'Unicode Text'); save it as 'CSV UTF-8' or .xlsx"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        bad = data[err.start : err.start + 4]
        raise ReviewSheetError(
            f"{path}: not UTF-8 text: byte {err.start} (line {line}) is {bad!r}. The sheet was probably "
            "saved in a legacy encoding such as Windows-1252/Latin-1, which would corrupt diacritics; "
            "save it as 'CSV UTF-8' (Excel: File > Save As > CSV UTF-8) or as .xlsx and return it again"
        ) from None


def _csv_delimiter(text: str) -> str:
    """Excel in many locales saves CSV with ';'; the header line (plain names) tells which."""
    header = text.split("\n", 1)[0]
    return max((",", ";", "\t"), key=header.count)


def _read_csv(path: Path) -> pd.DataFrame:
    text = _decode_csv(path, path.read_bytes())
    try:
        return pd.read_csv(
            io.StringIO(text),
            sep=_csv_delimiter(text),
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,  # keep row numbers as the reviewer's spreadsheet shows them
        ).map(restore_formula)  # the apostrophes csv_safe added
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise ReviewSheetError(f"{path}: cannot read as CSV: {err}") from None


def _read_xlsx(path: Path) -> pd.DataFrame:
    from openpyxl import load_workbook

    try:
        # data_only=False: a formula is seen as one (and refused), never replaced by a cached value
        book = load_workbook(path, read_only=True, data_only=False)
    except Exception as err:  # openpyxl raises zipfile/KeyError/InvalidFileException variants
        raise ReviewSheetError(f"{path}: cannot open as an XLSX workbook: {err}") from None
    formulas: list[tuple[int, int, str]] = []
    try:
        ws = book["review"] if "review" in book.sheetnames else book.worksheets[0]
        rows = []
        for r, cells in enumerate(ws.iter_rows(), start=1):
            rows.append([_text(cell.value) for cell in cells])
            formulas += [(r, c, str(cell.value)) for c, cell in enumerate(cells, start=1)
                         if getattr(cell, "data_type", None) == "f"]
    finally:
        book.close()
    if not rows:
        raise ReviewSheetError(f"{path}: the workbook's sheet is empty")
    header = rows[0]
    if formulas:
        from openpyxl.utils import get_column_letter

        errors = []
        for r, c, text in formulas:
            rid = rows[r - 1][0] if rows[r - 1] and r > 1 else ""
            column = header[c - 1] if c <= len(header) and header[c - 1] else get_column_letter(c)
            errors.append(ReviewError(r, rid, column, (
                f"cell {get_column_letter(c)}{r} holds a formula ({text[:40]!r}); the sheet takes text only: "
                "type the text (start it with an apostrophe if it begins with =)")))  # fmt: skip
        raise ReviewSheetError(_error_message(path.name, errors), errors)
    while header and header[-1] == "":
        header = header[:-1]
    body = [(row + [""] * len(header))[: len(header)] for row in rows[1:]]
    return pd.DataFrame(body, columns=header, dtype=str)


def read_returned_sheet(path: str | Path) -> pd.DataFrame:
    """A returned sheet as text: empty cells are "", ids are strings, headers lower-case.

    CSV must be UTF-8 (with or without BOM); anything else is an error naming the file and the
    first byte that does not decode. Trailing empty rows are dropped; inner ones are kept so
    row numbers stay those of the spreadsheet.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame = _read_csv(path)
    elif suffix in (".xlsx", ".xlsm"):
        frame = _read_xlsx(path)
    else:
        raise ReviewSheetError(f"{path}: a review sheet must be .csv or .xlsx, not '{path.suffix}'")
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    frame = frame.fillna("").astype(str)
    if not len(frame.columns):
        return frame
    filled = [any(v.strip() for v in row) for row in frame.itertuples(index=False, name=None)]
    keep = len(frame)
    while keep and not filled[keep - 1]:
        keep -= 1
    return frame.iloc[:keep].reset_index(drop=True)


# --- validation ---------------------------------------------------------------------------------


def parse_approved(value: Any) -> bool | None:
    """yes/no, y/n, true/false, 1/0, ✓/✗ (any case) -> bool; empty -> None; else ValueError."""
    text = normalise_cell(value).casefold().rstrip(".!")
    if not text:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"approved must be yes or no (also y/n, true/false, 1/0, ✓/✗), not {value!r}")


def _check_sources(
    row_number: int, rid: str, sheet_row: Mapping[str, str], current: Mapping[str, Any], allow_stale: bool
) -> list[ReviewError]:
    """The English source and machine output in the sheet must be those of the current row."""
    errors: list[ReviewError] = []
    sheet_hash = sheet_row["source_hash"].strip()
    current_hash = _row_source_hash(current)
    english = {f: sheet_row[ENGLISH_SHEET_COLUMNS[f]] for f in FIELDS}
    truncated = any(v.endswith(XLSX_TRUNCATION_MARK.strip()) for v in english.values())
    sheet_consistent = truncated or source_hash_of(*english.values()) == sheet_hash
    if not sheet_consistent:
        if source_hash_of(*english.values()) == current_hash:
            return [
                ReviewError(
                    row_number, rid, "source_hash", "source_hash was edited; it must stay as exported"
                )
            ]
        edited = [f for f in FIELDS if not _matches(english[f], _row_field(current, ENGLISH_ROW_COLUMNS[f]))]
        for f in edited or list(FIELDS):
            errors.append(
                ReviewError(
                    row_number,
                    rid,
                    ENGLISH_SHEET_COLUMNS[f],
                    "the English source was edited in the sheet; only corrected_*, approved "
                    "and reviewer_note may be changed",
                )
            )
        return errors
    if allow_stale:
        return errors
    if sheet_hash != current_hash:
        errors.append(
            ReviewError(
                row_number,
                rid,
                "source_hash",
                "the English source changed upstream since this sheet was exported; "
                "export a new sheet and review this row again",
            )
        )
        return errors
    for f in FIELDS:
        if not _matches(sheet_row[f], _row_field(current, f)):
            errors.append(
                ReviewError(
                    row_number,
                    rid,
                    f,
                    f"the machine output differs from the current one: edited in the sheet "
                    f"(write corrections in {CORRECTED_COLUMNS[f]}) or re-translated since "
                    "export (export a new sheet)",
                )
            )
    return errors


def _check_corrections(
    row_number: int,
    rid: str,
    sheet_row: Mapping[str, str],
    current: Mapping[str, Any],
    expected: Mapping[str, Sequence[str]] | None,
) -> tuple[dict[str, str], list[ReviewError]]:
    corrections: dict[str, str] = {}
    errors: list[ReviewError] = []
    for f in FIELDS:
        column = CORRECTED_COLUMNS[f]
        corrected = normalise_cell(sheet_row[column])
        machine = _row_field(current, f)
        if not corrected or corrected == normalise_cell(machine):
            continue  # empty, or the machine output pasted back: no correction
        if is_bad(corrected):
            errors.append(
                ReviewError(
                    row_number,
                    rid,
                    column,
                    "the text looks mis-decoded (mojibake such as 'Ã©'); fix the encoding",
                )
            )
            continue
        if expected is not None and f in expected:
            problems = placeholder_mismatches_against(expected[f], corrected, source_text=machine)
        else:
            problems = placeholder_mismatches(machine, corrected)
        if problems:
            errors.append(
                ReviewError(
                    row_number,
                    rid,
                    column,
                    f"placeholders must stay exactly as in the machine output: {'; '.join(problems)}",
                )
            )
            continue
        corrections[f] = corrected
    return corrections, errors


def validate_returned_sheet(
    returned: pd.DataFrame,
    current_rows: pd.DataFrame,
    expected_placeholders_by_id: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
    *,
    allow_stale: bool = False,
    raise_on_error: bool = True,
    sheet_name: str = "review sheet",
) -> ReviewValidation:
    """Check every row of a returned sheet; edits are returned only when there is no error at all.

    ``expected_placeholders_by_id`` maps id -> field -> placeholders a correction must hold; by
    default they are those of the current machine output field. ``allow_stale`` keeps reviews of
    rows whose English source or machine output changed since export instead of rejecting the
    sheet; ``apply_stored_reviews`` then flags them ``needs_review_again``. With
    ``raise_on_error`` a sheet with errors raises ``ReviewSheetError`` listing all of them.
    """
    validation = ReviewValidation()
    missing = [c for c in REQUIRED_RETURN_COLUMNS if c not in returned.columns]
    if missing:
        validation.errors = [
            ReviewError(1, "", c, "required column is missing from the header") for c in missing
        ]
    else:
        _validate_rows(returned, current_rows, expected_placeholders_by_id, allow_stale, validation)
    if validation.errors:
        validation.edits = []
        if raise_on_error:
            validation.raise_for_errors(sheet_name)
    return validation


def _validate_rows(
    returned: pd.DataFrame,
    current_rows: pd.DataFrame,
    expected_by_id: Mapping[str, Mapping[str, Sequence[str]]] | None,
    allow_stale: bool,
    validation: ReviewValidation,
) -> None:
    current = {_text(row["id"]): row for row in current_rows.to_dict("records")}
    seen: dict[str, int] = {}
    for position, raw in enumerate(returned.to_dict("records")):
        row_number = position + 2  # header is row 1
        sheet_row = {k: _text(v) for k, v in raw.items()}
        if not any(v.strip() for v in sheet_row.values()):
            continue
        rid = sheet_row["id"].strip()
        if not rid:
            validation.errors.append(ReviewError(row_number, "", "id", "the id is empty"))
            continue
        if rid in seen:
            validation.errors.append(
                ReviewError(row_number, rid, "id", f"duplicate id, also on row {seen[rid]}")
            )
            continue
        seen[rid] = row_number
        if rid not in current:
            validation.errors.append(
                ReviewError(row_number, rid, "id", "unknown id: no such row in the current data")
            )
            continue
        row = current[rid]
        errors = _check_sources(row_number, rid, sheet_row, row, allow_stale)
        try:
            approved = parse_approved(sheet_row["approved"])
        except ValueError as err:
            errors.append(ReviewError(row_number, rid, "approved", str(err)))
            approved = None
        expected = expected_by_id.get(rid) if expected_by_id is not None else None
        corrections, correction_errors = _check_corrections(row_number, rid, sheet_row, row, expected)
        errors += correction_errors
        validation.errors += errors
        note = normalise_cell(sheet_row.get("reviewer_note", ""))
        if errors or (approved is None and not corrections and not note):
            continue
        validation.edits.append(
            ReviewEdit(
                id=rid,
                row_number=row_number,
                source_hash=sheet_row["source_hash"].strip(),
                # The output the reviewer saw: checked equal to the current one unless stale is allowed.
                output_hash=output_hash_of(*(sheet_row[f] for f in FIELDS))
                if allow_stale
                else _row_output_hash(row),
                approved=approved,
                corrected_instruction=corrections.get("instruction"),
                corrected_input=corrections.get("input"),
                corrected_output=corrections.get("output"),
                reviewer_note=note,
            )
        )


# --- the review store and applying reviews ------------------------------------------------------


class ReviewStore:
    """Latest review per stable id, as JSON lines in the data dir, rewritten atomically."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, StoredReview]:
        if not self.path.exists():
            return {}
        reviews: dict[str, StoredReview] = {}
        with self.path.open(encoding="utf-8") as handle:
            for line_number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    review = StoredReview(**json.loads(line))
                except (json.JSONDecodeError, TypeError) as err:
                    raise ReviewStoreError(
                        f"{self.path}: line {line_number} is not a stored review: {err}"
                    ) from None
                reviews[review.id] = review
        return reviews

    def get(self, review_id: str) -> StoredReview | None:
        return self.load().get(review_id)

    def __len__(self) -> int:
        return len(self.load())

    def save_edits(self, edits: Iterable[ReviewEdit], *, applied_at: str | None = None) -> int:
        """Store ``edits`` (a later review of an id replaces the earlier one); returns how many."""
        stamp = applied_at or dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        # Read-modify-write under a lock: two runs applying sheets of one language at once (the
        # sensor requests one run per returned file) must not drop each other's edits.
        with self._locked():
            reviews = self.load()
            count = 0
            for edit in edits:
                fields = asdict(edit)
                fields.pop("row_number")
                reviews[edit.id] = StoredReview(**fields, applied_at=stamp)
                count += 1
            lines = "".join(
                json.dumps(asdict(r), ensure_ascii=False, sort_keys=True) + "\n" for r in reviews.values()
            )
            atomic_write(self.path, lambda handle: handle.write(lines.encode("utf-8")))
        return count

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """An exclusive lock on the store's folder (the store file itself is replaced on every write)."""
        try:
            import fcntl
        except ImportError:  # not POSIX: no cross-process lock available
            yield
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released when fd is closed
            yield
        finally:
            os.close(fd)


def _status(review: StoredReview | None, row: Mapping[str, Any]) -> str:
    if review is None:
        return "unreviewed"
    if review.source_hash != _row_source_hash(row):
        return "needs_review_again"
    fields = {k: v for k, v in asdict(review).items() if k != "applied_at"}
    edit = ReviewEdit(**fields, row_number=0)
    status = edit.status
    if status == "approved" and review.output_hash != _row_output_hash(row):
        return "needs_review_again"  # the approved machine text is no longer the one in the row
    return status


def apply_stored_reviews(rows: pd.DataFrame, store: ReviewStore) -> tuple[pd.DataFrame, dict[str, int]]:
    """Rows with stored reviews applied, a ``review_status`` per row, and counts per status.

    Adds ``review_status``, ``reviewer_note``, ``reviewed_at`` and the untouched machine text as
    ``machine_instruction``/``machine_input``/``machine_output``. Corrections replace the machine
    text only while the review's source hash still matches. Rejected rows stay in the frame with
    status "rejected": dropping them (or keeping them as negatives) is the caller's decision.
    """
    reviews = store.load()
    out = rows.copy()
    for f in FIELDS:
        out[f"machine_{f}"] = out[f] if f in out.columns else ""
    statuses, notes, stamps = [], [], []
    values = {f: list(out[f]) if f in out.columns else [""] * len(out) for f in FIELDS}
    for position, row in enumerate(out.to_dict("records")):
        review = reviews.get(_text(row["id"]))
        status = _status(review, row)
        statuses.append(status)
        notes.append(review.reviewer_note if review else "")
        stamps.append(review.applied_at if review else "")
        if review is not None and status == "corrected":
            for f in FIELDS:
                corrected = getattr(review, f"corrected_{f}")
                if corrected is not None:
                    values[f][position] = corrected
    # as object Series: a plain empty list would become a float64 column on an empty frame
    def column(items: list) -> pd.Series:
        return pd.Series(items, index=out.index, dtype=object)

    for f in FIELDS:
        out[f] = column(values[f])
    out["review_status"] = column(statuses)
    out["reviewer_note"] = column(notes)
    out["reviewed_at"] = column(stamps)
    counts = {status: statuses.count(status) for status in REVIEW_STATUSES}
    return out, counts


def apply_review(rows: pd.DataFrame, edits: Iterable[ReviewEdit], reviews_store: ReviewStore) -> pd.DataFrame:
    """Store validated ``edits``, then apply every stored review to ``rows``."""
    reviews_store.save_edits(edits)
    return apply_stored_reviews(rows, reviews_store)[0]
