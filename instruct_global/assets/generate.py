"""English instruction generation: skeleton templates per source dataset, and self-instruct."""
# No "from __future__ import annotations": Dagster reads these annotations at definition time.

import os
from pathlib import Path

import pandas as pd
from dagster import AssetExecutionContext, AssetIn, AssetOut, Config, MetadataValue, Output, multi_asset
from pydantic import Field

from instruct_global.assets.common import (
    call_metadata,
    call_snapshot,
    drop_metadata,
    fail_if_every_call_failed,
    outside_service_retry,
    rejects_metadata,
    require_ready,
)
from instruct_global.frames import EnglishInstructionsFrame, RejectsFrame
from instruct_global.lib.common.categories import DEFAULT_MIX, normalise_mix
from instruct_global.lib.common.plots import category_mix_markdown, histogram_markdown
from instruct_global.lib.common.report import markdown_counts, markdown_preview
from instruct_global.lib.generate.self_instruct import FilterConfig, load_seed_tasks
from instruct_global.lib.generate.self_instruct_loop import SelfInstructSettings, run_self_instruct
from instruct_global.lib.generate.skeleton_generation import dataset_quotas, dataset_specs, generate_skeletons
from instruct_global.partitions import language_partitions, partition_language
from instruct_global.resources.llm import LLMResource
from instruct_global.resources.selection import llm_pool

PREVIEW_COLUMNS = ["category", "instruction_en", "input_en", "output_en"]


class SkeletonConfig(Config):
    dataset_size: int = Field(default=100, ge=0, description="Filled instructions wanted in all (quotas apply to it)")
    category_mix: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_MIX), description="Category → share; normalised to sum to 1"
    )
    templates_per_dataset: int = Field(default=5, ge=1, description="Templates per dataset (at most its quota)")
    max_attempts: int = Field(default=3, ge=1, description="Regeneration rounds for rejected templates")
    temperature: float = 0.7
    json_mode: bool = Field(default=False, description="Ask for response_format json_object (OpenAI-style backends)")
    json_schema: bool | None = Field(
        default=None, description="Ask for the exact JSON schema of the answer; None: where the backend enforces "
        "schemas while decoding (llama.cpp)")


class SelfInstructConfig(Config):
    target_count: int = Field(default=100, ge=0, description="Novel instructions to keep")
    seed_tasks_path: str = Field(default="data/seed_tasks/seed_tasks.jsonl", description="self-instruct JSONL")
    category_mix: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_MIX))
    enforce_category_quotas: bool = True
    tasks_per_prompt: int = Field(default=8, ge=1)
    prompts_per_round: int = Field(default=8, ge=1, description="Prompts sent together (concurrently)")
    n_seed_examples: int = Field(default=6, ge=0)
    n_machine_examples: int = Field(default=2, ge=0)
    rouge_threshold: float = Field(default=0.7, gt=0, le=1)
    max_rounds: int = Field(default=50, ge=1)
    max_stalled_rounds: int = Field(default=3, ge=0, description="Stop after this many rounds keep nothing (0: never)")
    allow_programming: bool = False
    temperature: float = 1.0
    json_schema: bool | None = Field(
        default=None, description="Ask for JSON answers under a schema instead of numbered text; None: where the "
        "backend enforces schemas while decoding (llama.cpp)")


@multi_asset(
    outs={
        "skeleton_questions": AssetOut(group_name="generate", dagster_type=EnglishInstructionsFrame, description=(
            "English instruction templates with {variable_N} placeholders, per source dataset, with exact quotas.")),
        "skeleton_question_rejects": AssetOut(group_name="generate", dagster_type=RejectsFrame,
                                              description="Templates rejected, with reason."),
    },
    ins={"source_records": AssetIn()},
    partitions_def=language_partitions,
    # Dagster needs pools when definitions load, so the backend choice (not a secret) is read then
    pool=llm_pool(os.environ),
    retry_policy=outside_service_retry(),
)
def skeleton_questions(
    context: AssetExecutionContext, config: SkeletonConfig, llm: LLMResource, source_records: pd.DataFrame
):
    require_ready(llm)  # fails in seconds, naming what is missing, before anything loads or pays
    before = call_snapshot(llm)
    lang = partition_language(context.partition_key)
    specs = dataset_specs(source_records)
    quotas = dataset_quotas(specs, normalise_mix(config.category_mix), config.dataset_size)
    result = generate_skeletons(
        specs, quotas, lang, llm.complete, templates_per_dataset=config.templates_per_dataset,
        max_attempts=config.max_attempts, temperature=config.temperature, json_mode=config.json_mode,
        json_schema=llm.enforces_json_schema if config.json_schema is None else config.json_schema,
    )
    if result.shortfall:
        context.log.warning(f"datasets short of templates after {config.max_attempts} attempts: {result.shortfall}")
    fail_if_every_call_failed(llm, before, "skeleton_questions")
    templates = result.templates
    yield Output(templates, output_name="skeleton_questions", metadata={
        "templates": len(templates),
        "quota_per_dataset": MetadataValue.json(quotas),
        "templates_per_category": MetadataValue.md(category_mix_markdown(
            templates["category"].value_counts().to_dict(),
            markdown_counts(templates["category"].value_counts().to_dict(), "category"))),
        "shortfall": MetadataValue.json(result.shortfall),
        "llm_requests": result.requests,
        "preview": MetadataValue.md(markdown_preview(templates, ["dataset", *PREVIEW_COLUMNS])),
        **drop_metadata(result.reasons),
        **call_metadata(llm.stats(), "llm"),
    })
    yield Output(result.rejects, output_name="skeleton_question_rejects",
                 metadata=rejects_metadata(result.rejects, ["dataset", "instruction_en"]))


@multi_asset(
    outs={
        "self_instruct_instructions": AssetOut(group_name="generate", dagster_type=EnglishInstructionsFrame,
                                               description=(
            "New English instructions bootstrapped from seed tasks; ROUGE-L < threshold against everything kept.")),
        "self_instruct_rejects": AssetOut(group_name="generate", dagster_type=RejectsFrame,
                                          description="Generated tasks dropped, with reason."),
    },
    partitions_def=language_partitions,
    pool=llm_pool(os.environ),
    retry_policy=outside_service_retry(),
)
def self_instruct_instructions(context: AssetExecutionContext, config: SelfInstructConfig, llm: LLMResource):
    require_ready(llm)
    before = call_snapshot(llm)
    lang = partition_language(context.partition_key)
    seeds = load_seed_tasks(Path(config.seed_tasks_path))
    settings = SelfInstructSettings(
        target_count=config.target_count, tasks_per_prompt=config.tasks_per_prompt,
        prompts_per_round=config.prompts_per_round, n_seed_examples=config.n_seed_examples,
        n_machine_examples=config.n_machine_examples, rouge_threshold=config.rouge_threshold,
        enforce_category_quotas=config.enforce_category_quotas, max_rounds=config.max_rounds,
        max_stalled_rounds=config.max_stalled_rounds,
        temperature=config.temperature, filters=FilterConfig(allow_programming=config.allow_programming),
        json_schema=llm.enforces_json_schema if config.json_schema is None else config.json_schema,
    )
    result = run_self_instruct(seeds, lang, llm.complete, settings, normalise_mix(config.category_mix))
    fail_if_every_call_failed(llm, before, "self_instruct_instructions")
    kept = result.instructions
    if len(kept) < config.target_count:
        context.log.warning(
            f"kept {len(kept)} of {config.target_count} after {result.rounds} rounds ({result.stop_reason})")
    exact_from = min(settings.exact_score_above, config.rouge_threshold)
    bins = sorted({0.0, exact_from, *(b / 10 for b in range(1, 11) if exact_from < b / 10 <= config.rouge_threshold)})
    yield Output(kept, output_name="self_instruct_instructions", metadata={
        "kept": len(kept),
        "seen": result.seen,
        "kept_ratio": round(len(kept) / result.seen, 4) if result.seen else 0.0,
        "rounds": result.rounds,
        "stop_reason": result.stop_reason,
        "llm_requests": result.requests,
        "seed_tasks": len(seeds),
        "category_distribution": MetadataValue.md(
            category_mix_markdown(kept["category"].value_counts().to_dict(),
                                  markdown_counts(kept["category"].value_counts().to_dict(), "category"))),
        "category_quotas": MetadataValue.json(result.quotas),
        "max_rouge_l_histogram": MetadataValue.md(histogram_markdown(
            kept["max_rouge_l"], bins, f"highest ROUGE-L vs seeds and kept (exact ≥ {exact_from:g})")),
        "preview": MetadataValue.md(markdown_preview(kept, PREVIEW_COLUMNS)),
        **drop_metadata(result.reasons),
        **call_metadata(llm.stats(), "llm"),
    })
    yield Output(result.rejects, output_name="self_instruct_rejects",
                 metadata=rejects_metadata(result.rejects, ["category", "instruction_en"]))
