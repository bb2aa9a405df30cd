"""Bar charts for asset metadata: a PNG (matplotlib, headless) embedded in Markdown, else a text table.

The Dagster UI renders Markdown images from data URLs, so the picture shows in the asset's
metadata; the PNG is also written beside the data so it can be opened on its own.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from instruct_global.lib.common.atomic import atomic_write
from instruct_global.lib.common.report import markdown_histogram, png_markdown


def markdown_bars(counts: Mapping[str, int], label: str, bar_width: int = 30) -> str:
    if not counts:
        return "_no values_"
    peak = max(counts.values()) or 1
    lines = [f"| {label} | count | |", "|---|---:|---|"]
    lines += [f"| {k} | {v} | {'█' * round(bar_width * v / peak)} |" for k, v in counts.items()]
    return "\n".join(lines)


def _figure():  # -> (Figure, Axes) | None: matplotlib is optional
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        from matplotlib.figure import Figure
    except ImportError:
        return None
    figure = Figure(figsize=(6, 3), dpi=100)
    return figure, figure.subplots()


def bar_chart_png(counts: Mapping[str, int], title: str, xlabel: str) -> bytes | None:
    """PNG bytes of a bar chart, or None when matplotlib is not installed."""
    made = _figure()
    if made is None:
        return None
    figure, axes = made
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


def with_chart(counts: Mapping[str, int], title: str, xlabel: str, table: str) -> str:
    """``table`` (any Markdown) with a bar chart of ``counts`` above it, when there is something to draw."""
    png = bar_chart_png(counts, title, xlabel) if any(counts.values()) else None
    return table if png is None else f"{png_markdown(png, title)}\n\n{table}"


def binned_counts(values: Iterable[float], bins: Sequence[float]) -> dict[str, int]:
    """Counts per bin, labelled like ``markdown_histogram`` (the last bin open-ended)."""
    series = pd.Series(list(values), dtype="float64")
    edges = [*bins, float("inf")]
    counts = pd.cut(series, edges, right=False).value_counts(sort=False).tolist() if len(series) else [0] * len(bins)
    return {(f"≥{low:g}" if high == float("inf") else f"{low:g}–{high:g}"): int(count)
            for low, high, count in zip(edges[:-1], edges[1:], counts, strict=True)}


def histogram_markdown(values: Iterable[float], bins: Sequence[float], label: str, title: str = "") -> str:
    """A histogram as a PNG chart above its Markdown table (the table alone without matplotlib)."""
    values = list(values)
    return with_chart(binned_counts(values, bins), title or label, label, markdown_histogram(values, bins, label))


def category_mix_markdown(counts: Mapping[str, int], table: str) -> str:
    return with_chart(dict(counts), "category mix", "category", table)


def loss_curve_png(log_history: Sequence[Mapping[str, object]], title: str) -> bytes | None:
    """Training (and evaluation) loss per step from a Trainer's log history; None without values or matplotlib."""
    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e and "step" in e]
    evals = [(e["step"], e["eval_loss"]) for e in log_history if "eval_loss" in e and "step" in e]
    if not train and not evals:
        return None
    made = _figure()
    if made is None:
        return None
    figure, axes = made
    for points, label, style in ((train, "train loss", "o-"), (evals, "eval loss", "s--")):
        if points:
            axes.plot([p[0] for p in points], [p[1] for p in points], style, label=label)
    axes.set_title(title)
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
