"""The documents data contract (docs/ARCHITECTURE.md, "Data contracts") as a frame builder."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa

from instruct_global.lib.common.frame_stream import RowSink

DOCUMENT_COLUMNS = ("doc_id", "lang", "source", "url", "title", "text", "license", "retrieved_at")


def documents_frame(rows: Iterable[Mapping[str, Any]], extra_columns: Iterable[str] = ()) -> pd.DataFrame:
    """A frame with every contract column present and string-typed, also when there are no rows."""
    columns = [*DOCUMENT_COLUMNS, *[c for c in extra_columns if c not in DOCUMENT_COLUMNS]]
    frame = pd.DataFrame(list(rows))
    for column in columns:
        if column not in frame.columns:
            frame[column] = pd.Series(dtype="object")
    frame = frame[[*columns, *[c for c in frame.columns if c not in columns]]]
    for column in DOCUMENT_COLUMNS:
        frame[column] = frame[column].astype("object")
    return frame.reset_index(drop=True)


def documents_schema(extra: Mapping[str, pa.DataType]) -> pa.Schema:
    """The Parquet schema of a documents partition: the contract's text columns, then ``extra``."""
    return pa.schema([*((c, pa.string()) for c in DOCUMENT_COLUMNS), *extra.items()])


@dataclass
class WrittenDocuments:
    """What a stage wrote, for its metadata: counts, lengths and the first rows, never all the text."""

    count: int = 0
    lengths: list[int] = field(default_factory=list)
    preview: pd.DataFrame = field(default_factory=pd.DataFrame)


def write_documents(
    rows: Iterable[Mapping[str, Any]], sink: RowSink, extra_columns: Iterable[str], batch_rows: int = 2000,
    preview_rows: int = 5,
) -> WrittenDocuments:  # fmt: skip
    """Rows to ``sink`` as documents frames of ``batch_rows``, as they come (a dump is never held whole)."""
    extra = tuple(extra_columns)
    written = WrittenDocuments(preview=documents_frame([], extra))
    iterator = iter(rows)
    while batch := list(itertools.islice(iterator, batch_rows)):
        frame = documents_frame(batch, extra)
        sink.write(frame)
        written.count += len(frame)
        written.lengths.extend(len(t) if isinstance(t, str) else 0 for t in frame["text"])
        if written.preview.empty:
            written.preview = frame.head(preview_rows)
    return written
