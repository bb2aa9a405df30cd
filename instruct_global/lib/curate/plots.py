"""Bar charts for asset metadata: a PNG (matplotlib, headless) embedded in Markdown, else a text table.

The Dagster UI renders Markdown images from data URLs, so the picture shows in the asset's
metadata; the PNG is also written beside the data so it can be opened on its own.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

from instruct_global.lib.common.atomic import atomic_write
from instruct_global.lib.common.report import png_markdown


def markdown_bars(counts: Mapping[str, int], label: str, bar_width: int = 30) -> str:
    if not counts:
        return "_no values_"
    peak = max(counts.values()) or 1
    lines = [f"| {label} | count | |", "|---|---:|---|"]
    lines += [f"| {k} | {v} | {'█' * round(bar_width * v / peak)} |" for k, v in counts.items()]
    return "\n".join(lines)


def bar_chart_png(counts: Mapping[str, int], title: str, xlabel: str) -> bytes | None:
    """PNG bytes of a bar chart, or None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        from matplotlib.figure import Figure
    except ImportError:
        return None
    figure = Figure(figsize=(6, 3), dpi=100)
    axes = figure.subplots()
    names = [str(k) for k in counts]
    bars = axes.bar(names, list(counts.values()), color="#2E7D32")
    axes.bar_label(bars)
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("count")
    if len(names) > 12:
        axes.tick_params(axis="x", labelrotation=90, labelsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def chart_markdown(counts: Mapping[str, int], title: str, xlabel: str, png_path: Path | None = None) -> str:
    """Markdown with the chart embedded as a PNG (written to ``png_path`` too), else a text table."""
    png = bar_chart_png(counts, title, xlabel) if counts else None
    table = markdown_bars(counts, xlabel)
    if png is None:
        return table
    if png_path is not None:
        atomic_write(png_path, lambda handle: handle.write(png))
    return f"{png_markdown(png, title)}\n\n{table}"
