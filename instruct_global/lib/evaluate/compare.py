"""Base against fine-tuned in one table, with differences, and as a bar plot."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping

import pandas as pd

# measure -> higher is better
MEASURES: dict[str, bool] = {
    "truthfulqa_mc1": True,
    "truthfulqa_mc2": True,
    "truthfulqa_mc1_letter": True,
    "heldout_loss": False,
    "heldout_perplexity": False,
}


def comparison_table(
    base: Mapping[str, float],
    finetuned: Mapping[str, float],
    counts: Mapping[str, int],
    tolerance: float = 1e-6,
) -> pd.DataFrame:
    """One row per measure; a difference within ``tolerance`` (float noise) is neither better nor worse."""
    rows = []
    for measure, higher_better in MEASURES.items():
        if measure not in base and measure not in finetuned:
            continue
        b, f = float(base.get(measure, math.nan)), float(finetuned.get(measure, math.nan))
        diff = f - b
        gain = diff if higher_better else -diff
        better, worse = gain > tolerance, gain < -tolerance
        rows.append(
            {
                "measure": measure,
                "base": b,
                "finetuned": f,
                "difference": diff,
                "higher_is_better": higher_better,
                "finetuned_better": bool(better) if not math.isnan(diff) else False,
                "finetuned_worse": bool(worse) if not math.isnan(diff) else False,
                "n": int(counts.get(measure, 0)),
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "measure",
            "base",
            "finetuned",
            "difference",
            "higher_is_better",
            "finetuned_better",
            "finetuned_worse",
            "n",
        ],
    )


def markdown_table(table: pd.DataFrame) -> str:
    lines = ["| measure | base | fine-tuned | difference | |", "|---|---:|---:|---:|---|"]
    for row in table.itertuples():
        mark = "better" if row.finetuned_better else ("worse" if row.finetuned_worse else "same")
        lines.append(
            f"| {row.measure} | {row.base:.4f} | {row.finetuned:.4f} | {row.difference:+.4f} | {mark} |"
        )
    return "\n".join(lines)


def comparison_plot_png(table: pd.DataFrame, title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, max(1, len(table)), figsize=(2.6 * max(1, len(table)), 3.0), squeeze=False)
    for ax, row in zip(axes[0], table.itertuples(), strict=False):
        ax.bar(["base", "fine-tuned"], [row.base, row.finetuned], color=["#9aa5b1", "#2f80ed"])
        ax.set_title(row.measure, fontsize=9)
        ax.tick_params(labelsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


