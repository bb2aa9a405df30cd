"""TruthfulQA loaders (original CSV and a hub-layout folder), translation with drops, letter choice,
and the base-against-fine-tuned comparison."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from instruct_global.lib.evaluate.compare import comparison_plot_png, comparison_table, markdown_table
from instruct_global.lib.evaluate.fewshot import FEWSHOT_QA
from instruct_global.lib.evaluate.letter_choice import letter_question, parse_letter, shuffled_order
from instruct_global.lib.evaluate.scoring_runs import letter_truthfulqa
from instruct_global.lib.evaluate.translate_benchmark import translate_truthfulqa
from instruct_global.lib.evaluate.truthfulqa import (
    TruthfulQAFormatError,
    load_truthfulqa_csv,
    load_truthfulqa_hf,
)
from instruct_global_tests.fixtures.truthfulqa_files import write_truthfulqa_csv, write_truthfulqa_hf_folder


def test_csv_and_hub_layouts_give_the_same_questions(tmp_path: Path) -> None:
    from_csv = load_truthfulqa_csv(write_truthfulqa_csv(tmp_path / "TruthfulQA.csv"))
    from_hf = load_truthfulqa_hf(
        str(write_truthfulqa_hf_folder(tmp_path / "truthful_qa")), "multiple_choice", "validation"
    )
    assert len(from_csv) == 4
    assert from_csv.equals(from_hf)
    first = from_csv.iloc[0]
    assert json.loads(first["mc1_choices"])[0] == "The watermelon seeds pass through your digestive system"
    assert json.loads(first["mc1_labels"]) == [1, 0, 0, 0]
    assert json.loads(first["mc2_labels"]) == [1, 1, 1, 0, 0, 0]
    # best answer not among the correct ones: added first
    second = from_csv.iloc[1]
    assert json.loads(second["mc2_choices"])[0] == "The precise origin of fortune cookies is unclear"


def test_csv_errors_name_file_line_and_field(tmp_path: Path) -> None:
    path = write_truthfulqa_csv(tmp_path / "t.csv")
    lines = path.read_text("utf-8").splitlines()
    lines[2] = lines[2].replace("Where did fortune cookies originate?", "")
    path.write_text("\n".join(lines) + "\n", "utf-8")
    with pytest.raises(TruthfulQAFormatError, match=r"t.csv line 3: empty 'Question'"):
        load_truthfulqa_csv(path)
    (tmp_path / "bad.csv").write_text("Question,Answer\nq,a\n")
    with pytest.raises(TruthfulQAFormatError, match="missing columns"):
        load_truthfulqa_csv(tmp_path / "bad.csv")


def _fake_translate(texts: list[str]) -> list[str | None]:
    return [None if "knuckles" in t else f"[yo] {t}" for t in texts]


def _check(source: str, output: str | None) -> list[str]:
    return ["empty"] if not output else []


def test_translation_keeps_labels_drops_failures_and_translates_shots(tmp_path: Path) -> None:
    questions = load_truthfulqa_csv(write_truthfulqa_csv(tmp_path / "t.csv"))
    out = translate_truthfulqa(questions, FEWSHOT_QA, _fake_translate, _check)
    assert len(out.rows) == 3 and out.reasons == Counter({"empty": 1})
    assert out.rejects["reason"].tolist() == ["mc1:empty"]
    row = out.rows.iloc[0]
    assert json.loads(row["mc2_choices"]) == [f"[yo] {c}" for c in json.loads(row["mc2_choices_en"])]
    assert row["mc2_labels"] == questions.iloc[0]["mc2_labels"]
    assert all(q.startswith("[yo] ") and a.startswith("[yo] ") for q, a in out.fewshot)
    english = translate_truthfulqa(questions, FEWSHOT_QA, _fake_translate, _check, translate_fewshot=False)
    assert english.fewshot == list(FEWSHOT_QA)


def test_letter_prompt_shuffles_by_seed_and_tracks_the_gold() -> None:
    choices = ["best", "wrong one", "wrong two", "wrong three"]
    golds = {letter_question(f"q{i}", "Q?", choices, "Yoruba", seed=1)[1] for i in range(30)}
    assert len(golds) > 1  # the best answer is not always "A"
    prompt, gold = letter_question("q7", "Kí ni?", choices, "Yoruba", seed=1)
    assert prompt == letter_question("q7", "Kí ni?", choices, "Yoruba", seed=1)[0]  # same seed, same prompt
    assert f"{'ABCD'[gold]}. best" in prompt
    assert shuffled_order("q7", 4, 1) != shuffled_order("q7", 4, 2) or shuffled_order(
        "q8", 4, 1
    ) != shuffled_order("q8", 4, 2)


@pytest.mark.parametrize(
    ("answer", "n", "expected"),
    [
        ("B", 4, 1),
        ("B.", 4, 1),
        ("The answer is C", 4, 2),
        ("(D) because", 4, 3),
        ("E", 4, None),
        ("", 4, None),
        (None, 4, None),
        ("Àwọn", 4, None),
        ("answer: a", 4, None),
        ("A) yes\nB) no", 2, 0),
    ],
)
def test_parse_letter(answer: str | None, n: int, expected: int | None) -> None:
    assert parse_letter(answer, n) == expected


def test_letter_run_counts_unparsable_and_failed(tmp_path: Path) -> None:
    questions = load_truthfulqa_csv(write_truthfulqa_csv(tmp_path / "t.csv"))
    answers = iter(["no letter here", None, "A", "B"])
    run = letter_truthfulqa(lambda prompts: [next(answers) for _ in prompts], questions, "Yoruba", seed=3)
    assert run.unparsable == 1 and run.errors["call_failed"] == 1 and run.answered == 3


def test_comparison_table_and_plot() -> None:
    table = comparison_table(
        {"truthfulqa_mc2": 0.5, "heldout_loss": 2.0, "truthfulqa_mc1": 0.25},
        {"truthfulqa_mc2": 0.6, "heldout_loss": 2.5, "truthfulqa_mc1": 0.25 + 1e-9},
        {},
    )
    rows = table.set_index("measure")
    assert rows["finetuned_worse"].to_dict() == {
        "truthfulqa_mc1": False,
        "truthfulqa_mc2": False,
        "heldout_loss": True,
    }
    assert (
        rows.loc["truthfulqa_mc2", "finetuned_better"] and not rows.loc["truthfulqa_mc1", "finetuned_better"]
    )
    assert "| heldout_loss | 2.0000 | 2.5000 | +0.5000 | worse |" in markdown_table(table)
    assert comparison_plot_png(table, "t").startswith(b"\x89PNG")
