"""The Label Studio round trip's pure parts: which kind of key, which task is current, which annotations
are new, and annotations read back as a returned sheet. The client itself is tested against a real
server in the ``labelstudio`` tier (instruct_global_tests/assets/test_label_studio_rounds.py)."""

from __future__ import annotations

import base64
import json

import pandas as pd
import pytest

from instruct_global.lib.evaluate import human_eval
from instruct_global.lib.evaluate.label_studio import (
    EVAL_KIND,
    REVIEW_KIND,
    Annotation,
    annotation_time,
    annotations_since,
    latest_tasks,
    sheet_from_annotations,
    tasks_from_sheet,
)
from instruct_global.lib.evaluate.label_studio_api import (
    LabelStudioClient,
    LabelStudioError,
    jwt_claims,
    key_kind,
)
from instruct_global.lib.translate import review_sheet as review


def _jwt(claims: dict) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("0123456789abcdef0123456789abcdef01234567", "legacy"),
        (_jwt({"token_type": "refresh", "exp": 8103335396, "user_id": "1"}), "refresh"),
        (_jwt({"token_type": "access", "exp": 1796135733}), "access"),
        ("a.b.c", "legacy"),  # three parts, but no JSON claims
        ("x." + base64.urlsafe_b64encode(b"[1, 2]").decode() + ".y", "legacy"),  # claims must be an object
    ],
)
def test_key_kind_tells_personal_access_tokens_from_legacy_tokens(key: str, kind: str) -> None:
    assert key_kind(key) == kind


def test_jwt_claims_are_read_without_padding() -> None:
    assert jwt_claims(_jwt({"token_type": "refresh", "exp": 5})) == {"token_type": "refresh", "exp": 5}


@pytest.mark.parametrize(("url", "key", "names"), [("", "k", "LABEL_STUDIO_URL"), ("http://x", " ", "LABEL_STUDIO_API_KEY")])
def test_client_refuses_an_empty_url_or_key_by_name(url: str, key: str, names: str) -> None:
    with pytest.raises(LabelStudioError, match=names):
        LabelStudioClient(url, key)


def test_latest_task_of_each_stable_id_supersedes_older_imports() -> None:
    tasks = [
        {"id": 3, "data": {"stable_id": "r1", "task_key": "r1:old"}},
        {"id": 9, "data": {"stable_id": "r1", "task_key": "r1:new"}},
        {"id": 4, "data": {"stable_id": "r2", "task_key": "r2:only"}},
    ]
    assert sorted(t["id"] for t in latest_tasks(tasks)) == [4, 9]


def test_annotation_times_compare_as_times_not_text() -> None:
    whole, fraction = "2026-12-01T14:30:19Z", "2026-12-01T14:30:19.500000Z"
    assert whole > fraction  # as text the later one sorts first
    assert annotation_time(whole) < annotation_time(fraction)
    assert annotation_time("2026-12-01T15:30:19+01:00") == annotation_time(whole)
    made = [Annotation({}, "ada", [], whole), Annotation({}, "bo", [], fraction)]
    assert [a.reviewer for a in annotations_since(made, "")] == ["ada", "bo"]
    assert [a.reviewer for a in annotations_since(made, whole)] == ["bo"]  # strictly after the cursor
    assert annotations_since(made, fraction) == []


def _eval_row(rid: str, pair_hash: str) -> dict[str, str]:
    return {"id": rid, "lang": "yor", "source": "test_split", "prompt": "=1+1?", "answer_a": "a", "answer_b": "b",
            "verdict": "", "reviewer": "", "note": "", "pair_hash": pair_hash}  # fmt: skip


def test_task_key_changes_with_what_the_reviewer_reads() -> None:
    before = tasks_from_sheet(EVAL_KIND, pd.DataFrame([_eval_row("r1", "h1")]))[0]
    after = tasks_from_sheet(EVAL_KIND, pd.DataFrame([_eval_row("r1", "h2")]))[0]
    assert before["stable_id"] == after["stable_id"] == "r1" and before["task_key"] != after["task_key"]


def test_annotations_become_a_returned_evaluation_sheet() -> None:
    verdict = {"from_name": "verdict", "to_name": "prompt", "type": "choices", "value": {"choices": ["B"]}}
    note = {"from_name": "note", "to_name": "prompt", "type": "textarea", "value": {"text": ["=cmd|' /C calc'!A0"]}}
    sheet = sheet_from_annotations(EVAL_KIND, [
        Annotation(_eval_row("r1", "h1"), "ada@x.test", [verdict, note], "2026-12-01T14:30:19Z", 7),
        Annotation(_eval_row("r1", "h1"), "bo@x.test", [note], "2026-12-01T14:30:20Z", 7),  # no verdict chosen
    ])  # fmt: skip
    assert list(sheet.columns) == human_eval.SHEET_COLUMNS
    assert sheet[["verdict", "reviewer"]].values.tolist() == [["B", "ada@x.test"], ["", "bo@x.test"]]
    assert sheet.loc[0, "note"] == "=cmd|' /C calc'!A0" and sheet.loc[0, "prompt"] == "=1+1?"


def test_review_annotations_keep_the_latest_per_row() -> None:
    row = {c: "" for c in review.SHEET_COLUMNS} | {"id": "r1", "output": "machine"}
    older = [{"from_name": "approved", "type": "choices", "value": {"choices": ["no"]}}]
    newer = [{"from_name": "approved", "type": "choices", "value": {"choices": ["yes"]}},
             {"from_name": "corrected_output", "type": "textarea", "value": {"text": ["fixed"]}},
             {"from_name": "reviewer_note", "type": "textarea", "value": {"text": ["ok"]}}]  # fmt: skip
    sheet = sheet_from_annotations(REVIEW_KIND, [Annotation(row, "bo", newer, "2026-12-01T14:31:00Z"),
                                                 Annotation(row, "ada", older, "2026-12-01T14:30:00Z")])  # fmt: skip
    assert len(sheet) == 1
    assert sheet.loc[0, ["approved", "corrected_output", "reviewer_note"]].tolist() == ["yes", "fixed", "ok (bo)"]
