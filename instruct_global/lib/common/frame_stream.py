"""Rows read and written in batches, so a stage's memory does not grow with its partition.

``FrameSource`` (a frame in memory) and ``ParquetSource`` (one or more Parquet files, their columns
unified) give the same three things: the row count, one whole column (ids and other short values),
and the rows as frames of at most ``batch_rows``. ``FrameSink`` collects frames; ``ParquetSink``
writes them as row groups to a hidden file beside its target and renames it into place on
``commit`` (atomic: a failed stage leaves the previous file as it was).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from instruct_global.lib.common.atomic import commit_file


class RowSource(Protocol):
    @property
    def num_rows(self) -> int: ...

    @property
    def columns(self) -> list[str]: ...

    def column(self, name: str) -> list[object]: ...

    def iter_frames(self, batch_rows: int, columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]: ...

    def require(self, columns: Sequence[str], what: str) -> None: ...


class RowSink(Protocol):
    rows: int

    def write(self, frame: pd.DataFrame) -> None: ...


class FrameSource:
    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame.reset_index(drop=True)

    @property
    def num_rows(self) -> int:
        return len(self.frame)

    @property
    def columns(self) -> list[str]:
        return [str(c) for c in self.frame.columns]

    def column(self, name: str) -> list[object]:
        return self.frame[name].tolist()

    def require(self, columns: Sequence[str], what: str) -> None:
        missing = [c for c in columns if c not in self.frame.columns]
        if missing and len(self.frame):
            raise ValueError(f"{what} frame lacks required columns: {', '.join(missing)}")

    def iter_frames(self, batch_rows: int, columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
        frame = self.frame if columns is None else self.frame[list(columns)]
        for start in range(0, len(frame), batch_rows):
            yield frame.iloc[start : start + batch_rows]


class ParquetSource:
    """The rows of ``paths`` in order, every file seen with the union of their columns."""

    def __init__(self, paths: Sequence[Path | str]) -> None:
        self.paths = [Path(p) for p in paths]
        for path in self.paths:
            if not path.exists():
                raise FileNotFoundError(f"{path} does not exist")
        files = [pq.ParquetFile(p) for p in self.paths]
        self._rows = [f.metadata.num_rows for f in files]
        self.schema = unified_schema([f.schema_arrow for f in files])
        self._file_columns = [set(f.schema_arrow.names) for f in files]

    @property
    def num_rows(self) -> int:
        return sum(self._rows)

    @property
    def columns(self) -> list[str]:
        return list(self.schema.names)

    def require(self, columns: Sequence[str], what: str) -> None:
        """Every file with rows has ``columns`` (a column only another file has would be null here)."""
        problems = [
            f"{path} lacks required columns: {', '.join(missing)}"
            for path, present, rows in zip(self.paths, self._file_columns, self._rows, strict=True)
            if rows and (missing := [c for c in columns if c not in present])
        ]
        if problems:
            raise ValueError(f"{what}: " + "; ".join(problems))

    def column(self, name: str) -> list[object]:
        values: list[object] = []
        for path, present, rows in zip(self.paths, self._file_columns, self._rows, strict=True):
            values.extend(pq.read_table(path, columns=[name]).column(name).to_pylist() if name in present else [None] * rows)
        return values

    def iter_frames(self, batch_rows: int, columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
        wanted = list(columns) if columns is not None else self.columns
        for path, present in zip(self.paths, self._file_columns, strict=True):
            reading = [c for c in wanted if c in present]
            for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows, columns=reading):
                frame = batch.to_pandas()
                for column in wanted:
                    if column not in frame.columns:
                        frame[column] = None
                yield frame[wanted]


def unified_schema(schemas: Sequence[pa.Schema]) -> pa.Schema:
    """One schema for several files: columns in order of first appearance, null-typed ones widened."""
    if not schemas:
        return pa.schema([])
    unified = pa.unify_schemas(list(schemas), promote_options="permissive")
    return unified.remove_metadata()


class FrameSink:
    """Collects the frames written to it; ``frame()`` is their concatenation (``empty`` when none)."""

    def __init__(self, empty: pd.DataFrame) -> None:
        self._empty = empty
        self._parts: list[pd.DataFrame] = []
        self.rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        if len(frame):
            self._parts.append(frame)
            self.rows += len(frame)

    def frame(self) -> pd.DataFrame:
        if not self._parts:
            return self._empty
        return pd.concat(self._parts, ignore_index=True)


class ParquetSink:
    """Row groups into a hidden file beside ``path``; ``commit()`` renames it into place."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = Path(path)
        self.schema = schema
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.staged = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:8]}.tmp")
        self._writer: pq.ParquetWriter | None = pq.ParquetWriter(self.staged, schema)
        self.rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        if not len(frame) or self._writer is None:
            return
        table = pa.Table.from_pandas(frame[self.schema.names], schema=self.schema, preserve_index=False)
        self._writer.write_table(table)
        self.rows += len(frame)

    def close(self) -> Path:
        """Finish the staged file (still hidden); returns its path."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        return self.staged

    def staged_file(self) -> StagedParquet:
        """The finished, still hidden file, for whoever moves it into place (an IO manager)."""
        return StagedParquet(self.close(), self.path, self.rows)

    def commit(self) -> Path:
        commit_file(self.close(), self.path)
        return self.path

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self.staged.unlink(missing_ok=True)


@dataclass(frozen=True)
class StagedParquet:
    """A finished Parquet file beside ``target``, to be renamed onto it (``commit_file``)."""

    path: Path
    target: Path
    rows: int


def schema_with(schema: pa.Schema, columns: dict[str, pa.DataType]) -> pa.Schema:
    """``schema`` plus ``columns`` (replacing same-named ones); null-typed columns become strings,
    so a batch of text after a batch of nulls still fits."""
    fields = [pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f for f in schema if f.name not in columns]
    return pa.schema([*fields, *(pa.field(name, dtype) for name, dtype in columns.items())])
