from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from instruct_global.lib.corpus.source_records import (
    CATEGORIES,
    RECORD_COLUMNS,
    SchemaValidationError,
    load_source_records,
    normalise_category,
    record_variables,
)

SAMPLE_SCHEMA = Path(__file__).resolve().parents[3] / "data" / "schema" / "yor" / "input_schema.csv"
SCHEMA_HEADER = [
    "file_name",
    "category",
    "description",
    "num_variables",
    "variable_1_description",
    "variable_2_description",
]


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_schema(folder: Path, rows: list[list[str]], header: list[str] | None = None) -> Path:
    return write_csv(folder / "input_schema.csv", header or SCHEMA_HEADER, rows)


def schema_row(
    file_name: str = "data.csv", category: str = "translation", n: str = "2", d2: str = "yo"
) -> list[str]:
    return [file_name, category, "pairs", n, "en", d2]


def pairs_csv(folder: Path, rows: list[list[str]] | None = None, header: list[str] | None = None) -> Path:
    rows = rows if rows is not None else [["Hello.", "Ẹ n lẹ."], ["Thank you.", "Ẹ ṣé."]]
    return write_csv(folder / "data.csv", header or ["variable_1", "variable_2"], rows)


def problems_of(schema: Path) -> list[str]:
    with pytest.raises(SchemaValidationError) as info:
        load_source_records(schema)
    assert str(info.value).count("\n- ") == len(info.value.problems)
    return info.value.problems


def only_problem(schema: Path) -> str:
    problems = problems_of(schema)
    assert len(problems) == 1, problems
    return problems[0]


# --- the shipped sample --------------------------------------------------------------------


def test_sample_schema_loads() -> None:
    frame = load_source_records(SAMPLE_SCHEMA)
    assert list(frame.columns) == list(RECORD_COLUMNS)
    assert frame.groupby("dataset")["category"].first().to_dict() == {
        "english_yoruba_pairs": "translation",
        "news_headlines_topics": "classification",
        "yoruba_proverbs": "question-answer",
    }
    assert frame.groupby("dataset").size().between(8, 15).all()
    assert frame["record_id"].is_unique
    first = frame.iloc[0]
    assert first["row_number"] == 1 and first["source_file"] == "yoruba_proverbs.csv"
    assert record_variables(first) == {
        "variable_1": "Àgbájọ ọwọ́ la fi ń sọ̀yà.",
        "variable_2": record_variables(first)["variable_2"],
    }
    assert json.loads(first["variable_descriptions"])["variable_1"] == "a Yoruba proverb"
    # the JSONL's extra "id" field is ignored
    headline = frame[frame["dataset"] == "news_headlines_topics"].iloc[0]
    assert set(record_variables(headline)) == {"variable_1", "variable_2"}


def test_sample_ids_are_stable_and_roundtrip_through_parquet(tmp_path: Path) -> None:
    first = load_source_records(SAMPLE_SCHEMA)
    assert first["record_id"].tolist() == load_source_records(SAMPLE_SCHEMA)["record_id"].tolist()
    path = tmp_path / "records.parquet"
    first.to_parquet(path)
    back = pd.read_parquet(path)
    pd.testing.assert_frame_equal(back, first)
    assert [record_variables(r) for r in back.itertuples()] == [
        record_variables(r) for _, r in first.iterrows()
    ]


def test_empty_schema_gives_an_empty_frame(tmp_path: Path) -> None:
    frame = load_source_records(write_schema(tmp_path, []))
    assert list(frame.columns) == list(RECORD_COLUMNS) and len(frame) == 0


# --- categories ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        *[(c, c) for c in CATEGORIES],
        ("Summarization", "summarisation"),
        ("question_answer", "question-answer"),
        ("Question Answer", "question-answer"),
        ("multiple_choice", "multiple-choice"),
        ("MULTIPLE-CHOICE ", "multiple-choice"),
        ("qa", "question-answer"),
        ("Brainstorm", "brainstorming"),
        ("poetry", None),
        ("", None),
    ],
)
def test_normalise_category(raw: str, expected: str | None) -> None:
    assert normalise_category(raw) == expected


# --- formats and row numbers ----------------------------------------------------------------


def test_csv_jsonl_and_parquet_sources(tmp_path: Path) -> None:
    pairs_csv(tmp_path)
    (tmp_path / "data2.jsonl").write_text(
        '{"variable_1": "Hello.", "variable_2": "Ẹ n lẹ.", "note": 1}\n\n{"variable_1": 7, "variable_2": true}\n',
        encoding="utf-8",
    )
    pq.write_table(
        pa.table({"variable_1": ["Hello."], "variable_2": ["Ẹ n lẹ."], "x": [1]}), tmp_path / "data3.parquet"
    )
    schema = write_schema(
        tmp_path,
        [schema_row("data.csv"), schema_row("data2.jsonl", "Translation"), schema_row("data3.parquet")],
        header=[*SCHEMA_HEADER, "total"],
    )
    frame = load_source_records(schema)
    assert frame["dataset"].tolist() == ["data", "data", "data2", "data2", "data3"]
    assert frame["row_number"].tolist() == [1, 2, 1, 3, 1]  # JSONL: line numbers, blank lines counted
    assert record_variables(frame.iloc[3]) == {"variable_1": "7", "variable_2": "true"}
    assert frame["category"].unique().tolist() == ["translation"]


def test_bom_multiline_cells_and_huge_fields(tmp_path: Path) -> None:
    big = "ọ̀rọ̀ " * 40_000  # over the csv module's default 128 KiB field limit
    pairs_csv(tmp_path, [["line one\nline two", "a"], [big, "b"], ["x", ""]])
    data = tmp_path / "data.csv"
    data.write_bytes(b"\xef\xbb\xbf" + data.read_bytes())
    problem = only_problem(write_schema(tmp_path, [schema_row()]))
    # the empty cell is row 3, on line 5 because row 1 spans two lines
    assert problem == "data.csv: row 3 (line 5), column 'variable_2': empty cell"


def test_identical_rows_get_distinct_stable_ids(tmp_path: Path) -> None:
    pairs_csv(tmp_path, [["a", "b"], ["a", "b"], ["c", "d"]])
    schema = write_schema(tmp_path, [schema_row()])
    ids = load_source_records(schema)["record_id"].tolist()
    assert len(set(ids)) == 3
    pairs_csv(tmp_path, [["z", "z"], ["c", "d"], ["a", "b"]])  # reorder and add a row
    moved = load_source_records(schema)["record_id"].tolist()
    assert moved[1] == ids[2] and moved[2] == ids[0]


def test_hugging_face_dataset_from_a_local_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")
    folder = tmp_path / "local_ds"
    folder.mkdir()
    (folder / "train.jsonl").write_text('{"variable_1": "a", "variable_2": "b"}\n', encoding="utf-8")
    frame = load_source_records(write_schema(tmp_path, [schema_row(f"hf:{folder}:train")]))
    assert record_variables(frame.iloc[0]) == {"variable_1": "a", "variable_2": "b"}


# --- validation errors: each names file, row (or line) and column ----------------------------


def test_missing_file(tmp_path: Path) -> None:
    problem = only_problem(write_schema(tmp_path, [schema_row("nope.csv")]))
    assert problem.startswith(
        "input_schema.csv: row 1 (line 2), column 'file_name': file 'nope.csv' not found"
    )


def test_unknown_category_lists_the_valid_ones(tmp_path: Path) -> None:
    pairs_csv(tmp_path)
    problem = only_problem(write_schema(tmp_path, [schema_row(category="poetry")]))
    assert problem.startswith(
        "input_schema.csv: row 1 (line 2), column 'category': unknown category 'poetry'"
    )
    assert all(c in problem for c in CATEGORIES)


@pytest.mark.parametrize("value", ["two", "2.5", "0", "-1", "1e400"])
def test_non_integer_num_variables(tmp_path: Path, value: str) -> None:
    pairs_csv(tmp_path)
    problem = only_problem(write_schema(tmp_path, [schema_row(n=value)]))
    assert problem.startswith(f"input_schema.csv: row 1 (line 2), column 'num_variables': '{value}'")


def test_num_variables_2_0_is_accepted(tmp_path: Path) -> None:
    pairs_csv(tmp_path)
    assert len(load_source_records(write_schema(tmp_path, [schema_row(n="2.0")]))) == 2


@pytest.mark.parametrize(
    ("n", "d2", "column", "fragment"),
    [
        ("3", "yo", "variable_3_description", "column missing but num_variables is 3"),
        ("1", "yo", "variable_2_description", "filled but num_variables is 1"),
        ("2", "", "variable_2_description", "empty cell but num_variables is 2"),
    ],
)
def test_num_variables_disagrees_with_descriptions(
    tmp_path: Path, n: str, d2: str, column: str, fragment: str
) -> None:
    pairs_csv(tmp_path)
    problems = problems_of(write_schema(tmp_path, [schema_row(n=n, d2=d2)]))
    expected = f"input_schema.csv: row 1 (line 2), column '{column}': {fragment}"
    assert any(p.startswith(expected) for p in problems), problems


@pytest.mark.parametrize(
    ("header", "rows", "expected"),
    [
        (
            ["variable_1"],
            [["a"]],
            "data.csv: header, column 'variable_2': missing, but input_schema.csv row 1 (line 2) says num_variables is 2",
        ),
        (
            ["variable_1", "variable_2", "variable_3"],
            [["a", "b", "c"]],
            "data.csv: header, column 'variable_3': present, but input_schema.csv row 1 (line 2) says num_variables is 2",
        ),
    ],
)
def test_num_variables_disagrees_with_source_columns(
    tmp_path: Path, header: list[str], rows: list[list[str]], expected: str
) -> None:
    pairs_csv(tmp_path, rows, header)
    assert only_problem(write_schema(tmp_path, [schema_row()])) == expected


def test_a_listed_dataset_without_rows_is_an_error(tmp_path: Path) -> None:
    pairs_csv(tmp_path, [])  # header only
    (tmp_path / "j.jsonl").write_text("\n\n", encoding="utf-8")
    pq.write_table(pa.table({"variable_1": pa.array([], pa.string()), "variable_2": pa.array([], pa.string())}),
                   tmp_path / "p.parquet")  # fmt: skip
    schema = write_schema(tmp_path, [schema_row(), schema_row("j.jsonl"), schema_row("p.parquet")])
    assert problems_of(schema) == [
        f"{name}: holds no data rows, but input_schema.csv row {row} (line {row + 1}) lists it"
        for row, name in enumerate(["data.csv", "j.jsonl", "p.parquet"], start=1)
    ]


def test_empty_cells_in_every_format(tmp_path: Path) -> None:
    pairs_csv(tmp_path, [["a", "b"], ["a", "  "], ["a"]])
    (tmp_path / "j.jsonl").write_text(
        '{"variable_1": "a", "variable_2": null}\n{"variable_1": ""}\n', encoding="utf-8"
    )
    pq.write_table(pa.table({"variable_1": ["a", None], "variable_2": ["b", "c"]}), tmp_path / "p.parquet")
    schema = write_schema(tmp_path, [schema_row(), schema_row("j.jsonl"), schema_row("p.parquet")])
    assert problems_of(schema) == [
        "data.csv: row 2 (line 3), column 'variable_2': empty cell",
        "data.csv: row 3 (line 4), column 'variable_2': empty cell",
        "j.jsonl: line 1, column 'variable_2': empty cell",
        "j.jsonl: line 2, column 'variable_1': empty cell",
        "j.jsonl: line 2, column 'variable_2': empty cell",
        "p.parquet: row 2, column 'variable_1': empty cell",
    ]


def test_non_utf8_bytes_are_located(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_bytes("variable_1,variable_2\nok,fine\nCaf\xe9,x\n".encode("latin-1"))
    (tmp_path / "j.jsonl").write_bytes(
        b'{"variable_1": "a", "variable_2": "b"}\n{"variable_1": "\xff", "variable_2": "b"}\n'
    )
    schema = tmp_path / "input_schema.csv"
    schema.write_bytes(
        ",".join(SCHEMA_HEADER).encode() + b"\ndata.csv,translation,pairs,2,en,yo\n"
        b"j.jsonl,translation,desc \x92quoted\x92,2,en,yo\n"
    )
    assert problems_of(schema) == [
        "input_schema.csv: row 2 (line 3), column 'description': not valid UTF-8 (byte 0x92); save the file as UTF-8",
        "data.csv: row 2 (line 3), column 'variable_1': not valid UTF-8 (byte 0xe9); save the file as UTF-8",
        "j.jsonl: line 2, column 'variable_1': not valid UTF-8 (byte 0xff); save the file as UTF-8",
    ]


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        (
            '{"variable_1": "a", "variable_2": }',
            "line 2: malformed JSON: Expecting value (character 35 of the line)",
        ),
        ('{"variable_1": "a"', "line 2: malformed JSON"),
        ('["a", "b"]', "line 2: expected a JSON object, found list"),
        ("nonsense", "line 2: malformed JSON"),
    ],
)
def test_malformed_jsonl_lines(tmp_path: Path, line: str, fragment: str) -> None:
    (tmp_path / "j.jsonl").write_text(
        '{"variable_1": "a", "variable_2": "b"}\n' + line + "\n", encoding="utf-8"
    )
    problem = only_problem(write_schema(tmp_path, [schema_row("j.jsonl")]))
    assert problem.startswith("j.jsonl: " + fragment)


def test_csv_row_with_too_many_fields(tmp_path: Path) -> None:
    pairs_csv(tmp_path, [["a", "b"], ["a", "b", "c"]])
    assert (
        only_problem(write_schema(tmp_path, [schema_row()]))
        == "data.csv: row 2 (line 3): 3 fields but the header has 2"
    )


@pytest.mark.parametrize("column", ["file_name", "category", "description", "num_variables"])
def test_empty_schema_cells(tmp_path: Path, column: str) -> None:
    pairs_csv(tmp_path)
    row = schema_row()
    row[SCHEMA_HEADER.index(column)] = ""
    assert f"input_schema.csv: row 1 (line 2), column '{column}': empty cell" in problems_of(
        write_schema(tmp_path, [row])
    )


def test_schema_without_required_columns(tmp_path: Path) -> None:
    schema = write_csv(tmp_path / "input_schema.csv", ["file_name", "category"], [["data.csv", "chat"]])
    assert only_problem(schema) == "input_schema.csv: header: missing column(s): description, num_variables"


def test_schema_not_found(tmp_path: Path) -> None:
    assert "schema file not found" in only_problem(tmp_path / "missing.csv")


def test_dataset_listed_twice(tmp_path: Path) -> None:
    pairs_csv(tmp_path)
    problem = only_problem(write_schema(tmp_path, [schema_row(), schema_row()]))
    assert problem.startswith(
        "input_schema.csv: row 2 (line 3), column 'file_name': dataset 'data' already listed"
    )


@pytest.mark.parametrize("file_name", ["../outside.csv", "/etc/passwd.csv", "sub/../../x.csv"])
def test_paths_outside_the_schema_folder_are_refused(tmp_path: Path, file_name: str) -> None:
    inner = tmp_path / "schema"
    inner.mkdir()
    pairs_csv(tmp_path)  # exists, but outside
    (tmp_path / "outside.csv").write_text("variable_1,variable_2\na,b\n", encoding="utf-8")
    problem = only_problem(write_schema(inner, [schema_row(file_name)]))
    assert problem.startswith("input_schema.csv: row 1 (line 2), column 'file_name':")
    assert "outside the schema's folder" in problem


@pytest.mark.parametrize(
    ("file_name", "content", "fragment"),
    [
        ("data.xlsx", b"PK\x03\x04", "unsupported type '.xlsx'"),
        ("data.parquet", b"not parquet at all", "unreadable Parquet file 'data.parquet'"),
    ],
)
def test_unreadable_or_unsupported_files(
    tmp_path: Path, file_name: str, content: bytes, fragment: str
) -> None:
    (tmp_path / file_name).write_bytes(content)
    problem = only_problem(write_schema(tmp_path, [schema_row(file_name)]))
    assert problem.startswith("input_schema.csv: row 1 (line 2), column 'file_name':") and fragment in problem


@pytest.mark.parametrize(
    "spec", ["hf:no-such-user/no-such-dataset", "hf:no-such-user/x:cfg:validation", "hf:"]
)
def test_hugging_face_offline_fails_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: str
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    problem = only_problem(write_schema(tmp_path, [schema_row(spec)]))
    assert problem.startswith("input_schema.csv: row 1 (line 2), column 'file_name':")
    assert ("could not load Hugging Face dataset" in problem) or ("no dataset name" in problem)


def test_all_problems_are_collected_and_long_lists_capped(tmp_path: Path) -> None:
    pairs_csv(tmp_path, [["", ""]] * 40)
    (tmp_path / "j.jsonl").write_text("{bad\n", encoding="utf-8")
    schema = write_schema(
        tmp_path,
        [
            schema_row(),
            schema_row("j.jsonl"),
            schema_row("gone.csv", "poetry", "x"),
            schema_row("x.csv", n="1"),
        ],
    )
    problems = problems_of(schema)
    assert sum(p.startswith("data.csv: row") for p in problems) == 25
    assert "data.csv: 55 more problem(s) not listed" in problems
    assert any(p.startswith("j.jsonl: line 1: malformed JSON") for p in problems)
    schema_problems = [p for p in problems if p.startswith("input_schema.csv")]
    assert {p.split(":")[1].strip() for p in schema_problems} >= {
        "row 3 (line 4), column 'category'",
        "row 4 (line 5), column 'variable_2_description'",
    }
    assert (
        len(schema_problems) == 5
    )  # gone.csv: category, num_variables, not found; x.csv: description, not found


# --- the optional license column --------------------------------------------------------------


def test_license_column_travels_with_every_record(tmp_path: Path) -> None:
    pairs_csv(tmp_path)
    schema = write_schema(tmp_path, [[*schema_row(), "CC-BY-4.0"]], header=[*SCHEMA_HEADER, "license"])
    frame = load_source_records(schema)
    assert list(frame["license"]) == ["CC-BY-4.0", "CC-BY-4.0"]


def test_no_license_column_means_an_empty_license(tmp_path: Path) -> None:
    pairs_csv(tmp_path)
    frame = load_source_records(write_schema(tmp_path, [schema_row()]))
    assert list(frame["license"]) == ["", ""]
