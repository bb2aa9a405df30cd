"""The run summary's rendering from materialisation metadata (the CLI path is in test_cli_and_deploy)."""

from __future__ import annotations

from dagster import MetadataValue

from instruct_global.run_summary import CheckLine, asset_lines, render


def test_asset_lines_read_rows_drops_and_path_from_metadata() -> None:
    lines = asset_lines([
        ("clean_documents", {"row_count": MetadataValue.int(19), "dropped_total": MetadataValue.int(5),
                             "path": MetadataValue.path("/d/clean_documents/yor.parquet")}),
        ("skeleton_question_rejects", {"row_count": 2, "rejects": 2}),
        ("source_records", {}),
    ])
    assert [(a.asset, a.rows, a.dropped, a.path) for a in lines] == [
        ("clean_documents", 19, 5, "/d/clean_documents/yor.parquet"),
        ("skeleton_question_rejects", 2, 2, None),
        ("source_records", None, None, None),
    ]


def test_render_aligns_columns_and_shows_failed_checks() -> None:
    text = render("SUCCESS", "0123456789abcdef", asset_lines([("a", {"row_count": 3})]),
                  [CheckLine("a", "min_documents", False, "WARN"), CheckLine("a", "lid", True, "ERROR")])
    lines = text.splitlines()
    assert lines[0] == "Run 01234567: SUCCESS"
    assert lines[3].split() == ["a", "3", "-", "-"]
    assert "FAILED (warn)  a: min_documents" in text and "passed  a: lid" in text
