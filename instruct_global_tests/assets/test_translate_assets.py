"""English → Yoruba through the real Google v3 SDK against the local server; fill; review round trip."""

from __future__ import annotations

import json
import os
import re
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from dagster import SkipReason, build_sensor_context, materialize

from instruct_global.assets.corpus import source_records
from instruct_global.assets.generate import self_instruct_instructions, skeleton_questions
from instruct_global.assets.translate import (
    filled_instructions,
    review_sheet,
    reviewed_instructions,
    translated_instructions,
)
from instruct_global.lib.common.placeholders import find_placeholders
from instruct_global.resources.call_cache import CallCacheResource
from instruct_global.resources.parquet_io import PartitionedParquetIOManager
from instruct_global.resources.translation_google import GoogleTranslator
from instruct_global.sensors import review_inbox_sensor
from instruct_global_tests.conftest import REPO_ROOT
from instruct_global_tests.fixtures.google_translate_server import GoogleTranslateServer
from instruct_global_tests.fixtures.llm_testing import openai_llm
from instruct_global_tests.fixtures.openai_server import OpenAIServer
from instruct_global_tests.fixtures.scripted_llm import GenerationResponder

SCHEMA = REPO_ROOT / "data" / "schema" / "yor" / "input_schema.csv"
SEEDS = REPO_ROOT / "data" / "seed_tasks" / "seed_tasks.jsonl"
YORUBA_WORDS = ["ọjà", "àgbẹ̀", "òjò", "ilé", "ìwé", "olùkọ́", "ọmọ", "ìtàn", "òwe", "orin", "ìlù", "ọdún", "ẹbí", "àgbà", "ìyá", "bàbá", "oníṣòwò", "owó", "iṣu", "àgbàdo", "ẹja", "omi", "ọ̀nà", "ìlú", "abúlé", "ìròyìn", "ìlera", "àṣà", "oúnjẹ", "ọ̀rọ̀", "ẹ̀kọ́", "àlàyé", "kọ", "sọ", "ṣe", "fún", "wa", "nípa", "àti", "pẹ̀lú"]
KEEP = re.compile(r"(\{variable_\d+\}|_{1,3}\s*[Vv]\s*\d+\s*_{1,3})")


def fake_yoruba(text: str, source: str | None, target: str) -> str:
    """Word-for-word 'Yoruba' that keeps placeholders and sentinels; hostile on marked inputs."""
    if zlib.crc32(text.encode()) % 7 == 0 and "variable" not in text:
        return "Error 500: quota exceeded for this project"  # an API error page must never become data
    out = []
    for token in KEEP.split(text):
        if KEEP.fullmatch(token):
            out.append(token)
        else:
            words = token.split()
            out.append(" ".join(YORUBA_WORDS[(len(w) * 7 + i) % len(YORUBA_WORDS)] for i, w in enumerate(words)))
    return " ".join(p for p in out if p)


@pytest.fixture
def servers() -> Iterator[tuple[OpenAIServer, GoogleTranslateServer]]:
    with OpenAIServer() as llm_server, GoogleTranslateServer(translate=fake_yoruba) as mt_server:
        llm_server.responder = GenerationResponder(seed=3, hostile=False)
        yield llm_server, mt_server


def _resources(tmp_path: Path, llm_server: OpenAIServer, mt_server: GoogleTranslateServer) -> dict:
    return {
        "io_manager": PartitionedParquetIOManager(),
        "llm": openai_llm(llm_server, tmp_path / "calls.sqlite"),
        "translator": GoogleTranslator(
            cache=CallCacheResource(url=str(tmp_path / "calls.sqlite")), project_id="test-project",
            api_endpoint=mt_server.url, anonymous_credentials_for_testing=True,
            backoff_initial_s=0.01, backoff_max_s=0.05, timeout_s=5.0,
        ),
    }


BASE_CONFIG = {
    "source_records": {"config": {"schema_csv": str(SCHEMA)}},
    "skeleton_questions": {"config": {"dataset_size": 30, "templates_per_dataset": 3}},
    "self_instruct_instructions": {"config": {"target_count": 12, "seed_tasks_path": str(SEEDS),
                                              "prompts_per_round": 2, "tasks_per_prompt": 6}},
}
ALL = [source_records, skeleton_questions, self_instruct_instructions, translated_instructions,
       filled_instructions, reviewed_instructions, review_sheet]  # fmt: skip
DOWNSTREAM = [translated_instructions, filled_instructions, reviewed_instructions, review_sheet]


def _run(assets, resources, config=None, **kwargs):
    return materialize(assets, partition_key="yor", resources=resources, run_config={"ops": BASE_CONFIG if config is None else config},
                       selection=kwargs.get("selection"), raise_on_error=kwargs.get("raise_on_error", True))


def _read(data_dir: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(data_dir / name / "yor.parquet")


def _settled(path: Path) -> None:
    """Age a returned sheet past the sensor's settle time, as if dropped a minute ago."""
    then = time.time() - 120
    os.utime(path, (then, then))


def test_translate_fill_and_review_round_trip(servers, data_dir: Path, tmp_path: Path) -> None:
    llm_server, mt_server = servers
    resources = _resources(tmp_path, llm_server, mt_server)
    assert _run(ALL, resources).success

    translated = _read(data_dir, "translated_instructions")
    for _, row in translated.iterrows():
        for field in ("instruction", "input", "output"):
            assert sorted(find_placeholders(row[field])) == sorted(find_placeholders(row[f"{field}_en"]))
            assert "Error 500" not in row[field]
    rejects = _read(data_dir, "translation_rejects")
    assert rejects["reason"].str.contains("error_text").any()

    # no value of the user's datasets (already Yoruba, or English meant to stay English) was translated
    records = _read(data_dir, "source_records")
    values = {v for variables in records["variables"] for v in json.loads(variables).values() if len(v) > 3}
    sent = {text for request in mt_server.translate_requests for text in request.contents}
    assert not values & sent

    # exactly the quota per dataset; values inserted verbatim
    filled = _read(data_dir, "filled_instructions")
    skeletons = _read(data_dir, "skeleton_questions")
    quotas = skeletons.groupby("dataset")["quota"].first().to_dict()
    assert filled.groupby("dataset").size().to_dict() == quotas
    assert filled["id"].is_unique
    record_by_id = records.set_index("record_id")
    for _, row in filled.head(10).iterrows():
        variables = json.loads(record_by_id.loc[row["record_id"], "variables"])
        text = " ".join([row["instruction"], row["input"], row["output"]])
        assert all(value in text for value in variables.values())

    # --- a reviewer edits the CSV sheet and drops it in the inbox -------------------------------
    sheet_csv = data_dir / "review" / "outbox" / "yor.csv"
    sheet = pd.read_csv(sheet_csv, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert len(sheet) == len(_read(data_dir, "reviewed_instructions"))
    by_dataset = sheet.merge(filled[["id", "dataset", "instruction_id"]], on="id")
    first, second, third = (by_dataset[by_dataset["dataset"] == d].iloc[0] for d in sorted(quotas))
    edited = sheet.copy()
    edited.loc[edited["id"] == first["id"], ["corrected_output", "approved"]] = [first["output"] + " (àtúnṣe)", "yes"]
    edited.loc[edited["id"] == second["id"], "approved"] = "✓"
    edited.loc[edited["id"] == third["id"], ["approved", "reviewer_note"]] = ["no", "kò tọ́"]
    inbox = data_dir / "review" / "inbox"
    inbox.mkdir(parents=True)
    edited.to_csv(inbox / "yor.csv", index=False, encoding="utf-8-sig")
    _settled(inbox / "yor.csv")

    requests = list(review_inbox_sensor(build_sensor_context()))
    assert len(requests) == 1 and requests[0].partition_key == "yor"
    result = materialize(ALL, partition_key="yor", resources=resources, run_config=requests[0].run_config,
                         selection=[reviewed_instructions, review_sheet])
    assert result.success
    meta = result.asset_materializations_for_node("reviewed_instructions")[0].metadata
    assert (meta["review/approved"].value, meta["review/corrected"].value, meta["review/rejected"].value) == (1, 1, 1)
    reviewed = _read(data_dir, "reviewed_instructions").set_index("id")
    assert reviewed.loc[first["id"], "output"].endswith("(àtúnṣe)")
    assert not (inbox / "yor.csv").exists()  # archived, never applied twice
    assert len(pd.read_csv(sheet_csv, dtype=str, encoding="utf-8-sig")) == len(sheet) - 3

    # --- a malformed XLSX sheet is reported row by row and nothing of it is applied ------------
    xlsx = data_dir / "review" / "outbox" / "yor.xlsx"
    book = openpyxl.load_workbook(xlsx)
    table = book.active
    header = [c.value for c in table[1]]
    table.cell(row=2, column=header.index("id") + 1, value="no-such-id")
    table.cell(row=3, column=header.index("approved") + 1, value="yes")
    book.save(inbox / "yor.xlsx")
    bad = materialize(ALL, partition_key="yor", resources=resources, raise_on_error=False,
                      selection=[reviewed_instructions],
                      run_config={"ops": {"reviewed_instructions": {"config": {"returned_sheet": str(inbox / "yor.xlsx")}}}})
    assert not bad.success
    failure = next(e for e in bad.all_events if e.is_step_failure)
    assert "row 2" in str(failure.event_specific_data) and "no-such-id" in str(failure.event_specific_data)
    store = (data_dir / "review" / "store" / "yor.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(store) == 3

    # --- the English source of one reviewed row changes upstream: only it is flagged ----------
    skeletons.loc[skeletons["instruction_id"] == first["instruction_id"], "instruction_en"] += " Be brief."
    skeletons.to_parquet(data_dir / "skeleton_questions" / "yor.parquet", index=False)
    (inbox / "yor.xlsx").unlink()

    # --- a valid XLSX comes back: one more approval, applied through the sensor ---------------
    book = openpyxl.load_workbook(xlsx)
    table = book.active
    header = [c.value for c in table[1]]
    template_of = dict(zip(filled["id"], filled["instruction_id"], strict=True))
    row_number = next(r for r in range(2, table.max_row + 1)
                      if template_of.get(table.cell(row=r, column=header.index("id") + 1).value)
                      not in (None, first["instruction_id"]))
    fourth_id = table.cell(row=row_number, column=header.index("id") + 1).value
    table.cell(row=row_number, column=header.index("approved") + 1, value="Yes")
    book.save(inbox / "yor.xlsx")
    _settled(inbox / "yor.xlsx")
    requests = list(review_inbox_sensor(build_sensor_context()))
    assert [r.partition_key for r in requests] == ["yor"]
    assert materialize(ALL, partition_key="yor", resources=resources, run_config=requests[0].run_config,
                       selection=[reviewed_instructions, review_sheet]).success
    assert _read(data_dir, "reviewed_instructions").set_index("id").loc[fourth_id, "review_status"] == "approved"
    assert not (inbox / "yor.xlsx").exists()
    assert _run(ALL, resources, config={}, selection=DOWNSTREAM).success
    after = _read(data_dir, "reviewed_instructions").set_index("id")
    flagged = set(after.index[after["review_status"] == "needs_review_again"])
    assert after.loc[second["id"], "review_status"] == "approved"
    assert after.loc[third["id"], "review_status"] == "rejected"
    assert after.loc[fourth_id, "review_status"] == "approved"
    assert flagged == {first["id"]}


def test_review_sensor_waits_until_a_returned_sheet_stops_changing(data_dir: Path) -> None:
    """A sheet still being copied into the inbox must not be applied (and archived) half-written."""
    inbox = data_dir / "review" / "inbox"
    inbox.mkdir(parents=True)
    sheet = inbox / "yor.csv"
    sheet.write_text("id,approved\r\n", encoding="utf-8")  # the first bytes of a sheet being copied
    assert isinstance(review_inbox_sensor(build_sensor_context()), SkipReason)
    _settled(sheet)
    [request] = review_inbox_sensor(build_sensor_context())
    assert request.partition_key == "yor"
    assert request.run_config["ops"]["reviewed_instructions"]["config"]["returned_sheet"] == str(sheet)


def _unused_llm(tmp_path: Path):
    """The graph's LLM resource; these tests select only translation, so it is never called."""
    from instruct_global.resources.llm_openai import OpenAICompatibleLLM

    return OpenAICompatibleLLM(model="unused", base_url="http://127.0.0.1:9/v1",
                               cache=CallCacheResource(url=str(tmp_path / "llm.sqlite")))


def _english_frames(data_dir: Path) -> None:
    """Upstream English rows written as the generate stage would have (no LLM needed here)."""
    common = {"max_rouge_l": float("nan")}
    templates = pd.DataFrame([
        {"instruction_id": "t1", "category": "question-answer", "instruction_en": "Explain this proverb: {variable_1}",
         "input_en": "", "output_en": "{variable_2}", "origin": "template", "dataset": "yoruba_proverbs", "quota": 2},
        {"instruction_id": "t2", "category": "question-answer",
         "instruction_en": "What does the saying mean? Answer in two sentences. Keep it short.",
         "input_en": "{variable_1}", "output_en": "{variable_2}", "origin": "template", "dataset": "yoruba_proverbs",
         "quota": 2},
    ]).assign(**common)
    tasks = pd.DataFrame([
        {"instruction_id": "s1", "category": "brainstorming", "instruction_en": "List three ways to save water at home.",
         "input_en": "", "output_en": "Fix leaks. Collect rain water. Turn off taps.", "origin": "self_instruct",
         "dataset": ""},
    ]).assign(**common)
    for name, frame in (("skeleton_questions", templates), ("self_instruct_instructions", tasks)):
        (data_dir / name).mkdir(parents=True)
        frame.to_parquet(data_dir / name / "yor.parquet", index=False)


def test_translation_through_the_nllb_code_path_on_a_tiny_model(data_dir: Path, tmp_path: Path) -> None:
    """The real transformers NLLB path end to end; random weights give junk, so the checks decide."""
    from instruct_global.resources.translation_nllb import NLLBTranslator
    from instruct_global_tests.fixtures.tiny_nllb import build_tiny_nllb

    _english_frames(data_dir)
    model = build_tiny_nllb(tmp_path / "tiny-nllb")

    def run():
        translator = NLLBTranslator(cache=CallCacheResource(url=str(tmp_path / "calls.sqlite")), model_name=str(model),
                                    device="cpu", num_beams=1, max_length_ratio=1.5, max_new_tokens=24)
        return materialize(ALL, partition_key="yor", selection=[translated_instructions],
                           resources={"io_manager": PartitionedParquetIOManager(), "translator": translator,
                                      "llm": _unused_llm(tmp_path)})

    first = run()
    assert first.success
    kept, rejects = _read(data_dir, "translated_instructions"), _read(data_dir, "translation_rejects")
    assert len(kept) + len(rejects) == 3
    for _, row in kept.iterrows():  # whatever survived holds exactly its placeholders
        for field in ("instruction", "input", "output"):
            assert sorted(find_placeholders(row[field])) == sorted(find_placeholders(row[f"{field}_en"]))
    assert (rejects["reason"].str.len() > 0).all()
    meta = first.asset_materializations_for_node("translated_instructions")[0].metadata
    assert meta["backend"].value == "nllb" and meta["mt/calls"].value > 0
    second = run()
    assert second.asset_materializations_for_node("translated_instructions")[0].metadata["mt/calls"].value == 0


def test_language_without_a_backend_fails_naming_language_and_backend(data_dir: Path, tmp_path: Path) -> None:
    from instruct_global.resources.translation_nllb import NLLBTranslator

    _english_frames(data_dir)
    (data_dir / "skeleton_questions" / "yor.parquet").rename(data_dir / "skeleton_questions" / "pcm.parquet")
    (data_dir / "self_instruct_instructions" / "yor.parquet").rename(data_dir / "self_instruct_instructions" / "pcm.parquet")
    translator = NLLBTranslator(cache=CallCacheResource(url=str(tmp_path / "c.sqlite")), model_name="unused")
    result = materialize(ALL, partition_key="pcm", selection=[translated_instructions], raise_on_error=False,
                         resources={"io_manager": PartitionedParquetIOManager(), "translator": translator,
                                      "llm": _unused_llm(tmp_path)})
    assert not result.success
    # the translator's preflight refuses the partition when the step sets it up, before anything loads
    failure = "\n".join(str(e.event_specific_data) for e in result.all_events if e.is_failure)
    assert "Nigerian Pidgin (pcm)" in failure and "'nllb'" in failure


def test_a_backend_that_translates_nothing_fails_the_step_with_its_error(data_dir: Path, tmp_path: Path) -> None:
    from instruct_global_tests.fixtures.google_translate_server import Fault

    _english_frames(data_dir)
    with GoogleTranslateServer() as mt_server:
        mt_server.inject(Fault(status=403, times=None, message="Cloud Translation API has not been used in project"))
        translator = GoogleTranslator(
            cache=CallCacheResource(url=str(tmp_path / "calls.sqlite")), project_id="test-project",
            api_endpoint=mt_server.url, anonymous_credentials_for_testing=True, max_retries=0, timeout_s=5.0,
        )
        result = materialize(ALL, partition_key="yor", selection=[translated_instructions], raise_on_error=False,
                             resources={"io_manager": PartitionedParquetIOManager(), "translator": translator,
                                        "llm": _unused_llm(tmp_path)})
    assert not result.success
    failure = str(next(e for e in result.all_events if e.is_step_failure).event_specific_data)
    assert "translated nothing" in failure and "has not been used" in failure
    assert not (data_dir / "translated_instructions" / "yor.parquet").exists()
