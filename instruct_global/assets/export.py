"""Export: chat JSONL, Alpaca JSON, Parquet and a Hugging Face datasets folder, split without leaks."""
# No "from __future__ import annotations": Dagster reads these annotations at definition time.

import json
from pathlib import Path

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    Config,
    MetadataValue,
    Output,
    asset,
)
from pydantic import Field

from instruct_global.frames import SFTDatasetFrame
from instruct_global.lib.common.plots import category_mix_markdown, histogram_markdown
from instruct_global.lib.common.pricing import fine_tuning_cost
from instruct_global.lib.common.report import markdown_counts, markdown_preview
from instruct_global.lib.common.tiktoken_offline import load_encoding
from instruct_global.lib.export.openai_checks import (
    DEFAULT_MAX_TOKENS_PER_EXAMPLE,
    MIN_EXAMPLES,
    check_chat_examples,
)
from instruct_global.lib.export.sft_dataset import build_export
from instruct_global.lib.export.splits import SPLITS, SplitConfig
from instruct_global.lib.export.writers import dataset_card, push_to_hub, write_all_formats
from instruct_global.partitions import language_partitions, partition_language
from instruct_global.resources.finetuning import HuggingFaceHubResource
from instruct_global.resources.parquet_io import resolve_data_dir

OPENAI_FORMAT_CHECK = "openai_chat_format"


class SFTExportConfig(Config):
    system_prompt: str = Field(default="", description="A system message for every example; empty: none")
    validation_share: float = 0.1
    test_share: float = 0.1
    seed: int = 42
    near_duplicate_threshold: float = Field(
        default=0.7, description="Word 3-shingle Jaccard that makes two rows one group"
    )
    max_tokens_per_example: int = DEFAULT_MAX_TOKENS_PER_EXAMPLE
    min_examples: int = MIN_EXAMPLES
    token_encoding: str = Field(
        default="cl100k_base", description="tiktoken encoding (the guide counts with cl100k_base)"
    )
    cost_model: str = Field(
        default="gpt-4o-mini-2024-07-18", description="Model whose training price the estimate uses"
    )
    push_to_hub_repo: str = Field(default="", description="e.g. my-org/instruct-yor; empty: no upload")
    hub_private: bool = True


def export_dir(lang_key: str) -> Path:
    return resolve_data_dir(None) / "export" / lang_key


@asset(
    group_name="export",
    partitions_def=language_partitions,
    ins={"instruction_dataset": AssetIn()},
    dagster_type=SFTDatasetFrame,
    check_specs=[
        AssetCheckSpec(
            OPENAI_FORMAT_CHECK,
            asset="sft_dataset",
            description="OpenAI chat fine-tuning data preparation checks on the train and validation files",
        )
    ],
    description="Train/validation/test splits (no near-duplicate across them) as OpenAI chat JSONL, "
    "Alpaca JSON, Parquet and a Hugging Face datasets folder under <data dir>/export/<lang>; token "
    "counts and the fine-tuning cost estimate.",
)
def sft_dataset(
    context: AssetExecutionContext,
    config: SFTExportConfig,
    hub: HuggingFaceHubResource,
    instruction_dataset: pd.DataFrame,
):
    lang = partition_language(context.partition_key)
    if instruction_dataset.empty:  # an empty export would train nothing and pass no check: say why instead
        raise ValueError(
            f"instruction_dataset for {lang.name} ({lang.key}) has no rows, so there is nothing to export: its "
            "metadata and instruction_dataset_rejects say what was dropped (licences, duplicates, review), and "
            "curated_pairs / backtranslation_rejects what the model's answers lost"
        )
    split_config = SplitConfig(
        validation_share=config.validation_share,
        test_share=config.test_share,
        seed=config.seed,
        near_duplicate_threshold=config.near_duplicate_threshold,
    )
    result = build_export(instruction_dataset, system_prompt=config.system_prompt, split_config=split_config)
    frame = result.frame
    categories = frame["category"].value_counts().to_dict()
    counts = {s: int((frame["split"] == s).sum()) for s in SPLITS}
    licenses = sorted(set(frame["license"]) - {""})
    card = dataset_card(lang.key, lang.name, counts, licenses)
    paths = write_all_formats(frame, export_dir(lang.key), card)

    loaded = load_encoding(config.token_encoding)
    if loaded.note:
        context.log.warning(loaded.note)
    reports = {}
    for split in SPLITS:
        text = Path(paths[f"{split}_chat_jsonl"]).read_text(encoding="utf-8")
        lines = [json.loads(x) for x in text.splitlines() if x]
        reports[split] = check_chat_examples(
            lines,
            loaded.encoding,
            max_tokens_per_example=config.max_tokens_per_example,
            min_examples=config.min_examples if split == "train" else 0,
        )
    train = reports["train"]
    cost = fine_tuning_cost(config.cost_model, train.charged_tokens)

    hub_url = ""
    if config.push_to_hub_repo:
        hub_url = push_to_hub(
            frame, config.push_to_hub_repo, hub.require_token(), card, private=config.hub_private
        )

    tokens = {s: sum(r.token_counts) for s, r in reports.items()}
    yield Output(
        frame,
        metadata={
            **{f"examples/{s}": n for s, n in counts.items()},
            **{f"tokens/{s}": n for s, n in tokens.items()},
            "near_duplicate_groups": result.n_groups,
            "largest_near_duplicate_group": result.largest_group,
            "token_encoding": loaded.name,
            "token_encoding_note": loaded.note or "the requested encoding",
            "token_encoding_source": loaded.source,
            "assistant_tokens/train": sum(train.assistant_token_counts),
            "tokens_per_example/train": MetadataValue.md(
                histogram_markdown(train.token_counts, [0, 64, 128, 256, 512, 1024, 2048, 4096], "tokens")
            ),
            "finetune_estimate/n_epochs": train.n_epochs,
            "finetune_estimate/billing_tokens": train.billing_tokens,
            "finetune_estimate/charged_tokens": train.charged_tokens,
            "finetune_estimate/model": config.cost_model,
            "finetune_estimate/cost_usd": float(cost) if cost is not None else float("nan"),
            "categories": MetadataValue.md(
                category_mix_markdown(categories, markdown_counts(categories, "category"))
            ),
            "files": MetadataValue.json(paths),
            "hf_dataset": MetadataValue.path(paths["hf_dataset"]),
            "hub_url": hub_url or "not pushed",
            "preview": MetadataValue.md(
                markdown_preview(frame, ["split", "category", "instruction", "output"])
            ),
        },
    )
    uploaded = [reports["train"], reports["validation"]]
    problems = [
        f"{split}: {p}"
        for split, r in zip(("train", "validation"), uploaded, strict=True)
        for p in r.problems()
    ]
    yield AssetCheckResult(
        check_name=OPENAI_FORMAT_CHECK,
        passed=not problems,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "problems": MetadataValue.json(problems),
            "first_errors": MetadataValue.json([e for r in uploaded for e in r.first_errors]),
            "train_examples": train.n_examples,
            "examples_over_token_limit": sum(r.too_long for r in uploaded),
            "max_tokens_per_example": config.max_tokens_per_example,
        },
    )
