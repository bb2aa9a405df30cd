"""The dataset union: review rejections, licences, duplicates, ids; the card and the checks."""

from __future__ import annotations

import json
import math

import pandas as pd
import yaml

from instruct_global.lib.curate import checks
from instruct_global.lib.curate.card import CardInputs, render_card, size_category
from instruct_global.lib.curate.dataset import (
    DATASET_COLUMNS,
    DatasetSettings,
    build_dataset,
    target_language_text,
    translated_rows,
)
from instruct_global.lib.curate.licenses import BBC_COPYRIGHT, CC_BY_SA_4, DEFAULT_ALLOWED, MACHINE_GENERATED

GEN = json.dumps({"backend": "openai", "model": "gpt-4o-mini", "params": {"temperature": 0.7}})


def _reviewed() -> pd.DataFrame:
    base = {"lang": "yor", "input": "", "input_en": "", "output_en": "", "checks": "[]", "dataset": "",
            "record_id": "", "translation_strategy": "sentinel"}
    return pd.DataFrame([
        {**base, "id": "t1", "category": "question-answer", "instruction": "Kí ni ìtumọ̀ òwe yìí?",
         "output": "Ó túmọ̀ sí pé sùúrù ṣe pàtàkì.", "instruction_en": "What does this proverb mean?",
         "origin": "template", "dataset": "yoruba_proverbs", "record_id": "r1", "instruction_id": "i1",
         "review_status": "approved"},
        {**base, "id": "t2", "category": "question-answer", "instruction": "Kí ni ìtumọ̀ òwe mìíràn?",
         "output": "Ìtumọ̀ rẹ̀ ni pé ọmọdé gbọ́dọ̀ bọ̀wọ̀ fún àgbà.", "instruction_en": "What does it mean?",
         "origin": "template", "dataset": "yoruba_proverbs", "record_id": "r2", "instruction_id": "i1",
         "review_status": "rejected"},
        {**base, "id": "s1", "category": "brainstorming", "instruction": "Dárúkọ oúnjẹ márùn-ún.",
         "output": "Iṣu, ẹ̀wà, àmàlà, ẹ̀fọ́, dòdò.", "instruction_en": "Name five foods.",
         "origin": "self_instruct", "instruction_id": "i2", "review_status": "unreviewed"},
    ])


def _pair(pid: str, output: str, license_: str, score: float) -> dict[str, object]:
    row = {c: "" for c in DATASET_COLUMNS}
    row.update({"id": pid, "lang": "yor", "category": "generation", "instruction": "Write about the market. "
                "Answer in Yoruba.", "instruction_lang": "eng", "instruction_en": "Write about the market.",
                "output": output, "origin": "backtranslation", "doc_id": "d", "chunk_id": pid, "source": "wikipedia",
                "source_url": "https://yo.wikipedia.org/wiki/X", "license": license_, "generator": GEN,
                "judge": GEN, "curation_score": score, "checks": "[]", "review_status": "unreviewed"})
    return row


TEXT = "Ọjà Ọba jẹ́ ọ̀kan lára àwọn ọjà tó gbajúmọ̀ jùlọ ní ìlú Ìbàdàn, àwọn oníṣòwò sì ń wá láti ìlú kéékèèké."


def _pairs() -> pd.DataFrame:
    return pd.DataFrame([
        _pair("b1", TEXT, CC_BY_SA_4, 4.0),
        _pair("b2", TEXT.replace("kéékèèké", "ńlá"), CC_BY_SA_4, 5.0),  # near duplicate of b1, scored higher
        _pair("b3", "Ìròyìn BBC nípa ìdìbò tó wáyé ní ìpínlẹ̀ Ọ̀yọ́ lánàá, àwọn ará ìlú jáde.", BBC_COPYRIGHT, 5.0),
        _pair("b4", "Ọmọ náà lọ sí ilé ìwé ní àárọ̀ ọjọ́ Ajé pẹ̀lú ìyá rẹ̀ àti àbúrò rẹ̀ obìnrin.", CC_BY_SA_4, 4.0),
    ])


def test_union_filters_and_provenance() -> None:
    templates = translated_rows(_reviewed(), {"r1": "CC-BY-4.0"}, generator=GEN, translator="")
    built = build_dataset([templates, _pairs()], DatasetSettings(allowed_licenses=DEFAULT_ALLOWED))
    rows = built.rows
    assert list(rows.columns[: len(DATASET_COLUMNS)]) == list(DATASET_COLUMNS)
    assert sorted(rows["id"]) == ["b2", "b4", "s1", "t1"]
    assert built.reasons == {"rejected_in_review": 1, f"license_not_allowed:{BBC_COPYRIGHT}": 1, "near_duplicate": 1}
    assert dict(built.rows_in) == {"template": 2, "self_instruct": 1, "backtranslation": 4}
    by_id = rows.set_index("id")
    assert by_id.loc["t1", "license"] == "CC-BY-4.0" and by_id.loc["s1", "license"] == MACHINE_GENERATED
    assert by_id.loc["t1", "instruction_lang"] == "yor" and math.isnan(by_id.loc["t1", "curation_score"])
    near = built.rejects[built.rejects["reason"] == "near_duplicate"].iloc[0]
    assert near["id"] == "b1" and near["duplicate_of"] == "b2"  # the better-scored pair wins
    assert rows["id"].is_unique
    assert rows[[c for c in DATASET_COLUMNS if c != "curation_score"]].map(lambda v: isinstance(v, str)).all().all()


def test_bbc_allowed_when_listed_and_english_instruction_not_in_dedupe_text() -> None:
    built = build_dataset([_pairs()], DatasetSettings(allowed_licenses=(CC_BY_SA_4, BBC_COPYRIGHT)))
    assert "b3" in set(built.rows["id"])
    assert "Write about the market" not in target_language_text(_pair("x", TEXT, CC_BY_SA_4, 4.0))


def test_empty_fields_are_dropped_and_nothing_in_gives_nothing_out() -> None:
    pairs = _pairs()
    pairs.loc[0, "output"] = "  "
    built = build_dataset([pairs], DatasetSettings(allowed_licenses=DEFAULT_ALLOWED))
    assert built.reasons["empty_field"] == 1
    assert build_dataset([], DatasetSettings(allowed_licenses=DEFAULT_ALLOWED)).rows.empty


def test_card_has_the_hub_header_and_the_story() -> None:
    built = build_dataset([_pairs()], DatasetSettings(allowed_licenses=DEFAULT_ALLOWED))
    card = render_card(CardInputs(
        lang_key="yor", language="Yoruba", language_code="yo", rows=built.rows, filters=dict(built.reasons),
        allowed_licenses=DEFAULT_ALLOWED, rows_in=dict(built.rows_in),
        curation={"threshold": 4, "judged": 10, "kept": 4, "unparsed": 2, "score_histogram": {"2": 3, "4": 2}},
        notes=["no template or self-instruct rows"]))
    assert card.startswith("---\n")
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["language"] == ["yo", "en"] and front["license"] == "cc-by-sa-4.0"
    assert front["size_categories"] == ["n<1K"] and front["source_datasets"] == ["extended|wikipedia"]
    assert "text-generation" in front["task_categories"]
    for text in ("| backtranslation | 2 |", "license_not_allowed:BBC-copyright", "near_duplicate",
                 "gpt-4o-mini", "Threshold: score ≥ 4", "no template or self-instruct rows", "@inproceedings",
                 "Creative Commons Attribution-ShareAlike 4.0"):
        assert text in card, text
    assert size_category(1000) == "1K<n<10K"


def test_checks_catch_what_they_check() -> None:
    rows = _pairs()
    assert checks.no_empty_fields(rows).passed
    rows.loc[1, "category"] = ""
    assert not checks.no_empty_fields(rows).passed
    rows.loc[2, "output"] = "Kọ nípa {variable_1}."
    assert not checks.no_leftover_placeholders(rows).passed
    assert checks.duplicate_rate({"near_duplicate": 1}, 10, 0.3).passed
    assert not checks.duplicate_rate({"near_duplicate": 5}, 10, 0.3).passed
    balanced = checks.category_balance(rows.assign(category="generation"), {"generation": 1.0}, 0.1)
    skewed = checks.category_balance(rows.assign(category="generation"), {"generation": 0.5, "chat": 0.5}, 0.1)
    assert balanced.passed and not skewed.passed and "chat" in skewed.description

    class Lid:
        def __init__(self, lang: str) -> None:
            self.lang, self.score = lang, 0.9

    passed = checks.lid_pass_rate(rows, "yor", lambda t: Lid("yor"), 0.5)
    failed = checks.lid_pass_rate(rows, "yor", lambda t: Lid("eng"), 0.5)
    assert passed.passed and passed.value == 1.0 and not failed.passed
