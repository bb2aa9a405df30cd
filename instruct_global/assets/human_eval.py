"""Human evaluation: a blind side-by-side sheet of base and fine-tuned answers, and its win/tie/loss table."""
# No "from __future__ import annotations": Dagster reads these annotations at definition time.


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

from instruct_global.assets.common import report_plot_metadata
from instruct_global.frames import HumanEvalPairsFrame, HumanEvalScoresFrame
from instruct_global.lib.common.llm_types import ChatMessage, ChatRequest
from instruct_global.lib.common.report import markdown_preview
from instruct_global.lib.evaluate.answers import (
    GenerationSettings,
    adapter_hash,
    cached_answers,
    generate_answers,
)
from instruct_global.lib.evaluate.human_eval import (
    EvalItem,
    VerdictStore,
    apply_returned_sheet,
    blind_sheet,
    build_pairs,
    eval_items_from_sft,
    human_eval_paths,
    judged_ids,
    load_question_bank,
    unblind,
    write_eval_sheet,
)
from instruct_global.lib.evaluate.human_eval_stats import markdown_scores, score_table, scores_plot_png
from instruct_global.lib.evaluate.models import load_causal_lm
from instruct_global.partitions import language_partitions, partition_language
from instruct_global.resources.call_cache import CallCacheResource
from instruct_global.resources.llm import LLMResource
from instruct_global.resources.parquet_io import resolve_data_dir

FINETUNED_NOT_LOSING = "finetuned_not_losing_to_base"


class HumanEvalSheetConfig(Config):
    question_bank: str = Field(
        default="",
        description="A CSV of prompts in the language (column 'prompt', optional 'id' and 'lang'); "
        "its rows join the held-out test prompts",
    )
    max_test_prompts: int = Field(default=0, ge=0, description="0: the whole test split")
    seed: int = Field(default=15, description="Fixes which answer is A and which is B on each row")
    max_new_tokens: int = Field(default=256, ge=1)
    batch_size: int = Field(default=8, ge=1)


def _text(value: object) -> str:
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def _local_answers(cache, model_row: dict, items: list[EvalItem], settings: GenerationSettings) -> tuple[list, list, int]:
    base_model, adapter_dir = _text(model_row["base_model"]), _text(model_row["adapter_dir"])
    prompts = [item.messages for item in items]
    results, generated = [], 0
    for adapter in ("", adapter_dir):

        def generate(batch, adapter=adapter):
            model, tokenizer = load_causal_lm(base_model, adapter)  # loaded only when the cache misses
            try:
                return generate_answers(model, tokenizer, batch, settings)
            finally:
                del model

        run = cached_answers(cache, base_model, adapter_hash(adapter), settings, prompts, generate)
        results.append(run.answers)
        generated += run.generated
    return results[0], results[1], generated


def _hosted_answers(llm: LLMResource, model_row: dict, items: list[EvalItem], settings: GenerationSettings):
    """Through the LLM resource (and its call cache): base model and the fine-tuned model's id."""
    answers = []
    for model in (_text(model_row["base_model"]), _text(model_row["finetuned_model"])):
        requests = [
            ChatRequest(
                messages=tuple(ChatMessage(m["role"], m["content"]) for m in item.messages),
                model=model,
                temperature=0.0,
                max_tokens=settings.max_new_tokens,
                seed=settings.seed,
            )
            for item in items
        ]
        results = llm.complete(requests)
        failed = [item.id for item, r in zip(items, results, strict=True) if not r.ok]
        if failed:
            raise RuntimeError(f"{model}: no answer for {len(failed)} prompt(s), e.g. {failed[:3]}; re-run to retry")
        answers.append([r.texts[0] for r in results])
    return answers[0], answers[1], None


@asset(
    group_name="evaluate",
    partitions_def=language_partitions,
    ins={"sft_dataset": AssetIn(), "finetuned_model": AssetIn()},
    dagster_type=HumanEvalPairsFrame,
    pool="gpu",
    description="Blind side-by-side evaluation: held-out test prompts (and an optional question bank) answered "
    "by the base and the fine-tuned model, shown as A and B in a seeded per-row order; the sheet goes to "
    "<data dir>/human_eval/outbox/<lang>.csv|.xlsx, which model wrote which stays in this asset's output.",
)
def human_eval_sheet(
    context: AssetExecutionContext,
    config: HumanEvalSheetConfig,
    call_cache: CallCacheResource,
    llm: LLMResource,
    sft_dataset: pd.DataFrame,
    finetuned_model: pd.DataFrame,
):
    lang = partition_language(context.partition_key)
    items = eval_items_from_sft(sft_dataset, lang.key, config.max_test_prompts)
    if config.question_bank:
        items += load_question_bank(config.question_bank, lang.key)
    model_row = finetuned_model.iloc[0].to_dict()
    settings = GenerationSettings(max_new_tokens=config.max_new_tokens, seed=config.seed, batch_size=config.batch_size)
    if model_row["backend"] == "openai":
        base, tuned, generated = _hosted_answers(llm, model_row, items, settings)
    else:
        base, tuned, generated = _local_answers(call_cache.get_cache(), model_row, items, settings)
    pairs = build_pairs(items, base, tuned, config.seed)
    paths = human_eval_paths(resolve_data_dir(None), lang.key)
    judged = judged_ids(VerdictStore(paths.store).load().values(), pairs)
    sheet = blind_sheet(pairs, judged)
    write_eval_sheet(sheet, paths.outbox_csv, paths.outbox_xlsx)
    metadata = {
        "rows": len(pairs),
        "from_test_split": int((pairs["source"] == "test_split").sum()),
        "from_question_bank": int((pairs["source"] == "question_bank").sum()),
        "already_judged": len(judged),
        "sheet_rows": len(sheet),
        "identical_answers": int((pairs["base_answer"] == pairs["finetuned_answer"]).sum()),
        "sheet_csv": MetadataValue.path(str(paths.outbox_csv)),
        "sheet_xlsx": MetadataValue.path(str(paths.outbox_xlsx)),
        "base_model": _text(model_row["base_model"]),
        "finetuned_model": _text(model_row["finetuned_model"]),
        "preview": MetadataValue.md(markdown_preview(sheet, ["prompt", "answer_a", "answer_b"])),  # blind too
    }
    if generated is not None:
        metadata["answers_generated"] = generated  # 0 on a re-run: every answer came from the cache
    return Output(pairs, metadata=metadata)


class HumanEvalScoresConfig(Config):
    returned_sheet: str = Field(
        default="",
        description="A returned evaluation sheet (CSV or XLSX) to apply first; the inbox sensor fills this in",
    )


@asset(
    group_name="evaluate",
    partitions_def=language_partitions,
    ins={"human_eval_sheet": AssetIn()},
    dagster_type=HumanEvalScoresFrame,
    check_specs=[
        AssetCheckSpec(
            FINETUNED_NOT_LOSING,
            asset="human_eval_scores",
            description="Warns when reviewers prefer the base model significantly (Wilson 95 % CI below 0.5)",
        )
    ],
    description="Win / tie / loss of the fine-tuned model against the base as judged blind by people, the win "
    "rate among decisive rows with its 95 % Wilson interval and a sign test, Cohen's kappa where rows were "
    "judged twice; table and plot. Applies a returned sheet first (all rows or none).",
)
def human_eval_scores(
    context: AssetExecutionContext, config: HumanEvalScoresConfig, human_eval_sheet: pd.DataFrame
):
    lang = partition_language(context.partition_key)
    data_dir = resolve_data_dir(None)
    paths = human_eval_paths(data_dir, lang.key)
    store = VerdictStore(paths.store)
    applied = apply_returned_sheet(human_eval_sheet, paths, store, config.returned_sheet, warn=context.log.warning)
    judgments, stale = unblind(store.load().values(), human_eval_sheet)
    table = score_table(judgments, [lang.key])
    png = scores_plot_png(table, f"{lang.name}: fine-tuned against base, blind human judgments")
    row = table.iloc[0]
    yield Output(
        table,
        metadata={
            "table": MetadataValue.md(markdown_scores(table)),
            **report_plot_metadata(png, lang.key, "human_eval", "human evaluation"),
            "applied_from_sheet": applied,
            "judged_rows": int(row["judged_rows"]),
            "judgments": int(row["judgments"]),
            "stale_verdicts": stale,  # verdicts on answers that have since changed: judged again
            "rows_in_evaluation": len(human_eval_sheet),
        },
    )
    yield AssetCheckResult(
        check_name=FINETUNED_NOT_LOSING,
        passed=not bool(row["loses_significantly"]),
        severity=AssetCheckSeverity.WARN,
        metadata={
            "wins": int(row["wins"]),
            "losses": int(row["losses"]),
            "win_rate": float(row["win_rate"]),
            "ci_high": float(row["ci_high"]),
            "sign_test_p": float(row["sign_test_p"]),
        },
    )
