"""The curate assets for one partition: materialize through the real OpenAI SDK against the local
server; the threshold holds downstream; the dataset builds with and without translated rows; the
review round trip covers backtranslated pairs; the card; `dagster job execute` of the curate job."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml
from dagster import SourceAsset, build_sensor_context, materialize

from instruct_global.assets.corpus import source_records
from instruct_global.assets.curate import (
    NO_TRANSLATED_ROWS,
    backtranslated_pairs,
    curated_pairs,
    curated_review_sheet,
    diversified_pairs,
    instruction_dataset,
)
from instruct_global.languages import get_language
from instruct_global.lib.corpus.bbc import LICENSE as BBC_LICENSE
from instruct_global.lib.corpus.cleaning import CleaningConfig, clean_corpus
from instruct_global.lib.corpus.wikipedia import LICENSE as WIKI_LICENSE
from instruct_global.lib.curate.rubric import parse_score
from instruct_global.lib.translate.target_rows import TARGET_COLUMNS
from instruct_global.partitions import language_partitions
from instruct_global.resources.call_cache import CallCacheResource
from instruct_global.resources.parquet_io import PartitionedParquetIOManager, write_parquet_atomic
from instruct_global.resources.translation_google import GoogleTranslator
from instruct_global.sensors import curated_review_inbox_sensor
from instruct_global_tests.conftest import REPO_ROOT
from instruct_global_tests.fixtures.curate_llm import CurateResponder
from instruct_global_tests.fixtures.google_translate_server import GoogleTranslateServer
from instruct_global_tests.fixtures.llm_testing import openai_llm
from instruct_global_tests.fixtures.openai_server import OpenAIServer

pytestmark = pytest.mark.slow  # the diversification step loads the packaged MiniLM model

SAMPLE_DOCS = REPO_ROOT / "data" / "samples" / "documents_yor.jsonl"
SCHEMA_DIR = REPO_ROOT / "data" / "schema" / "yor"
CURATE = [backtranslated_pairs, curated_pairs, diversified_pairs, instruction_dataset, curated_review_sheet]
# clean_documents is written by the test (from the shipped sample) and read through the IO manager
CLEAN = SourceAsset("clean_documents", partitions_def=language_partitions)
ALL = [CLEAN, source_records, *CURATE]


def _write_clean_documents(data_dir: Path) -> pd.DataFrame:
    """The shipped Yoruba sample, cleaned in small chunks; alternate documents posed as Wikipedia / BBC."""
    docs = pd.read_json(SAMPLE_DOCS, lines=True, dtype=False)
    docs["source"] = ["wikipedia" if i % 3 else "bbc" for i in range(len(docs))]
    docs["license"] = [WIKI_LICENSE if s == "wikipedia" else BBC_LICENSE for s in docs["source"]]
    clean = clean_corpus(docs, get_language("yor"), CleaningConfig(max_tokens=48)).clean
    write_parquet_atomic(clean, data_dir / "clean_documents" / "yor.parquet")
    return clean


def _schema_with_licence(tmp_path: Path) -> Path:
    folder = tmp_path / "schema"
    shutil.copytree(SCHEMA_DIR, folder)
    schema = pd.read_csv(folder / "input_schema.csv", dtype=str, keep_default_na=False)
    schema["license"] = ["CC-BY-4.0", "", ""]
    schema.to_csv(folder / "input_schema.csv", index=False)
    return folder / "input_schema.csv"


def _write_reviewed_instructions(data_dir: Path, records: pd.DataFrame) -> pd.DataFrame:
    """Translated rows as reviewed_instructions stores them: two templates (one rejected) and a task."""
    proverbs = records[records["dataset"] == "yoruba_proverbs"].iloc[:2]
    rows = []
    for i, record in enumerate(proverbs.to_dict("records")):
        variables = json.loads(record["variables"])
        rows.append({"id": f"tmpl{i}", "lang": "yor", "category": "question-answer",
                     "instruction": f"Ṣàlàyé òwe yìí: {variables['variable_1']}", "input": "",
                     "output": variables["variable_2"], "instruction_en": "Explain this proverb: {variable_1}",
                     "input_en": "", "output_en": "{variable_2}", "origin": "template",
                     "dataset": "yoruba_proverbs", "instruction_id": "skel1", "record_id": record["record_id"],
                     "checks": "[]", "review_status": "rejected" if i == 1 else "approved",
                     "translation_strategy": "sentinel"})
    rows.append({"id": "si0", "lang": "yor", "category": "brainstorming",
                 "instruction": "Dárúkọ oúnjẹ ìbílẹ̀ Yorùbá márùn-ún tí a fi iṣu ṣe.", "input": "",
                 "output": "Iyán, àmàlà, ẹ̀bẹ, ọ̀jọjọ àti dùndú ni wọ́n.", "instruction_en": "Name five yam foods.",
                 "input_en": "", "output_en": "Pounded yam, amala, yam pottage, ojojo and dundun.",
                 "origin": "self_instruct", "dataset": "", "instruction_id": "si0", "record_id": "",
                 "checks": "[]", "review_status": "unreviewed", "translation_strategy": "sentinel"})
    frame = pd.DataFrame(rows)[list(TARGET_COLUMNS)]
    write_parquet_atomic(frame, data_dir / "reviewed_instructions" / "yor.parquet")
    return frame


@pytest.fixture
def servers() -> Iterator[tuple[OpenAIServer, OpenAIServer, GoogleTranslateServer, CurateResponder]]:
    responder = CurateResponder()
    with OpenAIServer() as generator, OpenAIServer() as judge, GoogleTranslateServer() as mt:
        generator.responder = CurateResponder()
        judge.responder = responder
        yield generator, judge, mt, responder


def _resources(tmp_path: Path, generator: OpenAIServer, judge: OpenAIServer, mt: GoogleTranslateServer) -> dict:
    cache = tmp_path / "calls.sqlite"
    return {
        "io_manager": PartitionedParquetIOManager(),
        "llm": openai_llm(generator, cache),
        "judge_llm": openai_llm(judge, cache, model="gpt-4o"),
        "translator": GoogleTranslator(
            cache=CallCacheResource(url=str(cache)), project_id="test-project", api_endpoint=mt.url,
            anonymous_credentials_for_testing=True, backoff_initial_s=0.01, backoff_max_s=0.05, timeout_s=5.0),
    }


def _config(schema: Path, **dataset: object) -> dict:
    return {"ops": {
        "source_records": {"config": {"schema_csv": str(schema)}},
        "backtranslated_pairs": {"config": {"min_tokens": 8, "max_per_document": 3, "max_segments": 60}},
        "curated_pairs": {"config": {"threshold": 4}},
        "diversified_pairs": {"config": {"target_size": 0}},
        "instruction_dataset": {"config": dataset},
    }}


def _run(resources: dict, config: dict, selection=None):
    keys = selection or [a for asset in [source_records, *CURATE] for a in asset.keys]
    return materialize(ALL, partition_key="yor", resources=resources, run_config=config, selection=keys)


def _read(data_dir: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(data_dir / name / "yor.parquet")


def test_curate_partition_end_to_end(servers, data_dir: Path, tmp_path: Path) -> None:
    generator, judge, mt, responder = servers
    _write_clean_documents(data_dir)
    schema = _schema_with_licence(tmp_path)
    resources = _resources(tmp_path, generator, judge, mt)

    # --- offline shape first: no reviewed_instructions (no translator) -----------------------------
    result = _run(resources, _config(schema))
    assert result.success
    pairs, curated = _read(data_dir, "backtranslated_pairs"), _read(data_dir, "curated_pairs")
    dataset = _read(data_dir, "instruction_dataset")
    assert len(pairs) > 0 and len(curated) > 0 and len(dataset) > 0
    assert set(dataset["origin"]) == {"backtranslation"}
    meta = result.asset_materializations_for_node("instruction_dataset")[0].metadata
    assert meta["translated_rows_present"].value is False
    assert NO_TRANSLATED_ROWS in json.dumps(meta["notes"].value)
    card = (data_dir / "instruction_dataset" / "yor.card.md").read_text(encoding="utf-8")
    assert NO_TRANSLATED_ROWS in card

    # the threshold holds: a pair the judge scored 2 reaches neither curated_pairs nor the dataset
    scored_two = {text for text, answer in responder.judge_answers.items() if answer.endswith("Score: 2")}
    assert scored_two & set(pairs["output"]), "the scripted judge scored no pair 2: the test proves nothing"
    for name in ("curated_pairs", "diversified_pairs", "instruction_dataset"):
        assert not scored_two & set(_read(data_dir, name)["output"]), name
    assert (dataset["curation_score"] >= 4).all()
    curation_meta = result.asset_materializations_for_node("curated_pairs")[0].metadata
    assert curation_meta["unparsed"].value >= 1
    assert "data:image/png;base64," in curation_meta["score_histogram"].value
    assert (data_dir / "curated_pairs" / "yor.score_histogram.png").stat().st_size > 1000
    assert curation_meta["tokens_per_kept_pair"].value > 0
    assert judge.counts["chat"] == len(pairs)  # the judge resource judged, the generator generated
    rejects = _read(data_dir, "curation_rejects")
    assert rejects[rejects["reason"].str.startswith("unparsed")]["curation_score"].isna().all()

    # provenance and licences: BBC text is left out by default, Wikipedia kept with its licence
    assert set(dataset["license"]) == {"CC-BY-SA-4.0"} and set(dataset["source"]) == {"wikipedia"}
    dataset_rejects = _read(data_dir, "instruction_dataset_rejects")
    assert (dataset_rejects["reason"] == "license_not_allowed:BBC-copyright").any()
    assert dataset["source_url"].str.startswith("https://").all() and (dataset["chunk_id"] != "").all()
    assert (json.loads(dataset["judge"].iloc[0])["model"] == "gpt-4o")
    assert (json.loads(dataset["generator"].iloc[0])["model"] == "gpt-4o-mini")
    assert (dataset["output"].isin(set(_read(data_dir, "clean_documents")["text"]))).all()  # human text, verbatim
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert set(checks) == {"no_empty_fields", "no_leftover_placeholders", "lid_pass_rate", "duplicate_rate",
                           "category_balance"}
    assert checks["no_empty_fields"].passed and checks["no_leftover_placeholders"].passed

    # --- with the translated rows present: the union, licences per user dataset, review rejections ----
    records = _read(data_dir, "source_records")
    assert records.loc[records["dataset"] == "yoruba_proverbs", "license"].eq("CC-BY-4.0").all()
    _write_reviewed_instructions(data_dir, records)
    calls = generator.counts["chat"] + judge.counts["chat"]
    result = _run(resources, _config(schema, allowed_licenses=["CC-BY-SA-4.0", "CC-BY-4.0", "machine-generated",
                                                                "BBC-copyright"]))
    assert result.success
    assert generator.counts["chat"] + judge.counts["chat"] == calls  # re-materialising pays nothing again
    dataset = _read(data_dir, "instruction_dataset")
    per_origin = dataset["origin"].value_counts().to_dict()
    assert per_origin["template"] == 1 and per_origin["self_instruct"] == 1 and per_origin["backtranslation"] > 0
    assert "tmpl1" not in set(dataset["id"])  # rejected in review
    by_id = dataset.set_index("id")
    assert by_id.loc["tmpl0", "license"] == "CC-BY-4.0" and by_id.loc["si0", "license"] == "machine-generated"
    assert "BBC-copyright" in set(dataset["license"])  # allowed now
    assert dataset["id"].is_unique
    card = (data_dir / "instruction_dataset" / "yor.card.md").read_text(encoding="utf-8")
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["language"] == ["yo", "en"] and "other" in front["license"]
    assert NO_TRANSLATED_ROWS not in card and "| template | 1 |" in card and "Threshold: score ≥ 4" in card
    print("counts per origin:", per_origin)
    print("score histogram:", result.asset_materializations_for_node("curated_pairs")[0].metadata[
        "score_counts"].value if result.asset_materializations_for_node("curated_pairs") else "")


def _exported_texts(export: Path) -> dict[str, set[str]]:
    """Every response text in every export file: chat JSONL, Alpaca JSON, Parquet per split, the HF folder."""
    from datasets import load_from_disk

    from instruct_global.lib.export.splits import SPLITS

    texts: dict[str, set[str]] = {}
    for split in SPLITS:
        chat = [json.loads(line) for line in (export / f"{split}.chat.jsonl").read_text("utf-8").splitlines() if line]
        texts[f"{split}.chat.jsonl"] = {m["content"] for row in chat for m in row["messages"] if m["role"] == "assistant"}
        alpaca = json.loads((export / f"{split}.alpaca.json").read_text("utf-8"))
        texts[f"{split}.alpaca.json"] = {row["output"] for row in alpaca}
        texts[f"{split}.parquet"] = set(pd.read_parquet(export / f"{split}.parquet")["output"])
    folder = load_from_disk(str(export / "hf_dataset"))
    texts["hf_dataset"] = {text for split in folder for text in folder[split]["output"]}
    return texts


def test_a_pair_scored_two_reaches_no_export(servers, data_dir: Path, tmp_path: Path) -> None:
    """Issue 10's threshold test end to end: materialize from backtranslation to sft_dataset with a
    scripted judge; a pair scored 2 is in backtranslated_pairs and in no later asset or export file."""
    from instruct_global.assets.export import export_dir, sft_dataset
    from instruct_global.resources.finetuning import HuggingFaceHubResource

    generator, judge, mt, responder = servers
    _write_clean_documents(data_dir)
    resources = {**_resources(tmp_path, generator, judge, mt), "hub": HuggingFaceHubResource()}
    config = _config(_schema_with_licence(tmp_path), allowed_licenses=["CC-BY-SA-4.0", "BBC-copyright"])
    config["ops"]["sft_dataset"] = {"config": {"validation_share": 0.2, "test_share": 0.2, "min_examples": 0}}
    chain = [source_records, backtranslated_pairs, curated_pairs, diversified_pairs, instruction_dataset, sft_dataset]
    result = materialize([CLEAN, *chain], partition_key="yor", resources=resources, run_config=config,
                         selection=[key for asset in chain for key in asset.keys])
    assert result.success

    pairs = _read(data_dir, "backtranslated_pairs")
    by_score: dict[int, set[str]] = {}
    for text, answer in responder.judge_answers.items():
        parsed = parse_score(answer)
        if parsed.ok and text in set(pairs["output"]):
            by_score.setdefault(int(parsed.score), set()).add(text)
    scored_two, kept = by_score.get(2, set()), by_score.get(4, set()) | by_score.get(5, set())
    assert scored_two and kept, "the scripted judge must score some pairs 2 and some 4-5, or this proves nothing"
    assert not scored_two & kept  # each segment judged once

    downstream = {name: set(_read(data_dir, name)["output"])
                  for name in ("curated_pairs", "diversified_pairs", "instruction_dataset", "sft_dataset")}
    downstream.update(_exported_texts(export_dir("yor")))
    for name, texts in downstream.items():
        assert not scored_two & texts, f"a pair scored 2 reached {name}"
    # the exports are not empty by accident: the pairs scored 4-5 are there, in every format
    everywhere = set.union(*(t for n, t in downstream.items() if n.startswith(("train", "validation", "test"))))
    assert kept <= everywhere and kept <= downstream["hf_dataset"] and kept <= downstream["sft_dataset"]


def test_review_of_backtranslated_pairs_survives_rematerialisation(servers, data_dir: Path, tmp_path: Path) -> None:
    generator, judge, mt, _ = servers
    _write_clean_documents(data_dir)
    schema = _schema_with_licence(tmp_path)
    resources = _resources(tmp_path, generator, judge, mt)
    assert _run(resources, _config(schema)).success
    outbox = data_dir / "review" / "curated" / "outbox" / "yor.csv"
    sheet = pd.read_csv(outbox, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    dataset = _read(data_dir, "instruction_dataset")
    assert set(sheet["id"]) == set(dataset["id"]) and len(sheet) >= 2
    corrected_id, rejected_id = sheet["id"].iloc[0], sheet["id"].iloc[1]
    fixed = "Kọ àpilẹ̀kọ kúkúrú nípa ọjà ní èdè Yorùbá."
    sheet.loc[sheet["id"] == corrected_id, ["corrected_instruction", "approved"]] = [fixed, "yes"]
    sheet.loc[sheet["id"] == rejected_id, ["approved", "reviewer_note"]] = ["no", "kò bá ìdáhùn mu"]
    inbox = data_dir / "review" / "curated" / "inbox"
    inbox.mkdir(parents=True)
    sheet.to_csv(inbox / "yor.csv", index=False, encoding="utf-8-sig")
    then = time.time() - 120  # as if dropped two minutes ago: past the sensor's settle time
    os.utime(inbox / "yor.csv", (then, then))

    requests = list(curated_review_inbox_sensor(build_sensor_context()))
    assert len(requests) == 1 and requests[0].partition_key == "yor"
    config = requests[0].run_config
    assert config == {"ops": {"instruction_dataset": {"config": {"returned_sheet": str(inbox / "yor.csv")}}}}
    assert _run(resources, config, selection=[*instruction_dataset.keys, *curated_review_sheet.keys]).success
    dataset = _read(data_dir, "instruction_dataset").set_index("id")
    assert dataset.loc[corrected_id, "instruction"] == fixed
    assert dataset.loc[corrected_id, "review_status"] == "corrected"
    assert rejected_id not in dataset.index
    assert not (inbox / "yor.csv").exists()  # archived: never applied twice
    rejects = _read(data_dir, "instruction_dataset_rejects")
    assert rejects.loc[rejects["id"] == rejected_id, "reason"].tolist() == ["rejected_in_review"]
    remaining = pd.read_csv(outbox, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert corrected_id not in set(remaining["id"])

    # the whole chain again (answers from the cache, same ids): the stored edits still apply
    assert _run(resources, _config(schema)).success
    dataset = _read(data_dir, "instruction_dataset").set_index("id")
    assert dataset.loc[corrected_id, "instruction"] == fixed and rejected_id not in dataset.index


def test_curate_job_runs_from_the_cli(tmp_path: Path) -> None:
    """`dagster job execute` of curate_job on the shipped samples, the LLM an OpenAI-compatible server."""
    home, data = tmp_path / "home", tmp_path / "data"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO_ROOT / "dagster.yaml").read_text())
    config = yaml.safe_load((REPO_ROOT / "instruct_global" / "configs" / "sample_run.yaml").read_text())
    config["ops"].update({
        "backtranslated_pairs": {"config": {"min_tokens": 8, "max_per_document": 3}},
        "instruction_dataset": {"config": {"allowed_licenses": ["CC-BY-SA-4.0", "BBC-copyright", "unspecified"]}},
    })
    # one process for all steps: each step process would import torch and transformers again
    config["execution"] = {"config": {"in_process": {}}}
    config_path = tmp_path / "run.yaml"
    config_path.write_text(yaml.safe_dump(config))
    with OpenAIServer() as server:
        server.responder = CurateResponder()
        env = {**os.environ, "DAGSTER_HOME": str(home), "INSTRUCT_GLOBAL_DATA_DIR": str(data),
               "INSTRUCT_GLOBAL_LLM": "openai-compatible", "INSTRUCT_GLOBAL_LLM_BASE_URL": server.base_url,
               "INSTRUCT_GLOBAL_LLM_MODEL": "local-model", "PYTHONPATH": str(REPO_ROOT),
               "INSTRUCT_GLOBAL_MODEL_CACHE": str(tmp_path / "models")}
        completed = subprocess.run(
            [str(Path(sys.executable).with_name("dagster")), "job", "execute", "-m", "instruct_global.definitions",
             "-j", "curate_job", "-c", str(config_path), "--tags", '{"dagster/partition": "yor"}'],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
        )
        assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
        assert server.counts["chat"] > 0
    assert "RUN_SUCCESS" in completed.stdout + completed.stderr
    dataset = pd.read_parquet(data / "instruction_dataset" / "yor.parquet")
    assert len(dataset) > 0 and set(dataset["origin"]) == {"backtranslation"}
    assert (data / "instruction_dataset" / "yor.card.md").read_text(encoding="utf-8").startswith("---\n")


def test_second_curation_round_through_the_assets(servers, data_dir: Path, tmp_path: Path) -> None:
    generator, judge, mt, _ = servers
    _write_clean_documents(data_dir)
    resources = _resources(tmp_path, generator, judge, mt)
    config = {"ops": {
        "backtranslated_pairs": {"config": {"min_tokens": 8, "max_per_document": 3}},
        "curated_pairs": {"config": {"threshold": 4, "iterations": 2, "few_shot_examples": 2}},
    }}
    keys = [*backtranslated_pairs.keys, *curated_pairs.keys]
    result = materialize(ALL, partition_key="yor", resources=resources, run_config=config, selection=keys)
    assert result.success
    pairs, curated = _read(data_dir, "backtranslated_pairs"), _read(data_dir, "curated_pairs")
    # round 2 regenerated every segment with curated pairs as examples, and the new pairs were judged
    # (a pair whose instruction came out the same is judged from the cache)
    round_two = [p for p in generator.responder.generation_prompts if "Examples of good answers" in p]
    assert len(round_two) == len(pairs) and len(pairs) < judge.counts["chat"] <= 2 * len(pairs)
    assert curated["id"].is_unique and set(curated["iteration"]) <= {1, 2} and (curated["curation_score"] >= 4).all()
    assert 2 in set(curated["iteration"])
    meta = result.asset_materializations_for_node("curated_pairs")[0].metadata
    assert meta["iterations"].value == 2


def test_an_empty_partition_gives_empty_outputs_not_errors(servers, data_dir: Path, tmp_path: Path) -> None:
    generator, judge, mt, _ = servers
    clean = _write_clean_documents(data_dir).iloc[0:0]
    write_parquet_atomic(clean, data_dir / "clean_documents" / "yor.parquet")
    result = _run(_resources(tmp_path, generator, judge, mt), _config(_schema_with_licence(tmp_path)))
    assert result.success
    assert generator.counts["chat"] == 0 and judge.counts["chat"] == 0
    for name in ("backtranslated_pairs", "curated_pairs", "diversified_pairs", "instruction_dataset"):
        assert _read(data_dir, name).empty, name
    assert (data_dir / "instruction_dataset" / "yor.card.md").exists()
