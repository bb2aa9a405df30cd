"""Translated rows (checked, rejected with reasons) and filled rows (exact quotas, stable ids, verbatim values)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from instruct_global.lib.translate.target_rows import fill_templates, translate_rows

YORUBA = {"Write a proverb about": "Kọ òwe kan nípa", "Explain the meaning of": "Ṣàlàyé ìtumọ̀"}


def _english(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"instruction_id": iid, "category": "generation", "instruction_en": instruction, "input_en": input_,
             "output_en": output, "origin": "template", "dataset": "proverbs"}
            for iid, instruction, input_, output in rows
        ]
    )  # fmt: skip


def _fake_mt(texts: list[str]) -> list[str | None]:
    out: list[str | None] = []
    for text in texts:
        if text.startswith("Fail"):
            out.append(None)
        elif text.startswith("Break"):
            out.append("Ẹ jọ̀ọ́ kọ nǹkan kan nípa {variable_3}")  # sentinel lost, a placeholder invented
        elif text.startswith("Overload"):
            out.append("Error 503: Service Unavailable, quota exceeded")
        elif text.startswith("Copy"):
            out.append(text)
        else:
            for english, yoruba in YORUBA.items():
                text = text.replace(english, yoruba)
            out.append(text)
    return out


def test_only_rows_with_every_field_sound_are_kept() -> None:
    english = _english([
        ("good", "Write a proverb about {variable_1}.", "", "{variable_2}"),
        ("lost", "Break this sentence about {variable_1} please.", "", "{variable_2}"),
        ("error", "Overload the service with {variable_1} now.", "", "{variable_2}"),
        ("copied", "Copy these English words about {variable_1} unchanged.", "", "{variable_2}"),
        ("failed", "Explain the meaning of {variable_1}.", "Fail to translate this input.", "{variable_2}"),
    ])  # fmt: skip
    result = translate_rows(english, "yor", _fake_mt)
    assert list(result.rows["instruction_id"]) == ["good"]
    assert result.rows.iloc[0]["instruction"] == "Kọ òwe kan nípa {variable_1}."
    reasons = dict(zip(result.rejects["instruction_id"], result.rejects["reason"], strict=True))
    assert reasons["lost"].startswith("instruction:placeholder_")  # both strategies failed
    assert "error_text" in reasons["error"]
    assert "untranslated" in reasons["copied"]
    assert reasons["failed"].startswith("input:translation_failed")


def _templates(ids: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"id": f"tr-{iid}", "lang": "yor", "category": "generation", "instruction": f"Kọ òwe ({iid}) nípa {{variable_1}}.",
             "input": "", "output": "{variable_2}", "instruction_en": f"Write a proverb ({iid}) about {{variable_1}}.",
             "input_en": "", "output_en": "{variable_2}", "origin": "template", "dataset": "proverbs",
             "instruction_id": iid, "record_id": "", "checks": "[]", "review_status": "unreviewed",
             "translation_strategy": "sentinel"}
            for iid in ids
        ]
    )  # fmt: skip


def _records(n: int) -> pd.DataFrame:
    values = [{"variable_1": f"ọjà {i} {{variable_2}} \\n", "variable_2": f"Àgbẹ̀ {i}"} for i in range(n)]
    return pd.DataFrame(
        [
            {"record_id": f"r{i}", "dataset": "proverbs", "variables": json.dumps(v, ensure_ascii=False),
             "row_number": i + 1}
            for i, v in enumerate(values)
        ]
    )  # fmt: skip


def test_fill_meets_the_quota_exactly_with_unique_stable_ids_and_verbatim_values() -> None:
    templates, records = _templates(["t1", "t2", "t3"]), _records(5)
    first = fill_templates(templates, records, {"proverbs": 11}, "yor")
    again = fill_templates(templates, records, {"proverbs": 11}, "yor")
    assert len(first.rows) == 11 and first.rows["id"].is_unique and not first.shortfall
    assert first.rows.equals(again.rows)
    variables = dict(zip(records["record_id"], records["variables"], strict=True))
    for row in first.rows.to_dict("records"):
        values = json.loads(variables[row["record_id"]])
        assert values["variable_1"] in row["instruction"]  # "{variable_2}" inside a value stays literal
        assert row["output"] == values["variable_2"]
    short = fill_templates(templates, records, {"proverbs": 20}, "yor")
    assert len(short.rows) == 15 and short.shortfall == {"proverbs": 5}


def test_a_template_rejected_by_translation_only_frees_its_own_slot() -> None:
    skeletons = _templates(["t1", "t2", "t3"])[["instruction_id", "dataset"]]
    records = _records(6)
    full = fill_templates(
        _templates(["t1", "t2", "t3"]), records, {"proverbs": 8}, "yor", skeletons=skeletons
    )
    assert full.rows.equals(
        fill_templates(_templates(["t1", "t2", "t3"]), records, {"proverbs": 8}, "yor").rows
    )
    without_t2 = fill_templates(
        _templates(["t1", "t3"]), records, {"proverbs": 8}, "yor", skeletons=skeletons
    )
    assert len(without_t2.rows) == 8 and without_t2.rows["id"].is_unique
    kept = full.rows[full.rows["instruction_id"] != "t2"]
    assert set(kept["id"]) <= set(without_t2.rows["id"])  # reviews of t1 and t3 rows stay attached
    merged = kept.merge(without_t2.rows, on="id", suffixes=("", "_now"))
    assert (merged["instruction_id"] == merged["instruction_id_now"]).all()


def test_translated_templates_unknown_to_the_skeletons_are_an_error() -> None:
    skeletons = _templates(["t1"])[["instruction_id", "dataset"]]
    with pytest.raises(ValueError, match="missing from the skeletons"):
        fill_templates(_templates(["t1", "t9"]), _records(2), {"proverbs": 2}, "yor", skeletons=skeletons)


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"review_status": "unreviewed", "translation_strategy": "sentinel"}, ""),
        ({"review_status": "needs_review_again", "translation_strategy": "sentinel"}, "English source changed"),
        ({"review_status": "unreviewed", "translation_strategy": "split"}, "split"),
    ],
)
def test_review_warnings(row: dict, expected: str) -> None:
    from instruct_global.lib.translate.target_rows import review_warnings

    warning = review_warnings(row)
    assert (expected in warning) if expected else warning == ""
