"""skeleton_questions and self_instruct_instructions through the real OpenAI client and local server."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from dagster import materialize
from rouge_score import rouge_scorer

from instruct_global.assets.corpus import source_records
from instruct_global.assets.generate import self_instruct_instructions, skeleton_questions
from instruct_global.lib.common.categories import DEFAULT_MIX, exact_quotas
from instruct_global.lib.common.placeholders import expected_names, find_placeholders
from instruct_global.lib.generate.self_instruct import load_seed_tasks
from instruct_global.resources.parquet_io import PartitionedParquetIOManager
from instruct_global_tests.conftest import REPO_ROOT
from instruct_global_tests.fixtures.llm_testing import openai_llm
from instruct_global_tests.fixtures.openai_server import OpenAIServer
from instruct_global_tests.fixtures.scripted_llm import GenerationResponder

SCHEMA = REPO_ROOT / "data" / "schema" / "yor" / "input_schema.csv"
SEEDS = REPO_ROOT / "data" / "seed_tasks" / "seed_tasks.jsonl"


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as srv:
        srv.responder = GenerationResponder(seed=1)
        yield srv


def _materialize(assets, tmp_path: Path, server: OpenAIServer, run_config: dict):
    return materialize(
        assets,
        partition_key="yor",
        resources={
            "io_manager": PartitionedParquetIOManager(data_dir=str(tmp_path / "data")),
            "llm": openai_llm(server, tmp_path / "calls.sqlite"),
        },
        run_config={"ops": run_config},
    )


def _read(tmp_path: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(tmp_path / "data" / name / "yor.parquet")


def test_skeleton_questions_use_exactly_their_dataset_placeholders(server: OpenAIServer, tmp_path: Path) -> None:
    config = {
        "source_records": {"config": {"schema_csv": str(SCHEMA)}},
        "skeleton_questions": {"config": {"dataset_size": 40, "templates_per_dataset": 4}},
    }
    result = _materialize([source_records, skeleton_questions], tmp_path, server, config)
    assert result.success
    templates = _read(tmp_path, "skeleton_questions")
    records = _read(tmp_path, "source_records")

    # quotas: exact over the categories the datasets cover, summing to the requested size
    quotas = templates.groupby("dataset")["quota"].first()
    assert quotas.sum() == 40
    covered = set(records["category"])
    expected = exact_quotas({c: DEFAULT_MIX[c] / sum(DEFAULT_MIX[c] for c in covered) for c in covered}, 40)
    by_category = templates.groupby("category")["quota"].first().to_dict()
    assert by_category == {c: q for c, q in expected.items() if q}

    for dataset, rows in templates.groupby("dataset"):
        n_vars = int(records.loc[records["dataset"] == dataset, "num_variables"].iloc[0])
        assert len(rows) == min(4, quotas[dataset])
        for _, row in rows.iterrows():
            used = set(find_placeholders(" ".join([row.instruction_en, row.input_en, row.output_en])))
            assert used == expected_names(n_vars)
        assert rows["instruction_id"].is_unique

    rejects = _read(tmp_path, "skeleton_question_rejects")
    assert rejects["reason"].str.startswith("invented_placeholder").any()
    assert rejects["reason"].str.startswith("missing_placeholder").any()
    prompts = [json.dumps(body, ensure_ascii=False) for route, body in server.requests if route == "chat"]
    assert prompts and all("Yoruba" in prompt for prompt in prompts)

    # a re-run is free: every request is answered by the call cache
    calls = server.counts["chat"]
    assert _materialize([source_records, skeleton_questions], tmp_path, server, config).success
    assert server.counts["chat"] == calls
    pd.testing.assert_frame_equal(_read(tmp_path, "skeleton_questions"), templates)


def test_self_instruct_keeps_novel_instructions_to_the_exact_quota(server: OpenAIServer, tmp_path: Path) -> None:
    config = {"self_instruct_instructions": {"config": {
        "target_count": 40, "seed_tasks_path": str(SEEDS), "prompts_per_round": 4, "tasks_per_prompt": 6,
    }}}
    result = _materialize([self_instruct_instructions], tmp_path, server, config)
    assert result.success
    kept = _read(tmp_path, "self_instruct_instructions")
    assert len(kept) == 40
    assert kept["category"].value_counts().to_dict() == {c: q for c, q in exact_quotas(DEFAULT_MIX, 40).items() if q}

    # novelty exactly as rouge-score decides it, against the seeds and every earlier kept instruction
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    seeds = [s.instruction for s in load_seed_tasks(SEEDS)]
    instructions = kept["instruction_en"].tolist()
    for index, text in enumerate(instructions):
        for other in itertools.chain(seeds, instructions[:index]):
            assert scorer.score(other, text)["rougeL"].fmeasure <= 0.7
    assert (kept["max_rouge_l"] <= 0.7).all()

    rejects = _read(tmp_path, "self_instruct_rejects")
    reasons = set(rejects["reason"].str.split(":").str[0])
    assert "rouge_l_above_threshold" in reasons
    meta = result.asset_materializations_for_node("self_instruct_instructions")[0].metadata
    assert meta["dropped/truncated"].value > 0 and meta["dropped/malformed"].value > 0
    assert meta["llm/calls"].value == server.counts["chat"]

    calls = server.counts["chat"]
    assert _materialize([self_instruct_instructions], tmp_path, server, config).success
    assert server.counts["chat"] == calls
    pd.testing.assert_frame_equal(_read(tmp_path, "self_instruct_instructions"), kept)


def test_a_language_without_datasets_gets_an_empty_skeleton_frame(server: OpenAIServer, tmp_path: Path) -> None:
    # no input schema for the partition: source_records is empty, and so (not broken) is skeleton_questions
    config = {"source_records": {"config": {"schema_csv": str(tmp_path / "missing" / "input_schema.csv")}}}
    assert _materialize([source_records, skeleton_questions], tmp_path, server, config).success
    templates = _read(tmp_path, "skeleton_questions")
    assert templates.empty and templates["max_rouge_l"].dtype == "float64"
    assert server.counts["chat"] == 0


def test_self_instruct_with_a_target_of_zero_asks_nothing(server: OpenAIServer, tmp_path: Path) -> None:
    config = {"self_instruct_instructions": {"config": {"target_count": 0, "seed_tasks_path": str(SEEDS)}}}
    assert _materialize([self_instruct_instructions], tmp_path, server, config).success
    assert _read(tmp_path, "self_instruct_instructions").empty
    assert server.counts["chat"] == 0
