"""Win / tie / loss of fine-tuned against base, with a 95 % interval, and agreement between reviewers.

- A row judged by several reviewers counts once, by its most frequent outcome; when outcomes are
  equally frequent the row counts as a tie (the reviewers disagree).
- Win rate = wins / (wins + losses), "decisive" rows only (tie and both_bad are not decisive);
  its 95 % Wilson score interval; a two-sided exact binomial sign test of wins against losses
  (H0: p = 0.5).
- "Loses significantly": the whole Wilson interval lies below 0.5.
- Agreement: Cohen's kappa on the unblinded outcomes for each pair of reviewers over the rows both
  judged; with several pairs, their mean weighted by shared rows.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Sequence

import pandas as pd

from instruct_global.lib.evaluate.human_eval import OUTCOMES

Z_95 = 1.959963984540054
SCORE_COLUMNS = [
    "lang", "judged_rows", "judgments", "wins", "ties", "both_bad", "losses", "win_rate", "ci_low", "ci_high",
    "sign_test_p", "kappa", "kappa_rows", "reviewers", "loses_significantly",
]  # fmt: skip


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion; (nan, nan) for n = 0."""
    if n <= 0:
        return (math.nan, math.nan)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (max(0.0, centre - half), min(1.0, centre + half))


def sign_test_p(wins: int, losses: int) -> float:
    """Two-sided exact binomial test of wins among decisive rows against p = 0.5; nan with none."""
    if wins + losses == 0:
        return math.nan
    from scipy.stats import binomtest

    return float(binomtest(wins, wins + losses, 0.5, alternative="two-sided").pvalue)


def cohen_kappa(first: Sequence[str], second: Sequence[str]) -> float:
    """Cohen's kappa of two raters on the same items; nan when chance agreement is 1 (one label only)."""
    if len(first) != len(second):
        raise ValueError("both raters must judge the same items")
    n = len(first)
    if n == 0:
        return math.nan
    observed = sum(a == b for a, b in zip(first, second, strict=True)) / n
    counts_1, counts_2 = Counter(first), Counter(second)
    expected = sum(counts_1[k] * counts_2[k] for k in set(counts_1) | set(counts_2)) / (n * n)
    if expected >= 1.0:
        return math.nan
    return (observed - expected) / (1 - expected)


def agreement(judgments: pd.DataFrame) -> tuple[float, int]:
    """Weighted mean pairwise Cohen's kappa and the number of rows judged by two or more reviewers."""
    by_reviewer = {r: dict(zip(g["id"], g["outcome"], strict=True)) for r, g in judgments.groupby("reviewer")}
    multi = judgments.groupby("id")["reviewer"].nunique()
    total, weight = 0.0, 0
    for a, b in itertools.combinations(sorted(by_reviewer), 2):
        shared = sorted(set(by_reviewer[a]) & set(by_reviewer[b]))
        kappa = cohen_kappa([by_reviewer[a][i] for i in shared], [by_reviewer[b][i] for i in shared])
        if shared and not math.isnan(kappa):
            total += kappa * len(shared)
            weight += len(shared)
    return (total / weight if weight else math.nan), int((multi >= 2).sum())


def row_outcomes(judgments: pd.DataFrame) -> pd.Series:
    """One outcome per row id (see the module docstring for rows judged more than once)."""

    def decide(outcomes: pd.Series) -> str:
        counts = Counter(outcomes).most_common()
        if len(counts) > 1 and counts[0][1] == counts[1][1]:
            return "tie"
        return counts[0][0]

    return judgments.groupby("id")["outcome"].agg(decide)


def score_language(lang: str, judgments: pd.DataFrame) -> dict:
    outcomes = Counter(row_outcomes(judgments)) if len(judgments) else Counter()
    wins, losses = outcomes["win"], outcomes["loss"]
    low, high = wilson_interval(wins, wins + losses)
    kappa, kappa_rows = agreement(judgments) if len(judgments) else (math.nan, 0)
    return {
        "lang": lang,
        "judged_rows": sum(outcomes[o] for o in OUTCOMES),
        "judgments": len(judgments),
        "wins": wins,
        "ties": outcomes["tie"],
        "both_bad": outcomes["both_bad"],
        "losses": losses,
        "win_rate": wins / (wins + losses) if wins + losses else math.nan,
        "ci_low": low,
        "ci_high": high,
        "sign_test_p": sign_test_p(wins, losses),
        "kappa": kappa,
        "kappa_rows": kappa_rows,
        "reviewers": int(judgments["reviewer"].nunique()) if len(judgments) else 0,
        "loses_significantly": bool(not math.isnan(high) and high < 0.5),
    }


def score_table(judgments: pd.DataFrame, langs: Sequence[str] = ()) -> pd.DataFrame:
    """One row per language (those in ``langs`` even when nothing was judged yet)."""
    names = list(dict.fromkeys([*langs, *judgments["lang"].tolist()]))
    rows = [score_language(lang, judgments[judgments["lang"] == lang]) for lang in names]
    return pd.DataFrame.from_records(rows, columns=SCORE_COLUMNS)


def _fmt(value: float, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def markdown_scores(table: pd.DataFrame) -> str:
    lines = [
        "| lang | judged | win | tie | both bad | loss | win rate (decisive) | 95 % CI (Wilson) | sign test p "
        "| kappa (rows) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples():
        lines.append(
            f"| {r.lang} | {r.judged_rows} | {r.wins} | {r.ties} | {r.both_bad} | {r.losses} | {_fmt(r.win_rate)} "
            f"| [{_fmt(r.ci_low)}, {_fmt(r.ci_high)}] | {_fmt(r.sign_test_p)} | {_fmt(r.kappa)} ({r.kappa_rows}) |"
        )
    return "\n".join(lines)


def scores_plot_png(table: pd.DataFrame, title: str) -> bytes:
    """Stacked shares of win / tie / both bad / loss per language, the win rate's interval on top."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    langs = table["lang"].tolist()
    left = [0.0] * len(langs)
    colours = {"wins": "#2E7D32", "ties": "#9E9E9E", "both_bad": "#6D4C41", "losses": "#C62828"}
    totals = [max(int(t), 1) for t in table["judged_rows"]]
    for column, colour in colours.items():
        shares = [v / t for v, t in zip(table[column], totals, strict=True)]
        ax.barh(langs, shares, left=left, color=colour, label=column.replace("_", " "))
        left = [a + b for a, b in zip(left, shares, strict=True)]
    for y, r in enumerate(table.itertuples()):
        if not math.isnan(r.win_rate):
            ax.errorbar(r.win_rate, y, xerr=[[r.win_rate - r.ci_low], [r.ci_high - r.win_rate]], fmt="o",
                        color="black", capsize=4)  # fmt: skip
    ax.axvline(0.5, color="black", linewidth=0.6, linestyle=":")
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of judged rows; dot: win rate among decisive rows, 95 % CI")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="lower right", ncol=4)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()
