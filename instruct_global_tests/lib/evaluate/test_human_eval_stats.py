"""Wilson interval, sign test, Cohen's kappa and the per-language table against hand-computed values."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from instruct_global.lib.evaluate.human_eval_stats import (
    cohen_kappa,
    row_outcomes,
    score_table,
    sign_test_p,
    wilson_interval,
)


def test_wilson_interval_by_hand() -> None:
    # 8 of 10, z = 1.96: centre (0.8 + 1.9208/10) / 1.38415 = 0.71674, half 1.41600 * 0.160012 = 0.22658
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.49016, abs=1e-4) and high == pytest.approx(0.94332, abs=1e-4)
    assert wilson_interval(0, 5)[0] == 0.0 and wilson_interval(5, 5)[1] == pytest.approx(1.0)
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_sign_test_by_hand() -> None:
    # 8 wins, 2 losses: 2 * P(X >= 8 | n=10, p=0.5) = 2 * (45 + 10 + 1) / 1024
    assert sign_test_p(8, 2) == pytest.approx(112 / 1024)
    assert sign_test_p(5, 5) == pytest.approx(1.0)
    assert math.isnan(sign_test_p(0, 0))


def test_cohen_kappa_by_hand() -> None:
    # 50 items: yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> p_o 0.7, p_e 0.5*0.6 + 0.5*0.4 = 0.5, kappa 0.4
    first = ["yes"] * 25 + ["no"] * 25
    second = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(first, second) == pytest.approx(0.4)
    assert cohen_kappa(["win", "loss"], ["win", "loss"]) == pytest.approx(1.0)
    assert math.isnan(cohen_kappa(["tie", "tie"], ["tie", "tie"]))  # one label only: undefined


def _judgments(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["id", "reviewer", "outcome"]).assign(lang="yor")


def test_a_row_counts_once_and_disagreement_is_a_tie() -> None:
    judgments = _judgments([("r1", "ada", "win"), ("r1", "bo", "win"), ("r2", "ada", "win"), ("r2", "bo", "loss"),
                            ("r3", "ada", "loss"), ("r4", "ada", "both_bad")])  # fmt: skip
    assert row_outcomes(judgments).to_dict() == {"r1": "win", "r2": "tie", "r3": "loss", "r4": "both_bad"}
    row = score_table(judgments, ["yor"]).iloc[0]
    assert (row.judged_rows, row.judgments, row.wins, row.ties, row.both_bad, row.losses) == (4, 6, 1, 1, 1, 1)
    assert row.win_rate == 0.5 and row.kappa_rows == 2 and row.reviewers == 2
    # ada and bo share r1 (win/win) and r2 (win/loss): p_o 0.5, p_e (2*1 + 0*1)/4 = 0.5 -> kappa 0
    assert row.kappa == pytest.approx(0.0)


def test_significant_loss_is_flagged_and_an_empty_language_has_a_row() -> None:
    losing = _judgments([(f"r{i}", "ada", "loss") for i in range(12)] + [("w", "ada", "win")])
    table = score_table(losing, ["yor", "hau"])
    assert table["lang"].tolist() == ["yor", "hau"]
    assert bool(table.iloc[0].loses_significantly) and table.iloc[0].ci_high < 0.5
    assert table.iloc[1].judged_rows == 0 and not table.iloc[1].loses_significantly
