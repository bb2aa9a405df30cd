"""Rows of the user's labelled datasets, described by an instruct-global input schema CSV.

Schema columns: ``file_name, category, description, num_variables, variable_1_description,
variable_2_description, ...`` and an optional ``license`` (the dataset's licence, e.g. "CC-BY-4.0";
it travels with every record to the dataset card and the licence filter). Extra columns such as
``total`` are ignored. ``file_name`` is a
CSV, JSONL or Parquet file relative to the schema's folder, with columns ``variable_1 ..
variable_N`` (other columns ignored), or ``hf:<dataset>[:<split>]`` / ``hf:<dataset>:<config>:<split>``
for a Hugging Face dataset (needs the network or a cached copy).

Every problem is collected, then raised together as one ``SchemaValidationError`` whose lines
each name the file, the row (and line) and the column.

``row_number`` is the 1-based data row as a person finds it: for CSV the first row under the
header is row 1 (spreadsheet row 2; blank rows count, as a spreadsheet shows them); for JSONL it
is the line number; for Parquet and Hugging Face datasets the 1-based row index.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from instruct_global.lib.common.categories import CATEGORIES, is_category
from instruct_global.lib.common.categories import normalise_category as _normalise_category

SCHEMA_REQUIRED = ("file_name", "category", "description", "num_variables")
RECORD_COLUMNS = (
    "record_id",
    "dataset",
    "category",
    "description",
    "num_variables",
    "variables",  # JSON object {"variable_1": value, ...}; read it with record_variables(row)
    "variable_descriptions",  # JSON object {"variable_1": description, ...}
    "row_number",
    "source_file",
    "license",  # the schema row's optional ``license`` cell ("" when the schema has none)
)
_FILE_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
_MAX_PROBLEMS_PER_FILE = 25  # a broken 100k-row file should not produce a 100k-line message
_CSV_FIELD_LIMIT = 64 * 1024 * 1024  # long articles (summarisation) exceed csv's 128 KiB default


class SchemaValidationError(ValueError):
    """All problems found in a schema and its source files; ``problems`` holds one per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            f"{len(problems)} problem(s) in the source datasets:\n" + "\n".join(f"- {p}" for p in problems)
        )


def normalise_category(raw: str) -> str | None:
    """The canonical category for a spelling, or None when it is not one of the ten."""
    return _normalise_category(raw) if is_category(raw) else None


def record_variables(row: Any) -> dict[str, str]:
    """The variables of one record (a row of the frame, a dict or a namedtuple) as a dict."""
    value = row.variables if hasattr(row, "variables") else row["variables"]
    return dict(value) if isinstance(value, dict) else json.loads(value)


@dataclass
class _Problems:
    items: list[str]
    per_file: dict[str, int]

    def add(self, file: str, where: str, message: str) -> None:
        n = self.per_file.get(file, 0) + 1
        self.per_file[file] = n
        if n <= _MAX_PROBLEMS_PER_FILE:
            self.items.append(f"{file}: {where}: {message}" if where else f"{file}: {message}")

    def finish(self) -> list[str]:
        extra = [
            f"{file}: {n - _MAX_PROBLEMS_PER_FILE} more problem(s) not listed"
            for file, n in self.per_file.items()
            if n > _MAX_PROBLEMS_PER_FILE
        ]
        return self.items + extra


@dataclass(frozen=True)
class _Row:
    row_number: int
    where: str  # "row 3 (line 4)" / "line 7" / "row 12", as used in messages
    cells: dict[str, Any]
    bad: frozenset[str] = frozenset()  # columns whose bytes were not UTF-8 (already reported)


# --- reading -----------------------------------------------------------------------------


def _decode(data: bytes) -> str:
    # surrogateescape keeps undecodable bytes as marks, so the parser still finds rows and columns
    # and each bad cell is reported where it is, not only the first failure in the file.
    return data.removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="surrogateescape")


def _utf16_problem(data: bytes, label: str, problems: _Problems) -> bool:
    """UTF-16 (Excel's "Unicode Text") is reported once for the file instead of as a byte per cell."""
    head = data[:512]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(head) >= 8 and head.count(0) * 3 >= len(head)):
        problems.add(label, "", "the file is UTF-16 text (Excel's 'Unicode Text'); save it as 'CSV UTF-8'")
        return True
    return False


def _bad_byte(value: Any) -> str | None:
    """'0xe9' for the first byte that was not UTF-8 in a decoded cell, else None."""
    if isinstance(value, str):
        for ch in value:
            if "\udc80" <= ch <= "\udcff":
                return f"0x{ord(ch) - 0xDC00:02x}"
    return None


def _check_bytes(cells: dict[str, Any], label: str, where: str, problems: _Problems) -> frozenset[str]:
    bad = set()
    for column, value in cells.items():
        if (byte := _bad_byte(value)) is not None:
            problems.add(
                label, f"{where}, column '{column}'", f"not valid UTF-8 (byte {byte}); save the file as UTF-8"
            )
            bad.add(column)
        if _bad_byte(column) is not None:
            problems.add(label, where, "a column name is not valid UTF-8; save the file as UTF-8")
    return frozenset(bad)


def _csv_rows(text: str, label: str, problems: _Problems) -> tuple[list[str], list[_Row]] | None:
    csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            problems.add(label, "", "the file is empty (no header row)")
            return None
        header = [h.strip() for h in header]
        if any(_bad_byte(h) for h in header):
            problems.add(label, "header (line 1)", "a column name is not valid UTF-8; save the file as UTF-8")
        duplicates = sorted({h for h in header if header.count(h) > 1})
        if duplicates:
            problems.add(label, "header", f"repeated column name(s): {', '.join(duplicates)}")
        rows: list[_Row] = []
        start_line = reader.line_num + 1
        for number, fields in enumerate(reader, start=1):
            where = f"row {number} (line {start_line})"
            start_line = reader.line_num + 1
            if not fields:  # a blank line: nothing to load, but it keeps its row number
                continue
            if len(fields) > len(header):
                problems.add(label, where, f"{len(fields)} fields but the header has {len(header)}")
            padded = fields + [""] * (len(header) - len(fields))  # short rows: the cells are empty
            cells = dict(zip(header, padded, strict=False))
            rows.append(_Row(number, where, cells, _check_bytes(cells, label, where, problems)))
        return header, rows
    except csv.Error as exc:
        problems.add(label, f"line {reader.line_num}", f"unreadable CSV: {exc}")
        return None


def _jsonl_rows(text: str, label: str, problems: _Problems) -> tuple[list[str], list[_Row]]:
    columns: dict[str, None] = {}
    rows: list[_Row] = []
    for line_number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"line {line_number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.add(label, where, f"malformed JSON: {exc.msg} (character {exc.colno} of the line)")
            continue
        if not isinstance(obj, dict):
            problems.add(label, where, f"expected a JSON object, found {type(obj).__name__}")
            continue
        columns.update(dict.fromkeys(obj))
        rows.append(_Row(line_number, where, obj, _check_bytes(obj, label, where, problems)))
    return list(columns), rows


def _table_rows(records: list[dict[str, Any]]) -> list[_Row]:
    return [_Row(i, f"row {i}", r) for i, r in enumerate(records, start=1)]


def _parquet_rows(path: Path, ref: _Ref, problems: _Problems) -> tuple[list[str], list[_Row]] | None:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a bad file
        ref.add(problems, f"unreadable Parquet file '{ref.file_name}': {type(exc).__name__}: {exc}")
        return None
    return table.column_names, _table_rows(table.to_pylist())


def _parse_hf(spec: str) -> tuple[str, str | None, str]:
    parts = spec.split(":")
    if len(parts) == 1:
        return parts[0], None, "train"
    if len(parts) == 2:
        return parts[0], None, parts[1] or "train"
    return parts[0], parts[1] or None, ":".join(parts[2:]) or "train"


def _hf_rows(spec: str, ref: _Ref, problems: _Problems) -> tuple[list[str], list[_Row]] | None:
    name, config, split = _parse_hf(spec)
    if not name:
        ref.add(problems, f"no dataset name in '{ref.file_name}'; write hf:<dataset>[:<split>]")
        return None
    try:
        import datasets

        ds = datasets.load_dataset(name, config, split=split)
    except Exception as exc:  # offline, unknown dataset, unknown split ... all reported the same way
        reason = " ".join(str(exc).split())[:300]
        ref.add(
            problems,
            f"could not load Hugging Face dataset '{name}'"
            + (f" (config '{config}')" if config else "")
            + f" split '{split}': {type(exc).__name__}: {reason}. Loading needs network access or a "
            "cached copy (with HF_HUB_OFFLINE=1 only cached datasets load).",
        )
        return None
    return list(ds.column_names), _table_rows(ds.to_list())


# --- validating --------------------------------------------------------------------------


def _cell_text(value: Any) -> str | None:
    """A cell as text, or None when it is empty."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="strict")
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, list | dict):
        text = json.dumps(value, ensure_ascii=False)
    else:
        text = str(value)
    text = unicodedata.normalize("NFC", text.strip())
    return text or None


def _parse_num_variables(raw: str) -> int | None:
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    if not value.is_integer() or value < 1:
        return None
    return int(value)


def _variable_index(column: str, suffix: str) -> int | None:
    if not column.startswith("variable_") or not column.endswith(suffix):
        return None
    middle = column[len("variable_") : len(column) - len(suffix)]
    return int(middle) if middle.isdigit() else None


def _resolve(file_name: str, base: Path) -> Path | None:
    path = (base / file_name).resolve()
    return path if path.is_relative_to(base.resolve()) else None


@dataclass(frozen=True)
class _Ref:
    """Where the schema lists a source: file-level problems are reported at that cell."""

    schema: str
    where: str
    file_name: str

    def add(self, problems: _Problems, message: str) -> None:
        problems.add(self.schema, f"{self.where}, column 'file_name'", message)


def _read_source(ref: _Ref, base: Path, problems: _Problems) -> tuple[list[str], list[_Row]] | None:
    file_name = ref.file_name
    if file_name.startswith("hf:"):
        return _hf_rows(file_name[3:], ref, problems)
    path = _resolve(file_name, base)
    if path is None:
        ref.add(
            problems, f"'{file_name}' is outside the schema's folder {base}; keep sources beside the schema"
        )
        return None
    kind = _FILE_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        ref.add(problems, f"'{file_name}' has unsupported type '{path.suffix}'; use .csv, .jsonl or .parquet")
        return None
    if not path.is_file():
        ref.add(problems, f"file '{file_name}' not found (looked for {path})")
        return None
    if kind == "parquet":
        return _parquet_rows(path, ref, problems)
    data = path.read_bytes()
    if _utf16_problem(data, file_name, problems):
        return None
    text = _decode(data)
    return _csv_rows(text, file_name, problems) if kind == "csv" else _jsonl_rows(text, file_name, problems)


def _dataset_name(file_name: str) -> str:
    if file_name.startswith("hf:"):
        return file_name[3:]
    return Path(file_name).with_suffix("").as_posix()


def _record_id(dataset: str, variables: dict[str, str], occurrence: int) -> str:
    # Identical rows in one dataset get distinct ids by their occurrence count; the first keeps
    # the pure content hash, so ids do not move when unrelated rows are added or reordered.
    payload = dataset + "\x1f" + json.dumps(variables, ensure_ascii=False, sort_keys=True)
    if occurrence > 1:
        payload += f"\x1f{occurrence}"
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def _schema_rows(schema_csv: Path, problems: _Problems) -> Iterator[_Row]:
    label = schema_csv.name
    if not schema_csv.is_file():
        problems.add(label, "", f"schema file not found (looked for {schema_csv})")
        return
    data = schema_csv.read_bytes()
    if _utf16_problem(data, label, problems):
        return
    parsed = _csv_rows(_decode(data), label, problems)
    if parsed is None:
        return
    header, rows = parsed
    missing = [c for c in SCHEMA_REQUIRED if c not in header]
    if missing:
        problems.add(label, "header", f"missing column(s): {', '.join(missing)}")
        return
    yield from rows


def load_source_records(schema_csv: Path) -> pd.DataFrame:
    """Load every dataset the schema lists into one frame of ``RECORD_COLUMNS``."""
    schema_csv = Path(schema_csv)
    base = schema_csv.parent
    problems = _Problems([], {})
    label = schema_csv.name
    records: list[dict[str, Any]] = []
    seen_datasets: dict[str, str] = {}

    for srow in _schema_rows(schema_csv, problems):
        # Cells with non-UTF-8 bytes were reported while reading; they count as present here.
        cells = {k: "" if k in srow.bad else (v or "").strip() for k, v in srow.cells.items()}
        where = srow.where
        ok = not srow.bad
        for column in ("file_name", "category", "description", "num_variables"):
            if column not in srow.bad and not cells.get(column):
                problems.add(label, f"{where}, column '{column}'", "empty cell")
                ok = False
        file_name = cells.get("file_name", "")
        category = normalise_category(cells["category"]) if cells.get("category") else None
        if cells.get("category") and category is None:
            problems.add(
                label,
                f"{where}, column 'category'",
                f"unknown category '{cells['category']}'; valid: {', '.join(CATEGORIES)}",
            )
            ok = False
        n_vars = _parse_num_variables(cells["num_variables"]) if cells.get("num_variables") else None
        if cells.get("num_variables") and n_vars is None:
            problems.add(
                label,
                f"{where}, column 'num_variables'",
                f"'{cells['num_variables']}' is not a whole number >= 1",
            )
            ok = False
        descriptions = _variable_descriptions(cells, srow.bad, n_vars, label, where, problems)
        if descriptions is None:
            ok = False
        if file_name:
            dataset = _dataset_name(file_name)
            if dataset in seen_datasets:
                problems.add(
                    label,
                    f"{where}, column 'file_name'",
                    f"dataset '{dataset}' already listed ({seen_datasets[dataset]})",
                )
                ok = False
            seen_datasets.setdefault(dataset, where)
        if not file_name:
            continue
        source = _read_source(_Ref(label, where, file_name), base, problems)
        if source is None or not ok or n_vars is None or category is None or descriptions is None:
            continue
        records.extend(
            _source_records(
                source,
                file_name,
                category,
                cells["description"],
                n_vars,
                descriptions,
                problems,
                f"{label} {where}",
                license_=unicodedata.normalize("NFC", cells.get("license", "")),
            )
        )

    found = problems.finish()
    if found:
        raise SchemaValidationError(found)
    frame = pd.DataFrame.from_records(records, columns=list(RECORD_COLUMNS))
    return frame.astype({"row_number": "int64", "num_variables": "int64"})


def _variable_descriptions(
    cells: dict[str, str],
    bad: frozenset[str],
    n_vars: int | None,
    label: str,
    where: str,
    problems: _Problems,
) -> dict[str, str] | None:
    """variable_k_description for k in 1..n; problems when one is missing or one past n is filled."""
    if n_vars is None:
        return None
    ok = True
    out: dict[str, str] = {}
    for k in range(1, n_vars + 1):
        column = f"variable_{k}_description"
        if column in bad:
            ok = False
        elif column not in cells:
            problems.add(
                label, f"{where}, column '{column}'", f"column missing but num_variables is {n_vars}"
            )
            ok = False
        elif not cells[column]:
            problems.add(label, f"{where}, column '{column}'", f"empty cell but num_variables is {n_vars}")
            ok = False
        else:
            out[f"variable_{k}"] = unicodedata.normalize("NFC", cells[column])
    for column, value in cells.items():
        k = _variable_index(column, "_description")
        if k is not None and k > n_vars and value:
            problems.add(
                label,
                f"{where}, column '{column}'",
                f"filled but num_variables is {n_vars}; raise num_variables or clear it",
            )
            ok = False
    return out if ok else None


def _source_records(
    source: tuple[list[str], list[_Row]],
    file_name: str,
    category: str,
    description: str,
    n_vars: int,
    descriptions: dict[str, str],
    problems: _Problems,
    schema_where: str,
    license_: str = "",
) -> list[dict[str, Any]]:
    columns, rows = source
    if not rows:  # else the dataset would vanish from the quotas without a word
        problems.add(file_name, "", f"holds no data rows, but {schema_where} lists it")
        return []
    wanted = [f"variable_{k}" for k in range(1, n_vars + 1)]
    missing = [c for c in wanted if c not in columns]
    extra = sorted(
        (c for c in columns if (k := _variable_index(c, "")) is not None and k > n_vars),
        key=lambda c: int(c.split("_")[1]),
    )
    for column in missing:
        problems.add(
            file_name,
            f"header, column '{column}'",
            f"missing, but {schema_where} says num_variables is {n_vars}",
        )
    for column in extra:
        problems.add(
            file_name,
            f"header, column '{column}'",
            f"present, but {schema_where} says num_variables is {n_vars}",
        )
    if missing or extra:
        return []
    dataset = _dataset_name(file_name)
    described = json.dumps(descriptions, ensure_ascii=False)
    occurrences: dict[str, int] = {}
    out: list[dict[str, Any]] = []
    for row in rows:
        variables: dict[str, str] = {}
        for column in wanted:
            if column in row.bad:  # reported while reading
                continue
            try:
                text = _cell_text(row.cells.get(column))
            except UnicodeDecodeError:  # a binary Parquet cell
                problems.add(file_name, f"{row.where}, column '{column}'", "bytes that are not valid UTF-8")
                continue
            if text is None:
                problems.add(file_name, f"{row.where}, column '{column}'", "empty cell")
                continue
            variables[column] = text
        if len(variables) != n_vars:
            continue
        content = json.dumps(variables, ensure_ascii=False, sort_keys=True)
        occurrences[content] = occurrences.get(content, 0) + 1
        out.append(
            {
                "record_id": _record_id(dataset, variables, occurrences[content]),
                "dataset": dataset,
                "category": category,
                "description": unicodedata.normalize("NFC", description),
                "num_variables": n_vars,
                "variables": json.dumps(variables, ensure_ascii=False),
                "variable_descriptions": described,
                "row_number": row.row_number,
                "source_file": file_name,
                "license": license_,
            }
        )
    return out
