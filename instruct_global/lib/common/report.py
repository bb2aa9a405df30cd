"""Small renderers for asset metadata: Markdown previews and text histograms (no Dagster here)."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence

import pandas as pd


def _cell(value: object, width: int) -> str:
    text = "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= width else text[: width - 1] + "…"


def markdown_preview(frame: pd.DataFrame, columns: Sequence[str], rows: int = 5, width: int = 80) -> str:
    """The first rows of a frame as a Markdown table, long cells shortened."""
    present = [c for c in columns if c in frame.columns]
    if frame.empty or not present:
        return "_no rows_"
    lines = ["| " + " | ".join(present) + " |", "|" + "---|" * len(present)]
    for _, row in frame.head(rows).iterrows():
        lines.append("| " + " | ".join(_cell(row[c], width) for c in present) + " |")
    return "\n".join(lines)


def markdown_histogram(values: Iterable[float], bins: Sequence[float], label: str, bar_width: int = 30) -> str:
    """A histogram as a Markdown table with text bars; the last bin is open-ended."""
    series = pd.Series(list(values), dtype="float64")
    if series.empty:
        return "_no values_"
    edges = [*bins, float("inf")]
    counts = pd.cut(series, edges, right=False).value_counts(sort=False).tolist()
    peak = max(counts) or 1
    lines = [f"| {label} | count | |", "|---|---:|---|"]
    for low, high, count in zip(edges[:-1], edges[1:], counts, strict=True):
        span = f"≥ {low:g}" if high == float("inf") else f"{low:g}–{high:g}"
        lines.append(f"| {span} | {count} | {'█' * round(bar_width * count / peak)} |")
    return "\n".join(lines)


def markdown_counts(counts: Mapping[str, int], key: str = "reason") -> str:
    if not counts:
        return "_none_"
    lines = [f"| {key} | count |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    return "\n".join(lines)


LENGTH_BINS_CHARS = (0, 200, 500, 1000, 2000, 5000, 10000, 20000)


def png_markdown(png: bytes, alt: str) -> str:
    """A PNG embedded in Markdown (the Dagster UI renders data URLs in Markdown metadata)."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"
