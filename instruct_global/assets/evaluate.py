"""Evaluate: TruthfulQA in the language, and base against fine-tuned on it and on the held-out split."""
# No "from __future__ import annotations": Dagster reads these annotations at definition time.

import json
import math
import os
from collections.abc import Callable, Sequence

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

from instruct_global.assets.common import drop_metadata, outside_service_retry, report_plot_metadata
from instruct_global.frames import ModelScoresFrame, TruthfulQAFrame
from instruct_global.lib.common.llm_types import ChatRequest
from instruct_global.lib.common.report import markdown_preview
from instruct_global.lib.corpus.langid import identify
from instruct_global.lib.evaluate.benchmark_review import apply_reviewed_texts, benchmark_texts, review_rows
from instruct_global.lib.evaluate.compare import (
    comparison_plot_png,
    comparison_table,
    markdown_table,
)
from instruct_global.lib.evaluate.fewshot import FEWSHOT_QA
from instruct_global.lib.evaluate.heldout import heldout_loss
from instruct_global.lib.evaluate.models import load_causal_lm
from instruct_global.lib.evaluate.scoring_runs import letter_truthfulqa, local_truthfulqa
from instruct_global.lib.evaluate.translate_benchmark import translate_truthfulqa
from instruct_global.lib.evaluate.truthfulqa import COLUMNS, load_truthfulqa_csv, load_truthfulqa_hf
from instruct_global.lib.translate.checks import TranslationCheckConfig, check_translation
from instruct_global.lib.translate.review_paths import ReviewPaths
from instruct_global.lib.translate.review_round import run_review_round
from instruct_global.lib.translate.review_sheet import build_review_sheet, write_review_sheet
from instruct_global.partitions import language_partitions, partition_language
from instruct_global.resources.llm import LLMResource
from instruct_global.resources.parquet_io import resolve_data_dir
from instruct_global.resources.selection import translation_pool
from instruct_global.resources.translation import TranslatorResource

FINETUNED_NOT_WORSE = "finetuned_not_worse"
TRUTHFULQA_COLUMNS = [*COLUMNS, "question_en", "mc1_choices_en", "mc2_choices_en", "fewshot"]


class TruthfulQAConfig(Config):
    source: str = Field(
        default="truthful_qa",
        description="Hub name or local dataset folder (multiple_choice "
        "config), or the path of the original TruthfulQA.csv",
    )
    hf_config: str = "multiple_choice"
    split: str = "validation"
    max_questions: int = Field(default=0, ge=0, description="0: all")
    translate_fewshot: bool = Field(default=True, description="False keeps the 6-shot examples in English")
    lid_min_score: float = Field(default=0.5, ge=0, le=1)
    length_ratio_min: float = 0.3
    length_ratio_max: float = 3.0
    returned_sheet: str = Field(
        default="",
        description="A reviewer's returned TruthfulQA sheet (CSV or XLSX) to "
        "apply first; sheets go out to <data dir>/review/truthfulqa/outbox/<lang>.*",
    )


def _load_questions(config: TruthfulQAConfig) -> pd.DataFrame:
    if config.source.lower().endswith(".csv"):
        frame = load_truthfulqa_csv(config.source)
    else:
        frame = load_truthfulqa_hf(config.source, config.hf_config, config.split)
    return frame.head(config.max_questions) if config.max_questions else frame


def _skipped(reason: str, questions: int) -> Output:
    return Output(
        pd.DataFrame(columns=TRUTHFULQA_COLUMNS),
        metadata={"skipped": True, "skip_reason": reason, "questions_in": questions, "kept": 0},
    )


@asset(
    group_name="evaluate",
    partitions_def=language_partitions,
    dagster_type=TruthfulQAFrame,
    pool=translation_pool(os.environ),
    retry_policy=outside_service_retry(),
    description="TruthfulQA (MC1/MC2) translated into the language: question, every choice (labels in order) "
    "and the 6-shot examples; questions failing a translation check are dropped and counted. Empty, with the "
    "reason, where no translator covers the language.",
)
def truthfulqa_translated(
    context: AssetExecutionContext, config: TruthfulQAConfig, translator: TranslatorResource
):
    lang = partition_language(context.partition_key)
    if not translator.supports(lang):  # before loading the questions: offline, the hub is out of reach too
        reason = (
            f"{lang.name} ({lang.key}) is not covered by the translator '{translator.backend_name}': "
            "TruthfulQA is not scored for it; the held-out evaluation still runs"
        )
        context.log.warning(reason)
        return _skipped(reason, 0)
    questions = _load_questions(config)
    check_config = TranslationCheckConfig(
        lid_min_score=config.lid_min_score,
        length_ratio_min=config.length_ratio_min,
        length_ratio_max=config.length_ratio_max,
    )
    backend_errors: list[str] = []

    def translate(texts: list[str]) -> list[str | None]:
        results = translator.translate(texts, source="eng", target=lang)
        backend_errors.extend(r.error for r in results if r.error)
        return [r.text if r.ok else None for r in results]

    def check(source: str, output: str | None) -> list[str]:
        return check_translation(
            source, output, lang_key=lang.key, identify=lambda t: identify(t, lang), config=check_config
        )

    try:
        result = translate_truthfulqa(
            questions, FEWSHOT_QA, translate, check, translate_fewshot=config.translate_fewshot
        )
    except (OSError, ImportError) as exc:  # e.g. an MT model that cannot be loaded offline
        error = f"{type(exc).__name__}: {str(exc)[:300]}"
        reason = f"the translator '{translator.backend_name}' could not run: {error}"
        context.log.warning(reason)
        return _skipped(reason, len(questions))
    rows, fewshot, review = _review(context, config, lang.key, result.rows, result.fewshot)
    rows = rows.copy()
    rows["fewshot"] = json.dumps(fewshot, ensure_ascii=False)
    rows = rows[TRUTHFULQA_COLUMNS]
    return Output(
        rows,
        metadata={
            "skipped": False,
            "questions_in": len(questions),
            "kept": len(rows),
            "fewshot_translated": not config.translate_fewshot
            or result.fewshot_kept_english < len(FEWSHOT_QA),
            "fewshot_kept_english": result.fewshot_kept_english
            if config.translate_fewshot
            else len(FEWSHOT_QA),
            "backend": translator.backend_name,
            "backend_errors": len(backend_errors),
            "preview": MetadataValue.md(markdown_preview(rows, ["question_en", "question"])),
            **review,
            **drop_metadata({**result.reasons, "rejected_in_review": review["review/questions_dropped"]}),
        },
    )


def _review(
    context: AssetExecutionContext, config: TruthfulQAConfig, lang: str, rows: pd.DataFrame, fewshot: list
) -> tuple[pd.DataFrame, list, dict]:
    """Apply stored (and a returned sheet's) reviews; write the sheet of what is still unreviewed."""
    paths = ReviewPaths(resolve_data_dir(None) / "review" / "truthfulqa", lang)
    round_ = run_review_round(
        review_rows(benchmark_texts(rows, FEWSHOT_QA, fewshot), lang),
        paths,
        config.returned_sheet,
        warn=context.log.warning,
    )
    reviewed = round_.reviewed
    rows, fewshot, dropped = apply_reviewed_texts(rows, FEWSHOT_QA, fewshot, reviewed)
    pending = reviewed[reviewed["review_status"].isin(["unreviewed", "needs_review_again"])]
    write_review_sheet(build_review_sheet(pending), paths.outbox_csv, paths.outbox_xlsx)
    return (
        rows,
        fewshot,
        {
            "review/questions_dropped": dropped,
            "review/applied_from_sheet": round_.applied_from_sheet,
            **{f"review/{status}": int(n) for status, n in round_.status_counts.items()},
            "review_sheet": MetadataValue.path(str(paths.outbox_xlsx)),
        },
    )


class ModelScoresConfig(Config):
    scorer: str = Field(
        default="auto",
        description="auto (follows finetuned_model), local (log-likelihood MC1/MC2 "
        "and held-out loss) or api (letter-choice MC1 through the llm resource)",
    )
    letter_seed: int = 1234
    max_heldout_examples: int = Field(default=0, ge=0, description="0: the whole test split")


def _heldout_messages(sft_dataset: pd.DataFrame, limit: int) -> list[list[dict]]:
    test = [json.loads(m) for m in sft_dataset.loc[sft_dataset["split"] == "test", "messages"]]
    return test[:limit] if limit else test


def _text(value: object) -> str:
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def _local_scores(model_row: dict, questions: pd.DataFrame, heldout: list) -> tuple[dict, dict, dict]:
    base_model, merged, adapter = (_text(model_row[k]) for k in ("base_model", "merged_dir", "adapter_dir"))
    variants = [
        ("base", base_model, ""),
        ("finetuned", merged, "") if merged else ("finetuned", base_model, adapter),
    ]
    scores: dict[str, dict[str, float]] = {}
    counts = {"truthfulqa_mc1": len(questions), "truthfulqa_mc2": len(questions)}
    for name, path, adapter_dir in variants:
        model, tokenizer = load_causal_lm(path, adapter_dir)
        scores[name] = local_truthfulqa(model, tokenizer, questions) if len(questions) else {}
        loss = heldout_loss(model, tokenizer, heldout)
        scores[name].update({"heldout_loss": loss.loss, "heldout_perplexity": loss.perplexity})
        counts.update({"heldout_loss": loss.tokens, "heldout_perplexity": loss.tokens})
        del model
    return scores["base"], scores["finetuned"], counts


def _api_scores(
    model_row: dict,
    questions: pd.DataFrame,
    llm: LLMResource,
    lang_name: str,
    seed: int,
    warn: Callable[[str], None],
) -> tuple[dict, dict, dict]:
    scores = []
    for model in (_text(model_row["base_model"]), _text(model_row["finetuned_model"])):

        def ask(prompts: Sequence[str], model: str = model) -> list[str | None]:
            requests = [
                ChatRequest.from_prompt(p, model=model, temperature=0.0, max_tokens=5) for p in prompts
            ]
            return [r.texts[0] if r.ok and r.texts else None for r in llm.complete(requests)]

        run = letter_truthfulqa(ask, questions, lang_name, seed) if len(questions) else None
        if run and run.unparsable:
            warn(f"{model}: {run.unparsable} answers without an option letter (scored as wrong)")
        scores.append({"truthfulqa_mc1_letter": run.accuracy} if run else {})
    return scores[0], scores[1], {"truthfulqa_mc1_letter": len(questions)}


@asset(
    group_name="evaluate",
    partitions_def=language_partitions,
    ins={"sft_dataset": AssetIn(), "finetuned_model": AssetIn(), "truthfulqa_translated": AssetIn()},
    dagster_type=ModelScoresFrame,
    pool="gpu",
    check_specs=[
        AssetCheckSpec(
            FINETUNED_NOT_WORSE,
            asset="model_scores",
            description="Warns when the fine-tuned model is worse than the base on a measure",
        )
    ],
    description="Base against fine-tuned: TruthfulQA MC1/MC2 in the language (as lm-evaluation-harness "
    "computes them; letter choice for API models) and loss/perplexity of the held-out test responses; "
    "table and plot.",
)
def model_scores(
    context: AssetExecutionContext,
    config: ModelScoresConfig,
    llm: LLMResource,
    sft_dataset: pd.DataFrame,
    finetuned_model: pd.DataFrame,
    truthfulqa_translated: pd.DataFrame,
):
    lang = partition_language(context.partition_key)
    model_row = finetuned_model.iloc[0].to_dict()
    scorer = (
        config.scorer if config.scorer != "auto" else ("api" if model_row["backend"] == "openai" else "local")
    )
    notes = []
    if not len(truthfulqa_translated):
        notes.append(
            "TruthfulQA not scored: no translated questions (see truthfulqa_translated's skip reason)"
        )
    if scorer == "local":
        base, tuned, counts = _local_scores(
            model_row, truthfulqa_translated, _heldout_messages(sft_dataset, config.max_heldout_examples)
        )
    elif scorer == "api":
        base, tuned, counts = _api_scores(
            model_row, truthfulqa_translated, llm, lang.name, config.letter_seed, context.log.warning
        )
        notes.append(
            "held-out loss needs token log-probabilities of given text, which chat APIs do not return"
        )
    else:
        raise ValueError(f"model_scores scorer {config.scorer!r} is not one of: auto, local, api")
    table = comparison_table(base, tuned, counts)
    png = comparison_plot_png(table, f"{lang.name}: base against fine-tuned")
    yield Output(
        table,
        metadata={
            "table": MetadataValue.md(markdown_table(table)),
            **report_plot_metadata(png, lang.key, "model_scores", "base against fine-tuned"),
            "scorer": scorer,
            "base_model": _text(model_row["base_model"]),
            "finetuned_model": _text(model_row["finetuned_model"]),
            "notes": MetadataValue.json(notes),
            **{f"base/{k}": float(v) for k, v in base.items()},
            **{f"finetuned/{k}": float(v) for k, v in tuned.items()},
        },
    )
    worse = table.loc[table["finetuned_worse"], "measure"].tolist()
    yield AssetCheckResult(
        check_name=FINETUNED_NOT_WORSE,
        passed=not worse and not table.empty,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "worse_on": MetadataValue.json(worse),
            "measures": MetadataValue.json(table["measure"].tolist()),
            "differences": MetadataValue.json(
                {
                    r.measure: (None if math.isnan(r.difference) else float(r.difference))
                    for r in table.itertuples()
                }
            ),
        },
    )
