"""Label Studio as a front end for the review and evaluation sheets (optional: ``pip install .[labelstudio]``).

The sheets stay the one interface of the pipeline: ``push_sheet`` imports the rows of an outbox
sheet as tasks (each carrying its stable id and a key of what the reviewer will read, so a
re-push imports only new or changed rows), and ``pull_sheet`` turns finished annotations back
into a returned sheet, which the same validation and stores then take in as if a reviewer had
filled the spreadsheet. One project per round and language.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from instruct_global.lib.common.redact import redact
from instruct_global.lib.evaluate import human_eval
from instruct_global.lib.translate import review_sheet as review

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

T = TypeVar("T")

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


class LabelStudioError(RuntimeError):
    """A Label Studio call failed; the message is the SDK's, with the key masked (the SDK's errors
    carry the server's whole answer, which a proxy or a debug server may fill with the request headers)."""


def _redacting(method: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(method)
    def call(self: LabelStudioClient, *args: Any, **kwargs: Any) -> T:
        try:
            return method(self, *args, **kwargs)
        except LabelStudioError:
            raise
        except Exception as exc:
            # from None: the SDK's exception (and its unmasked text) stays out of the stored traceback
            raise LabelStudioError(
                f"Label Studio {method.__name__} failed: {redact(f'{type(exc).__name__}: {exc}', [self._key])}"
            ) from None

    return call


class LabelStudioClient:
    """The few calls the round trip needs, on ``label-studio-sdk`` (imported only here)."""

    def __init__(self, url: str, api_key: str, timeout_s: float = 30.0) -> None:
        self._key = api_key
        try:
            from label_studio_sdk.client import LabelStudio
        except ImportError as err:
            raise ImportError(
                "Label Studio support needs the optional extra: pip install 'instruct_global[labelstudio]'"
            ) from err
        # The SDK takes a legacy token or a personal access token (a JWT refresh token it exchanges
        # for short-lived access tokens by itself).
        self._ls = LabelStudio(base_url=url.rstrip("/"), api_key=api_key, timeout=timeout_s)
        self._users: dict[int, str] = {}

    @_redacting
    def ensure_project(self, round_name: str, kind: str, lang: str) -> int:
        title = project_title(round_name, lang)
        for project in self._ls.projects.list(title=title):
            if project.title == title:
                return int(project.id)
        return int(self._ls.projects.create(title=title, label_config=LABEL_CONFIGS[kind]).id)

    @_redacting
    def _tasks(self, project_id: int) -> list[Any]:
        return list(self._ls.tasks.list(project=project_id, fields="all", page_size=100))

    @_redacting
    def import_new(self, project_id: int, tasks: list[dict[str, str]]) -> int:
        """Import tasks whose ``task_key`` is not in the project yet; returns how many."""
        known = {(t.data or {}).get("task_key") for t in self._tasks(project_id)}
        new = [t for t in tasks if t["task_key"] not in known]
        if new:
            self._ls.projects.import_tasks(id=project_id, request=new, return_task_ids=True)
        return len(new)

    @_redacting
    def _reviewer(self, user_id: Any) -> str:
        if user_id is None:
            return "label-studio-unknown"
        uid = int(user_id)
        if uid not in self._users:
            user = self._ls.users.get(id=uid)
            self._users[uid] = user.email or user.username or f"label-studio-user-{uid}"
        return self._users[uid]

    @_redacting
    def annotations(self, project_id: int) -> list[Annotation]:
        """Submitted (not skipped) annotations of every task, with the annotator's e-mail as reviewer."""
        found = []
        for task in self._tasks(project_id):
            for annotation in task.annotations or []:
                item = annotation if isinstance(annotation, Mapping) else annotation.dict()
                if item.get("was_cancelled") or not item.get("result"):
                    continue
                found.append(Annotation(dict(task.data or {}), self._reviewer(item.get("completed_by")),
                                        list(item["result"]), str(item.get("updated_at") or "")))  # fmt: skip
        return found


@dataclass
class SyncResult:
    pushed: int
    annotations: int
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
    """Push the outbox sheet's rows, pull finished annotations into a returned sheet under ``pulled_dir``.

    ``round_name`` names the project (review, curated_review, human_eval), ``kind`` its labeling
    config. ``cursor`` is the latest annotation time already pulled; nothing is written when none is
    newer. A round without an outbox sheet is left alone (no project is created for it).
    """
    if not outbox.is_file():
        return SyncResult(0, 0, None, cursor)
    project_id = client.ensure_project(round_name, kind, lang)
    sheet = read_outbox_sheet(kind, outbox)
    pushed = client.import_new(project_id, tasks_from_sheet(kind, sheet)) if len(sheet) else 0
    annotations = client.annotations(project_id)
    latest = max((a.updated_at for a in annotations), default="")
    if not annotations or latest <= cursor:
        return SyncResult(pushed, len(annotations), None, cursor)
    path = pulled_dir / f"{lang}-label-studio-{latest.replace(':', '').replace('.', '')}.csv"
    write_pulled_sheet(kind, sheet_from_annotations(kind, annotations), path)
    return SyncResult(pushed, len(annotations), path, latest)
