"""The sheet route end to end through ``materialize`` on the tiny model: a partition with a trained adapter
yields a blind sheet, re-materialising makes no model call and keeps every side, a returned sheet with
verdicts of two reviewers gives the win/tie/loss table with its interval and kappa; a hostile sheet is
rejected as a whole and stores nothing."""

# No "from __future__ import annotations": Dagster reads the stand-in asset's annotations.

from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetExecutionContext, DagsterExecutionStepExecutionError, asset, materialize

from instruct_global.assets.export import sft_dataset
from instruct_global.assets.human_eval import human_eval_scores, human_eval_sheet
from instruct_global.assets.train import finetuned_model
from instruct_global.lib.evaluate.human_eval import SHEET_COLUMNS, VerdictStore, write_eval_sheet
from instruct_global.lib.evaluate.human_eval_stats import wilson_interval
from instruct_global.lib.translate.review_sheet import ReviewSheetError, read_returned_sheet
from instruct_global.partitions import language_partitions
from instruct_global.resources.call_cache import CallCacheResource
from instruct_global.resources.finetuning import HuggingFaceHubResource, OpenAIFineTuningResource
from instruct_global.resources.llm_openai import OpenAICompatibleLLM
from instruct_global.resources.parquet_io import PartitionedParquetIOManager
from instruct_global_tests.fixtures.instruction_rows import contract_rows
from instruct_global_tests.fixtures.tiny_causal_lm import build_tiny_causal_lm


@asset(partitions_def=language_partitions, group_name="curate")
def instruction_dataset(context: AssetExecutionContext) -> pd.DataFrame:
    """Stand-in for the curate stage's asset: the same name, partitions and columns."""
    return contract_rows(40, context.partition_key)


def _resources(tmp_path: Path) -> dict:
    cache = CallCacheResource(url=str(tmp_path / "calls.sqlite"))
    return {
        "io_manager": PartitionedParquetIOManager(),
        "call_cache": cache,
        "hub": HuggingFaceHubResource(),
        "openai_finetuning": OpenAIFineTuningResource(),
        # only a hosted fine-tune asks the LLM resource; nothing listens here, so a call would fail
        "llm": OpenAICompatibleLLM(model="unused", cache=cache, base_url="http://127.0.0.1:9/v1"),
    }


def _config(tiny_lm: Path, bank: Path) -> dict:
    return {
        "ops": {
            "sft_dataset": {"config": {"validation_share": 0.15, "test_share": 0.15}},
            "finetuned_model": {
                "config": {"base_model": str(tiny_lm), "r": 8, "max_steps": 4, "save_steps": 4,
                           "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1,
                           "max_length": 256, "learning_rate": 5e-3}
            },
            "human_eval_sheet": {"config": {"question_bank": str(bank), "max_new_tokens": 16}},
        }
    }


def _sheet_only(tiny_lm: Path, bank: Path) -> dict:
    return {"ops": {"human_eval_sheet": _config(tiny_lm, bank)["ops"]["human_eval_sheet"]}}


def _sheet_event(result):
    return result.asset_materializations_for_node("human_eval_sheet")[0].metadata


@pytest.mark.slow
def test_blind_sheet_round_trip_to_the_score_table(tmp_path: Path, data_dir: Path) -> None:
    tiny_lm = build_tiny_causal_lm(tmp_path / "tiny_lm")
    bank = tmp_path / "bank.csv"
    bank.write_text("id,prompt\nq1,Kí ni orúkọ rẹ?\nq2,=1+1 ni?\nq3,- ṣé o wà?\n", "utf-8")
    resources = _resources(tmp_path)
    assets = [instruction_dataset, sft_dataset, finetuned_model, human_eval_sheet, human_eval_scores]
    first = materialize(assets[:4], partition_key="yor", resources=resources, run_config=_config(tiny_lm, bank))
    assert first.success
    pairs = pd.read_parquet(data_dir / "human_eval_sheet" / "yor.parquet")
    exported = pd.read_parquet(data_dir / "sft_dataset" / "yor.parquet")
    n_test = int((exported["split"] == "test").sum())
    assert len(pairs) == n_test + 3 and (pairs["source"] == "question_bank").sum() == 3
    meta = _sheet_event(first)
    assert meta["answers_generated"].value == 2 * len(pairs)
    # the random tiny model writes junk (4 LoRA steps do not change its greedy argmax), but never empty
    assert pairs["base_answer"].str.len().gt(0).all() and pairs["finetuned_answer"].str.len().gt(0).all()

    # the sheet is blind: no side, no model name; A/B are the pairs' texts in the shuffled order
    outbox = data_dir / "human_eval" / "outbox"
    sheet = read_returned_sheet(outbox / "yor.csv")
    assert list(sheet.columns) == SHEET_COLUMNS and len(sheet) == len(pairs)
    assert not sheet.apply(lambda c: c.str.contains("finetuned|adapter|tiny_lm")).any().any()
    assert 0 < pairs["finetuned_is_a"].sum() < len(pairs)
    by_id = pairs.set_index("id")
    for row in sheet.itertuples():
        tuned_first = by_id.loc[row.id, "finetuned_is_a"]
        assert row.answer_a.lstrip("'") == by_id.loc[row.id, "finetuned_answer" if tuned_first else "base_answer"].lstrip("'")
    assert read_returned_sheet(outbox / "yor.xlsx")["id"].tolist() == sheet["id"].tolist()

    # re-materialising: zero model calls, the same sides
    again = materialize(assets[:4], partition_key="yor", resources=resources, run_config=_sheet_only(tiny_lm, bank),
                        selection=["human_eval_sheet"])  # fmt: skip
    assert again.success and _sheet_event(again)["answers_generated"].value == 0
    pd.testing.assert_frame_equal(pd.read_parquet(data_dir / "human_eval_sheet" / "yor.parquet"), pairs)

    # two reviewers return the sheet: ada prefers fine-tuned on all but two rows, bo agrees on half
    tuned_side = {r.id: ("A" if r.finetuned_is_a else "B") for r in pairs.itertuples()}
    other = {"A": "B", "B": "A"}
    ada = sheet.copy()
    ada["verdict"] = [tuned_side[i] for i in ada["id"]]
    ada.loc[0, "verdict"], ada.loc[1, "verdict"] = other[tuned_side[ada.loc[0, "id"]]], "tie"
    ada["reviewer"] = "ada"
    bo = sheet.iloc[:4].copy()
    bo["verdict"] = [tuned_side[bo.iloc[0]["id"]], "tie", tuned_side[bo.iloc[2]["id"]], "both_bad"]
    bo["reviewer"], bo["note"] = "bo", "=IMPORTXML(\"http://evil\")"
    returned = data_dir / "human_eval" / "inbox" / "yor.csv"
    write_eval_sheet(pd.concat([ada, bo], ignore_index=True), returned, None)
    scored = materialize(assets, partition_key="yor", resources=resources,
                         run_config={"ops": {"human_eval_scores": {"config": {"returned_sheet": str(returned)}}}},
                         selection=["human_eval_scores"])  # fmt: skip
    assert scored.success and not returned.exists()  # applied and archived
    table = pd.read_parquet(data_dir / "human_eval_scores" / "yor.parquet")
    row = table.iloc[0]
    n = len(pairs)
    # row 0: ada loss, bo win -> tie; row 1: ada tie, bo tie; row 2: both win; row 3: ada win, bo both_bad -> tie
    assert (row.judged_rows, row.wins, row.losses, row.ties, row.both_bad) == (n, n - 3, 0, 3, 0)
    assert (row.ci_low, row.ci_high) == pytest.approx(wilson_interval(n - 3, n - 3))
    assert row.kappa_rows == 4 and row.reviewers == 2
    # ada: loss, tie, win, win; bo: win, tie, win, both_bad -> p_o 2/4, p_e (1*0 + 1*1 + 2*2 + 0*1)/16
    assert row.kappa == pytest.approx((0.5 - 5 / 16) / (1 - 5 / 16))
    note = VerdictStore(data_dir / "human_eval" / "store" / "yor.jsonl").load()[(bo.iloc[0]["id"], "bo")].note
    assert note == "=IMPORTXML(\"http://evil\")"
    check = scored.get_asset_check_evaluations()[0]
    assert check.passed and check.severity.value == "WARN"
    table_md = scored.asset_materializations_for_node("human_eval_scores")[0].metadata["table"].value
    print("\n" + table_md)
    assert (data_dir / "reports" / "yor" / "human_eval.png").read_bytes()[:4] == b"\x89PNG"

    # the next sheet leaves out the judged rows; verdicts survive a re-run of the sheet
    materialize(assets[:4], partition_key="yor", resources=resources, run_config=_sheet_only(tiny_lm, bank),
                selection=["human_eval_sheet"])  # fmt: skip
    assert len(read_returned_sheet(outbox / "yor.csv")) == 0

    # a hostile sheet (unknown id, bad verdict) is rejected as a whole, naming its rows
    hostile = sheet.iloc[:3].copy()
    hostile["reviewer"], hostile["verdict"] = "cy", "A"
    hostile.loc[0, "id"], hostile.loc[1, "verdict"] = "not-a-row", "maybe"
    write_eval_sheet(hostile, returned, None)
    with pytest.raises((DagsterExecutionStepExecutionError, ReviewSheetError)) as caught:
        materialize(assets, partition_key="yor", resources=resources, selection=["human_eval_scores"],
                    run_config={"ops": {"human_eval_scores": {"config": {"returned_sheet": str(returned)}}}})  # fmt: skip
    error = caught.value if isinstance(caught.value, ReviewSheetError) else caught.value.__cause__
    assert isinstance(error, ReviewSheetError)
    assert {(e.row_number, e.column) for e in error.errors} == {(2, "id"), (3, "verdict")}
    assert not [k for k in VerdictStore(data_dir / "human_eval" / "store" / "yor.jsonl").load() if k[1] == "cy"]
