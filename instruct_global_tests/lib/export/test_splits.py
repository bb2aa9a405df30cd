"""Splits: fixed seed, shares close to the targets, and no near-duplicate or shared response across splits."""

from __future__ import annotations

import pandas as pd
import pytest

from instruct_global.lib.export.sft_dataset import build_export
from instruct_global.lib.export.splits import SplitConfig, assign_splits, leaking_pairs, near_duplicate_groups
from instruct_global_tests.fixtures.instruction_rows import contract_rows


def test_paraphrases_and_equal_responses_share_a_group() -> None:
    texts = [
        "the cat sat on the mat near the door today",
        "the cat sat on the mat near the door now",
        "a completely different sentence about rivers and fish",
        "another question entirely here please",
    ]
    responses = ["yes", "no", "same answer", "same  Answer"]
    groups = near_duplicate_groups(texts, responses, SplitConfig(near_duplicate_threshold=0.6))
    assert groups[0] == groups[1]
    assert groups[2] == groups[3]  # equal responses (whitespace and case aside)
    assert groups[0] != groups[2]


def test_no_leak_across_splits_even_with_many_near_duplicates() -> None:
    rows = contract_rows(200, seed=3)
    result = build_export(rows, split_config=SplitConfig(validation_share=0.2, test_share=0.2))
    frame = result.frame
    texts = (frame["instruction"] + " " + frame["input"] + "\n" + frame["output"]).tolist()
    assert not leaking_pairs(texts, frame["split"].tolist(), SplitConfig())
    for response, splits in frame.groupby("output")["split"]:
        assert splits.nunique() == 1, response
    counts = frame["split"].value_counts()
    assert abs(counts["test"] - 40) <= 4 and abs(counts["validation"] - 40) <= 4
    assert result.largest_group >= 2  # the fixture's paraphrases were grouped


def test_splits_are_fixed_by_the_seed_whatever_the_row_order() -> None:
    rows = contract_rows(60, seed=1)
    first = build_export(rows).frame.set_index("id")["split"]
    shuffled = build_export(rows.sample(frac=1.0, random_state=7)).frame.set_index("id")["split"]
    assert first.sort_index().equals(shuffled.sort_index())
    other_seed = build_export(rows, split_config=SplitConfig(seed=99)).frame.set_index("id")["split"]
    assert not first.sort_index().equals(other_seed.sort_index())


def test_groups_stay_whole() -> None:
    ids = [f"id{i:02d}" for i in range(10)]
    groups = [0, 0, 0, 0, 0, 5, 6, 7, 8, 9]
    splits = assign_splits(ids, groups, SplitConfig(validation_share=0.1, test_share=0.1, seed=0))
    assert len(set(splits[:5])) == 1


@pytest.mark.parametrize("shares", [(0.6, 0.5), (-0.1, 0.1), (0.1, 1.0)])
def test_bad_shares_are_refused(shares: tuple[float, float]) -> None:
    with pytest.raises(ValueError, match="share"):
        SplitConfig(validation_share=shares[0], test_share=shares[1])


def test_a_row_without_output_is_named() -> None:
    rows = contract_rows(12)
    rows.loc[4, "output"] = "  "
    with pytest.raises(ValueError, match=r"row 4 .*'output'"):
        build_export(rows)


def test_missing_columns_are_named() -> None:
    with pytest.raises(ValueError, match="missing columns"):
        build_export(pd.DataFrame({"id": ["a"], "instruction": ["x"]}))


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_a_tiny_dataset_always_trains_on_something(n: int) -> None:
    config = SplitConfig(validation_share=0.25, test_share=0.25)
    splits = assign_splits([f"id{i}" for i in range(n)], list(range(n)), config)
    assert splits.count("train") >= 1
    if n >= 3:  # then validation and test get a row too
        assert {"validation", "test"} <= set(splits)
