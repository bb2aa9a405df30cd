"""The documents data contract (docs/ARCHITECTURE.md, "Data contracts") as a frame builder."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

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
