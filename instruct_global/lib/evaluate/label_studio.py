"""Label Studio as a front end for the review and evaluation sheets (the REST client: ``label_studio_api``).

The sheets stay the one interface of the pipeline: ``push_sheet`` imports the rows of an outbox
sheet as tasks (each carrying its stable id and a key of what the reviewer will read, so a
re-push imports only new or changed rows), and ``pull_sheet`` turns finished annotations back
into a returned sheet, which the same validation and stores then take in as if a reviewer had
filled the spreadsheet. One project per round and language. Each pull takes only the annotations
submitted or changed since the previous one (the cursor), so work already applied is not sent again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from instruct_global.lib.evaluate import human_eval
from instruct_global.lib.translate import review_sheet as review

if TYPE_CHECKING:
    from instruct_global.lib.evaluate.label_studio_api import LabelStudioClient

EVAL_KIND, REVIEW_KIND = "human_eval", "review"

EVAL_LABEL_CONFIG = """<View>
  <Header value="Prompt"/>
  <Text name="prompt" value="$prompt"/>
  <Header value="Answer A"/>
  <Text name="answer_a" value="$answer_a"/>
  <Header value="Answer B"/>
  <Text name="answer_b" value="$answer_b"/>
  <Choices name="verdict" toName="prompt" choice="single" required="true" showInLine="true">
    <Choice value="A"/><Choice value="B"/><Choice value="tie"/><Choice value="both_bad" alias="both_bad"/>
  </Choices>
  <TextArea name="note" toName="prompt" placeholder="note (optional)" maxSubmissions="1"/>
</View>"""

REVIEW_LABEL_CONFIG = """<View>
  <Header value="English source"/>
  <Text name="english_instruction" value="$english_instruction"/>
  <Text name="english_input" value="$english_input"/>
  <Text name="english_output" value="$english_output"/>
  <Header value="Machine output"/>
  <Text name="instruction" value="$instruction"/>
  <Text name="input" value="$input"/>
  <Text name="output" value="$output"/>
  <Choices name="approved" toName="instruction" choice="single" showInLine="true">
    <Choice value="yes"/><Choice value="no"/>
  </Choices>
  <Header value="Corrections (leave empty to keep the machine text)"/>
  <TextArea name="corrected_instruction" toName="instruction" editable="true" maxSubmissions="1"/>
  <TextArea name="corrected_input" toName="input" editable="true" maxSubmissions="1"/>
  <TextArea name="corrected_output" toName="output" editable="true" maxSubmissions="1"/>
  <TextArea name="reviewer_note" toName="instruction" maxSubmissions="1"/>
</View>"""

LABEL_CONFIGS = {EVAL_KIND: EVAL_LABEL_CONFIG, REVIEW_KIND: REVIEW_LABEL_CONFIG}


def project_title(round_name: str, lang: str) -> str:
    return f"instruct-global {round_name} {lang}"


def read_outbox_sheet(kind: str, path: Path) -> pd.DataFrame:
    # the reader restores the apostrophes that neutralised formula-like cells
    return review.read_returned_sheet(path)


def task_key(kind: str, row: Mapping[str, str]) -> str:
    """What the reviewer reads in a task: a new key imports the row again (the old task's verdict lapses)."""
    if kind == EVAL_KIND:
        return f"{row['id']}:{row['pair_hash']}"
    fields = "\x1f".join(review.normalise_cell(row.get(f, "")) for f in review.FIELDS)
    return f"{row['id']}:{row['source_hash']}:{hashlib.sha256(fields.encode()).hexdigest()[:12]}"


def tasks_from_sheet(kind: str, sheet: pd.DataFrame) -> list[dict[str, str]]:
    """One task per sheet row: every sheet column as task data, plus ``stable_id`` and ``task_key``."""
    tasks = []
    for row in sheet.astype(str).to_dict("records"):
        tasks.append({**row, "stable_id": row["id"], "task_key": task_key(kind, row)})
    return tasks


def _choice(result: Iterable[Mapping[str, Any]], name: str) -> str:
    for item in result:
        if item.get("from_name") == name and item.get("type") == "choices":
            return ", ".join(item.get("value", {}).get("choices", []))
    return ""


def _text(result: Iterable[Mapping[str, Any]], name: str) -> str:
    for item in result:
        if item.get("from_name") == name and item.get("type") == "textarea":
            return "\n".join(item.get("value", {}).get("text", []))
    return ""


@dataclass(frozen=True)
class Annotation:
    task_data: Mapping[str, str]
    reviewer: str
    result: list[Mapping[str, Any]]
    updated_at: str
    task_id: int = 0


def latest_tasks(tasks: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The newest task (highest id) of each stable id: a row imported again because what the reviewer
    reads changed supersedes its older tasks."""
    latest: dict[str, Mapping[str, Any]] = {}
    for task in tasks:
        data = task.get("data") or {}
        key = str(data.get("stable_id") or data.get("id") or f"task-{task.get('id')}")
        if key not in latest or int(task.get("id") or 0) > int(latest[key].get("id") or 0):
            latest[key] = task
    return list(latest.values())


def annotation_time(stamp: str) -> dt.datetime:
    """Label Studio's ``updated_at`` (ISO 8601, ``Z`` or an offset, with or without fractions) in UTC;
    compared as times, since ``...:19Z`` sorts after ``...:19.5Z`` as text."""
    if not stamp:
        return dt.datetime.min.replace(tzinfo=dt.UTC)
    parsed = dt.datetime.fromisoformat(stamp.strip().replace("Z", "+00:00"))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def annotations_since(annotations: Iterable[Annotation], cursor: str) -> list[Annotation]:
    """Annotations submitted or changed after the cursor (the latest ``updated_at`` already pulled)."""
    after = annotation_time(cursor)
    return [a for a in annotations if annotation_time(a.updated_at) > after]


def sheet_from_annotations(kind: str, annotations: Iterable[Annotation]) -> pd.DataFrame:
    """Annotations as a returned sheet: evaluation, one row per (task, reviewer); review, the latest
    annotation of each task (the review store keeps one review per id)."""
    rows = []
    if kind == EVAL_KIND:
        for a in annotations:
            row = {c: str(a.task_data.get(c, "")) for c in human_eval.SHEET_COLUMNS}
            row.update(verdict=_choice(a.result, "verdict"), reviewer=a.reviewer, note=_text(a.result, "note"))
            rows.append(row)
        return pd.DataFrame(rows, columns=human_eval.SHEET_COLUMNS)
    latest: dict[str, Annotation] = {}
    for a in sorted(annotations, key=lambda a: a.updated_at):
        latest[str(a.task_data.get("id", ""))] = a
    for a in latest.values():
        row = {c: str(a.task_data.get(c, "")) for c in review.SHEET_COLUMNS}
        row["approved"] = _choice(a.result, "approved")
        for column in review.CORRECTED_COLUMNS.values():
            row[column] = _text(a.result, column)
        note = _text(a.result, "reviewer_note")
        row["reviewer_note"] = f"{note} ({a.reviewer})" if note else ""
        rows.append(row)
    return pd.DataFrame(rows, columns=review.SHEET_COLUMNS)


def write_pulled_sheet(kind: str, sheet: pd.DataFrame, path: Path) -> None:
    if kind == EVAL_KIND:
        human_eval.write_eval_sheet(sheet, path, None)
    else:
        review.write_review_sheet(sheet, path, None)


@dataclass
class SyncResult:
    pushed: int
    annotations: int  # pulled this time (newer than the cursor)
    pulled_sheet: Path | None  # written when there are annotations newer than the cursor
    cursor: str


def sync_round(
    client: LabelStudioClient,
    round_name: str,
    kind: str,
    lang: str,
    outbox: Path,
    pulled_dir: Path,
    cursor: str = "",
) -> SyncResult:
    """Push the outbox sheet's rows, pull annotations newer than ``cursor`` into a returned sheet under
    ``pulled_dir``.

    ``round_name`` names the project (review, curated_review, human_eval), ``kind`` its labeling
    config. ``cursor`` is the latest annotation time already pulled; nothing is written when none is
    newer. A round without an outbox sheet is left alone (no project is created for it).
    """
    if not outbox.is_file():
        return SyncResult(0, 0, None, cursor)
    project_id = client.ensure_project(round_name, kind, lang)
    sheet = read_outbox_sheet(kind, outbox)
    pushed = client.import_new(project_id, tasks_from_sheet(kind, sheet)) if len(sheet) else 0
    new = annotations_since(client.annotations(project_id), cursor)
    if not new:
        return SyncResult(pushed, 0, None, cursor)
    latest = max(new, key=lambda a: annotation_time(a.updated_at)).updated_at
    stamp = annotation_time(latest).strftime("%Y%m%dT%H%M%S%fZ")
    path = pulled_dir / f"{lang}-label-studio-{stamp}.csv"
    write_pulled_sheet(kind, sheet_from_annotations(kind, new), path)
    return SyncResult(pushed, len(new), path, latest)
