"""Into the target language: translation with placeholder protection, filling, human review."""
# No "from __future__ import annotations": Dagster reads these annotations at definition time.

import json
import os

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetOut,
    Config,
    MetadataValue,
    Output,
    asset,
    multi_asset,
)
from pydantic import Field

from instruct_global.assets.common import (
    call_metadata,
    drop_metadata,
    outside_service_retry,
    permanent_errors,
    rejects_metadata,
)
from instruct_global.frames import RejectsFrame, TargetRowsFrame
from instruct_global.languages import Language, UnsupportedLanguageError
from instruct_global.lib.common.report import markdown_counts, markdown_preview
from instruct_global.lib.corpus.langid import identify
from instruct_global.lib.translate.checks import TranslationCheckConfig
from instruct_global.lib.translate.review_paths import review_paths
from instruct_global.lib.translate.review_round import run_review_round
from instruct_global.lib.translate.review_sheet import build_review_sheet, write_review_sheet
from instruct_global.lib.translate.target_rows import (
    TARGET_COLUMNS,
    fill_templates,
    review_warnings,
    translate_rows,
)
from instruct_global.partitions import language_partitions, partition_language
from instruct_global.resources.parquet_io import resolve_data_dir
from instruct_global.resources.selection import translation_pool
from instruct_global.resources.translation import TranslatorResource
from instruct_global.resources.translation_none import NO_TRANSLATOR_REASON, translator_steps_aside

PREVIEW = ["category", "instruction", "input", "output"]


class TranslateConfig(Config):
    placeholder_strategies: list[str] = Field(
        default=["sentinel", "split"], description="Tried in order; a text failing all of them is rejected"
    )
    length_ratio_min: float = 0.3
    length_ratio_max: float = 3.0
    lid_min_score: float = Field(default=0.5, ge=0, le=1)


def _require_backend(translator: TranslatorResource, lang: Language) -> None:
    if not translator.supports(lang):
        raise UnsupportedLanguageError(
            f"{lang.name} ({lang.key}) is not covered by the configured translation backend "
            f"'{translator.backend_name}' (NLLB code: {lang.nllb_code}, Google code: {lang.google_code}). "
            "Configure a backend that covers it (INSTRUCT_GLOBAL_TRANSLATOR=nllb or google) or leave this "
            "partition out of the translation stages."
        )


@multi_asset(
    outs={
        "translated_instructions": AssetOut(group_name="translate", dagster_type=TargetRowsFrame, description=(
            "Skeleton templates and self-instruct instructions in the target language; placeholders verified, "
            "every output checked.")),
        "translation_rejects": AssetOut(group_name="translate", dagster_type=RejectsFrame,
                                        description="Rows that failed a check, with reasons."),
    },
    ins={"skeleton_questions": AssetIn(), "self_instruct_instructions": AssetIn()},
    partitions_def=language_partitions,
    # Dagster needs pools when definitions load, so the backend choice (not a secret) is read then
    pool=translation_pool(os.environ),
    retry_policy=outside_service_retry(),
)
def translated_instructions(
    context: AssetExecutionContext,
    config: TranslateConfig,
    translator: TranslatorResource,
    skeleton_questions: pd.DataFrame,
    self_instruct_instructions: pd.DataFrame,
):
    lang = partition_language(context.partition_key)
    english = pd.concat([skeleton_questions, self_instruct_instructions], ignore_index=True, sort=False)
    if translator_steps_aside(translator):
        yield from _stepped_aside(context, english, lang)
        return
    with permanent_errors(UnsupportedLanguageError):  # another backend is the fix, not a retry
        _require_backend(translator, lang)

    backend_errors: list[str] = []

    def translate_fn(texts: list[str]) -> list[str | None]:
        results = translator.translate(texts, source="eng", target=lang)
        backend_errors.extend(r.error for r in results if r.error)
        return [r.text if r.ok else None for r in results]

    result = translate_rows(
        english, lang.key, translate_fn,
        identify=lambda text: identify(text, lang),
        strategies=config.placeholder_strategies,
        check_config=TranslationCheckConfig(
            length_ratio_min=config.length_ratio_min, length_ratio_max=config.length_ratio_max,
            lid_min_score=config.lid_min_score,
        ),
    )
    rows = result.rows
    if result.texts_sent and backend_errors and rows.empty:
        # the backend failed as a whole (credentials, quota, model): not a data problem
        raise RuntimeError(
            f"the {translator.backend_name} backend translated nothing for {lang.name}; "
            f"{len(backend_errors)} errors, first: {backend_errors[0]}"
        )
    yield Output(rows, output_name="translated_instructions", metadata={
        "backend_errors": len(backend_errors),
        "first_backend_errors": MetadataValue.json(backend_errors[:5]),
        "rows_in": len(english),
        "translated": len(rows),
        "texts_sent": result.texts_sent,
        "backend": translator.backend_name,
        "placeholder_strategies": MetadataValue.md(markdown_counts(dict(result.strategies), "strategy")),
        "preview": MetadataValue.md(markdown_preview(rows, ["origin", *PREVIEW])),
        **drop_metadata(result.reasons),
        **call_metadata(translator.stats(), "mt"),
    })
    yield Output(result.rejects, output_name="translation_rejects",
                 metadata=rejects_metadata(result.rejects, ["instruction_en", "instruction"]))


def _stepped_aside(context: AssetExecutionContext, english: pd.DataFrame, lang: Language):
    """No translator: empty outputs of the right shape, the reason in the log and the metadata."""
    context.log.warning(f"{lang.name}: translation steps aside, {len(english)} English rows left untranslated: "
                        f"{NO_TRANSLATOR_REASON}")

    def never_called(texts: list[str]) -> list[str | None]:
        raise AssertionError("no text is translated when the translator steps aside")

    empty = translate_rows(english.iloc[0:0], lang.key, never_called, identify=lambda text: identify(text, lang))
    skipped = {"skipped": True, "skip_reason": NO_TRANSLATOR_REASON, "rows_in": len(english), "translated": 0}
    yield Output(empty.rows, output_name="translated_instructions", metadata=skipped)
    yield Output(empty.rejects, output_name="translation_rejects", metadata={**skipped, "rejects": 0})


@asset(
    group_name="translate",
    partitions_def=language_partitions,
    ins={"translated_instructions": AssetIn(), "source_records": AssetIn(), "skeleton_questions": AssetIn(),
         "skeleton_question_rejects": AssetIn()},
    dagster_type=TargetRowsFrame,
    description="Translated templates filled with the source records' values (never machine-translated), "
    "exactly the quota per dataset and category.",
)
def filled_instructions(
    context: AssetExecutionContext,
    translated_instructions: pd.DataFrame,
    source_records: pd.DataFrame,
    skeleton_questions: pd.DataFrame,
    skeleton_question_rejects: pd.DataFrame,
) -> Output[pd.DataFrame]:
    templates = translated_instructions[translated_instructions["origin"] == "template"]
    # rejects carry their dataset's quota too: a dataset whose templates all failed is not forgotten
    quota_rows = pd.concat([skeleton_questions, skeleton_question_rejects], ignore_index=True)
    quotas = quota_rows.groupby("dataset")["quota"].max().astype(int).to_dict() if not quota_rows.empty else {}
    result = fill_templates(templates, source_records, quotas, context.partition_key, skeletons=skeleton_questions)
    if result.shortfall:
        context.log.warning(f"fewer template × record pairs than the quota: {result.shortfall}")
    without_quota = sorted(set(source_records["dataset"]) - set(quotas))
    if without_quota:
        context.log.warning(f"datasets with no skeleton templates or quota: {without_quota}")
    return Output(result.rows, metadata={
        "rows": len(result.rows),
        "quota_per_dataset": MetadataValue.json(quotas),
        "rows_per_category": MetadataValue.md(markdown_counts(result.per_category, "category")),
        "shortfall": MetadataValue.json(result.shortfall),
        "datasets_without_templates": MetadataValue.json(without_quota),
        "preview": MetadataValue.md(markdown_preview(result.rows, ["dataset", *PREVIEW])),
    })


class ReviewedConfig(Config):
    returned_sheet: str = Field(
        default="", description="A reviewer's returned sheet (CSV or XLSX) to apply first; the review sensor sets it"
    )


@asset(
    group_name="translate",
    partitions_def=language_partitions,
    ins={"filled_instructions": AssetIn(), "translated_instructions": AssetIn()},
    dagster_type=TargetRowsFrame,
    description="Target-language instructions with every stored human review applied (edits by stable id).",
)
def reviewed_instructions(
    context: AssetExecutionContext,
    config: ReviewedConfig,
    filled_instructions: pd.DataFrame,
    translated_instructions: pd.DataFrame,
) -> Output[pd.DataFrame]:
    self_instruct = translated_instructions[translated_instructions["origin"] == "self_instruct"]
    rows = pd.concat([filled_instructions, self_instruct], ignore_index=True)[list(TARGET_COLUMNS)]
    paths = review_paths(resolve_data_dir(None), context.partition_key)
    # validation raises on any bad row of a returned sheet, naming each one: nothing from it is applied
    review = run_review_round(rows, paths, config.returned_sheet, warn=context.log.warning)
    for note in review.notes:
        context.log.info(note)
    reviewed, counts, applied_now = review.reviewed, review.status_counts, review.applied_from_sheet
    return Output(reviewed, metadata={
        "rows": len(reviewed),
        "applied_from_sheet": applied_now,
        **{f"review/{status}": int(n) for status, n in counts.items()},
        "review_status": MetadataValue.md(markdown_counts(counts, "status")),
        "preview": MetadataValue.md(markdown_preview(reviewed, ["review_status", *PREVIEW])),
    })


@asset(
    group_name="translate",
    partitions_def=language_partitions,
    description="Review sheet per language (CSV and XLSX in <data dir>/review/outbox), riskiest rows first; "
    "rows already reviewed for their current English source are left out.",
)
def review_sheet(context: AssetExecutionContext, reviewed_instructions: pd.DataFrame) -> Output[pd.DataFrame]:
    pending = reviewed_instructions[
        reviewed_instructions["review_status"].isin(["unreviewed", "needs_review_again"])
    ].copy()
    pending["warnings"] = [review_warnings(row) for row in pending.to_dict("records")]
    sheet = build_review_sheet(pending)
    paths = review_paths(resolve_data_dir(None), context.partition_key)
    write_review_sheet(sheet, paths.outbox_csv, paths.outbox_xlsx)
    checks = pending["checks"].map(lambda c: len(json.loads(c or "[]"))).sum() if not pending.empty else 0
    return Output(sheet, metadata={
        "rows_to_review": len(sheet),
        "flagged_again": int((pending["review_status"] == "needs_review_again").sum()),
        "check_warnings": int(checks),
        "csv": MetadataValue.path(str(paths.outbox_csv)),
        "xlsx": MetadataValue.path(str(paths.outbox_xlsx)),
        "return_to": MetadataValue.path(str(paths.inbox_dir / f"{context.partition_key}.csv (or .xlsx)")),
        "preview": MetadataValue.md(markdown_preview(sheet, ["risk", "warnings", "english_instruction", "instruction"])),
    })
