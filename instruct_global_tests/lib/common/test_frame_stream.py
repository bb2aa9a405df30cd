from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from instruct_global.lib.common.atomic import commit_file
from instruct_global.lib.common.frame_stream import (
    FrameSink,
    FrameSource,
    ParquetSink,
    ParquetSource,
    schema_with,
)


def _two_files(tmp_path: Path) -> tuple[Path, Path]:
    wiki, bbc = tmp_path / "wiki.parquet", tmp_path / "bbc.parquet"
    pd.DataFrame({"doc_id": [f"w{i}" for i in range(5)], "text": list("abcde"), "page_id": range(5)}).to_parquet(wiki)
    pd.DataFrame({"doc_id": ["b0", "b1"], "text": ["x", "y"], "published": ["2025-01-01", None]}).to_parquet(bbc)
    return wiki, bbc


def test_parquet_source_reads_files_in_order_with_their_columns_unified(tmp_path: Path) -> None:
    source = ParquetSource(_two_files(tmp_path))
    assert source.num_rows == 7
    assert source.columns == ["doc_id", "text", "page_id", "published"]
    assert source.column("doc_id") == ["w0", "w1", "w2", "w3", "w4", "b0", "b1"]
    assert source.column("published") == [None] * 5 + ["2025-01-01", None]
    frames = list(source.iter_frames(2))
    assert [len(f) for f in frames] == [2, 2, 1, 2]  # batches never span two files
    assert all(list(f.columns) == source.columns for f in frames)
    assert pd.concat(frames)["text"].tolist() == list("abcdexy")
    assert [list(f.columns) for f in source.iter_frames(10, ["text"])] == [["text"], ["text"]]


def test_a_file_lacking_a_column_is_named(tmp_path: Path) -> None:
    wiki, bbc = _two_files(tmp_path)
    with pytest.raises(ValueError, match=re.escape(f"articles: {bbc} lacks required columns: page_id")):
        ParquetSource([wiki, bbc]).require(["doc_id", "page_id"], "articles")
    with pytest.raises(FileNotFoundError, match=r"missing\.parquet"):
        ParquetSource([tmp_path / "missing.parquet"])


def test_frame_source_matches_the_parquet_source(tmp_path: Path) -> None:
    wiki, _ = _two_files(tmp_path)
    frame = pd.read_parquet(wiki)
    source = FrameSource(frame)
    assert source.num_rows == 5 and source.column("doc_id") == ParquetSource([wiki]).column("doc_id")
    assert [len(f) for f in source.iter_frames(2)] == [2, 2, 1]
    with pytest.raises(ValueError, match="documents frame lacks required columns: url"):
        source.require(["doc_id", "url"], "documents")


def test_parquet_sink_replaces_the_file_only_on_commit(tmp_path: Path) -> None:
    target = tmp_path / "out" / "yor.parquet"
    target.parent.mkdir()
    pd.DataFrame({"a": ["old"], "n": [1]}).to_parquet(target)
    # a column that is all null in the first frame is widened to text, so later text fits
    schema = schema_with(pa.schema([("a", pa.string()), ("note", pa.null())]), {"n": pa.int64()})
    assert schema.field("note").type == pa.string()

    sink = ParquetSink(target, schema)
    sink.write(pd.DataFrame({"a": ["x", "y"], "note": [None, None], "n": [1, 2]}))
    sink.write(pd.DataFrame({"a": ["z"], "note": ["text"], "n": [3]}))
    assert pd.read_parquet(target)["a"].tolist() == ["old"]  # nothing visible before the commit
    sink.commit()
    written = pd.read_parquet(target)
    assert written["a"].tolist() == ["x", "y", "z"] and written["note"].tolist() == [None, None, "text"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["yor.parquet"]

    failed = ParquetSink(target, schema)
    failed.write(pd.DataFrame({"a": ["lost"], "note": [None], "n": [9]}))
    failed.abort()
    assert pd.read_parquet(target)["a"].tolist() == ["x", "y", "z"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["yor.parquet"]


def test_a_staged_file_is_moved_into_place_by_whoever_commits_it(tmp_path: Path) -> None:
    target = tmp_path / "yor.parquet"
    sink = ParquetSink(target, pa.schema([("a", pa.string())]))
    staged = sink.staged_file()  # nothing written: a valid file with the schema and no rows
    assert staged.rows == 0 and staged.target == target and staged.path.parent == tmp_path
    assert staged.path.name.startswith(".yor.parquet.")
    commit_file(staged.path, target)
    empty = pd.read_parquet(target)
    assert list(empty.columns) == ["a"] and len(empty) == 0


def test_frame_sink_gives_the_empty_frame_when_nothing_was_written() -> None:
    empty = pd.DataFrame({"a": pd.Series(dtype="int64")})
    sink = FrameSink(empty)
    assert sink.frame() is empty
    sink.write(pd.DataFrame({"a": [1]}))
    sink.write(pd.DataFrame({"a": [2, 3]}))
    assert sink.rows == 3 and sink.frame()["a"].tolist() == [1, 2, 3]
