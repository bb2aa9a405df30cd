"""The blind evaluation sheet: stable shuffle, nothing in the sheet that tells the sides, CSV/XLSX round
trip with formulas neutralised, hostile returned sheets rejected row by row, the question bank."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from instruct_global.lib.evaluate.human_eval import (
    SHEET_COLUMNS,
    EvalItem,
    QuestionBankError,
    VerdictStore,
    blind_sheet,
    build_pairs,
    eval_items_from_sft,
    finetuned_is_a,
    load_question_bank,
    neutralise_formula,
    restore_formula,
    unblind,
    validate_eval_sheet,
    write_eval_sheet,
)
from instruct_global.lib.translate.review_sheet import ReviewSheetError, read_returned_sheet


def _items(n: int = 12) -> list[EvalItem]:
    prompts = [f"Ìbéèrè {i}" for i in range(n)] + ["=HYPERLINK(\"http://x\",\"click\")", "-5 + 3?", "@user hi"]
    return [EvalItem(f"row-{i:02d}", "yor", "question_bank", p, ({"role": "user", "content": p},))
            for i, p in enumerate(prompts)]  # fmt: skip


def _pairs(seed: int = 15) -> pd.DataFrame:
    items = _items()
    return build_pairs(items, [f"base says {i}" for i in range(len(items))],
                       [f"tuned says {i}" for i in range(len(items))], seed)  # fmt: skip


def test_shuffle_is_stable_seeded_and_mixed() -> None:
    pairs, again = _pairs(), _pairs()
    pd.testing.assert_frame_equal(pairs, again)
    sides = pairs["finetuned_is_a"].tolist()
    assert 0 < sum(sides) < len(sides)  # both orders occur
    assert sides != _pairs(seed=16)["finetuned_is_a"].tolist()
    assert finetuned_is_a("row-03", 15) == finetuned_is_a("row-03", 15)
    # adding a row leaves every other row's side unchanged (the side depends on the row id only)
    more = build_pairs([*_items(), EvalItem("row-99", "yor", "x", "p", ())], ["b"] * 16, ["t"] * 16, 15)
    assert more["finetuned_is_a"].tolist()[:15] == sides


def test_sheet_alone_does_not_reveal_the_side(tmp_path: Path) -> None:
    pairs = _pairs()
    sheet = blind_sheet(pairs)
    assert list(sheet.columns) == SHEET_COLUMNS
    assert not {"finetuned_is_a", "base_answer", "finetuned_answer", "messages"} & set(sheet.columns)
    write_eval_sheet(sheet, tmp_path / "s.csv", tmp_path / "s.xlsx")
    for path in (tmp_path / "s.csv", tmp_path / "s.xlsx"):
        back = read_returned_sheet(path)
        assert list(back.columns) == SHEET_COLUMNS
        text = back.to_csv()
        assert "finetuned" not in text and "base_model" not in text
        # the sheet order is by id, so the row order says nothing about the side either
        assert back["id"].tolist() == sorted(back["id"])


def test_formulas_are_neutralised_and_restored(tmp_path: Path) -> None:
    for text in ("=1+1", "+x", "-y", "@z", "'=quoted", "plain", "'plain"):
        assert restore_formula(neutralise_formula(text)) == text
    pairs = _pairs()
    write_eval_sheet(blind_sheet(pairs), tmp_path / "s.csv", tmp_path / "s.xlsx")
    raw_csv = (tmp_path / "s.csv").read_text("utf-8-sig")
    assert "'=HYPERLINK" in raw_csv and ",=HYPERLINK" not in raw_csv and ",-5 + 3?" not in raw_csv
    from openpyxl import load_workbook

    cells = [c for row in load_workbook(tmp_path / "s.xlsx").active.iter_rows() for c in row]
    formula_like = [c for c in cells if isinstance(c.value, str) and c.value.startswith(("=", "-"))]
    # stored as text with Excel's quote prefix: shown as written, never run
    assert formula_like and all(c.data_type == "s" and c.quotePrefix for c in formula_like)
    # the prompt comes back as written: a sheet returned untouched validates
    back = read_returned_sheet(tmp_path / "s.csv")
    assert validate_eval_sheet(back, pairs).verdicts == []


def _returned(tmp_path: Path, pairs: pd.DataFrame, fill) -> pd.DataFrame:
    sheet = blind_sheet(pairs)
    fill(sheet)
    write_eval_sheet(sheet, tmp_path / "r.csv", None)
    return read_returned_sheet(tmp_path / "r.csv")


def test_verdicts_unblind_to_the_right_model(tmp_path: Path) -> None:
    pairs = _pairs()
    tuned_side = {r.id: ("A" if r.finetuned_is_a else "B") for r in pairs.itertuples()}

    def fill(sheet: pd.DataFrame) -> None:
        sheet["verdict"] = [tuned_side[i] for i in sheet["id"]]  # the reviewer always prefers fine-tuned
        sheet.loc[0, "verdict"] = "both bad"
        sheet.loc[1, "verdict"] = "TIE"
        sheet["reviewer"] = "ada"
        sheet.loc[2, "note"] = "=SUM(A1:A9) is how I'd put it"

    validation = validate_eval_sheet(_returned(tmp_path, pairs, fill), pairs)
    store = VerdictStore(tmp_path / "store.jsonl")
    assert store.save(validation.verdicts) == len(pairs)
    stored = store.load()
    assert stored[("row-02", "ada")].note == "=SUM(A1:A9) is how I'd put it"  # restored on read back
    judgments, stale = unblind(stored.values(), pairs)
    counts = judgments["outcome"].value_counts().to_dict()
    assert counts == {"win": len(pairs) - 2, "both_bad": 1, "tie": 1} and stale == 0
    # answers regenerated for one row: its verdict no longer applies
    changed = pairs.copy()
    changed.loc[changed["id"] == "row-05", "pair_hash"] = "0" * 16
    assert unblind(stored.values(), changed)[1] == 1


def test_hostile_sheet_is_rejected_row_by_row(tmp_path: Path) -> None:
    pairs = _pairs()

    def fill(sheet: pd.DataFrame) -> None:
        sheet["reviewer"] = "ada"
        sheet["verdict"] = "A"
        sheet.loc[0, "id"] = "made-up-id"
        sheet.loc[1, "verdict"] = "C"
        sheet.loc[2, "answer_a"] = "I rewrote this answer"
        sheet.loc[3, "reviewer"] = ""
        sheet.loc[4, "pair_hash"] = "deadbeefdeadbeef"
        sheet.loc[5, "answer_b"] = "=cmd|' /C calc'!A0"

    with pytest.raises(ReviewSheetError) as caught:
        validate_eval_sheet(_returned(tmp_path, pairs, fill), pairs, sheet_name="r.csv")
    found = {(e.row_number, e.column) for e in caught.value.errors}
    assert found == {(2, "id"), (3, "verdict"), (4, "answer_a"), (5, "reviewer"), (6, "pair_hash"), (7, "answer_b")}
    message = str(caught.value)
    assert "r.csv rejected" in message and "row 3" in message and "'C'" in message


def test_duplicate_judgment_by_one_reviewer_and_missing_columns(tmp_path: Path) -> None:
    pairs = _pairs()
    sheet = blind_sheet(pairs).assign(verdict="B", reviewer="ada")
    doubled = pd.concat([sheet, sheet.iloc[[0]]], ignore_index=True)
    with pytest.raises(ReviewSheetError, match=r"row 17, id row-00, column id: judged twice by 'ada', also on row 2"):
        validate_eval_sheet(doubled.astype(str), pairs)
    with pytest.raises(ReviewSheetError, match="column verdict: required column is missing"):
        validate_eval_sheet(sheet.drop(columns=["verdict"]).astype(str), pairs)


def test_question_bank_and_test_split(tmp_path: Path) -> None:
    bank = tmp_path / "bank.csv"
    bank.write_text("id,prompt,lang\nq1,Kí ni orúkọ rẹ?,yor\nq2,Habari gani?,swh\n,Báwo ni?,\n", "utf-8")
    items = load_question_bank(bank, "yor")
    assert [i.prompt for i in items] == ["Kí ni orúkọ rẹ?", "Báwo ni?"] and items[0].id == "bank-q1"
    bad = tmp_path / "bad.csv"
    bad.write_text("id,prompt\nq1,fine\nq2,\nq1,again\n", "utf-8")
    with pytest.raises(QuestionBankError) as caught:
        load_question_bank(bad, "yor")
    assert f"{bad}, row 3, column prompt" in str(caught.value) and "row 4, column id" in str(caught.value)
    with pytest.raises(QuestionBankError, match="row 1: no 'prompt' column"):
        (tmp_path / "h.csv").write_text("question\nx\n", "utf-8")
        load_question_bank(tmp_path / "h.csv", "yor")
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]
    sft = pd.DataFrame({"id": ["x", "y"], "split": ["test", "train"], "messages": [json.dumps(messages)] * 2})
    [item] = eval_items_from_sft(sft, "yor")
    assert item.prompt == "u" and [m["role"] for m in item.messages] == ["system", "user"]
