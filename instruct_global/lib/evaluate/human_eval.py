"""A blind side-by-side human evaluation: prompts, two answers as A and B, a verdict per row.

Flow: ``eval_items_from_sft`` (+ ``load_question_bank``) -> answers from both models ->
``build_pairs`` (A/B order from a seeded hash of the row id, so it is stable across re-runs and
the sheet alone says nothing about which model wrote which) -> ``blind_sheet`` ->
``write_eval_sheet`` (CSV and XLSX) -> reviewers fill ``verdict``, ``reviewer``, ``note`` ->
``read_returned_sheet`` -> ``validate_eval_sheet`` (all or nothing, errors name row and column)
-> ``VerdictStore.save`` -> ``unblind`` against the pairs kept server-side (the asset output).

A verdict is bound to the two answers the reviewer read (``pair_hash``): when a model is retrained
and its answer changes, the stored verdict no longer applies and the row is judged again.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from instruct_global.lib.common.atomic import atomic_write
from instruct_global.lib.common.ids import stable_id
from instruct_global.lib.common.spreadsheet_safety import (  # noqa: F401 (re-exported)
    FORMULA_STARTS,
    neutralise_formula,
    restore_formula,
)
from instruct_global.lib.translate.review_paths import ReviewPaths
from instruct_global.lib.translate.review_sheet import (
    ReviewError,
    ReviewSheetError,
    SheetLayout,
    normalise_cell,
    read_returned_sheet,
    write_sheet,
)

VERDICTS = ("A", "B", "tie", "both_bad")
OUTCOMES = ("win", "loss", "tie", "both_bad")  # of the fine-tuned model against the base
SHEET_COLUMNS = ["id", "lang", "source", "prompt", "answer_a", "answer_b", "verdict", "reviewer", "note",
                 "pair_hash"]  # fmt: skip
EDITABLE_COLUMNS = ("verdict", "reviewer", "note")
TEXT_COLUMNS = ("prompt", "answer_a", "answer_b", "verdict", "reviewer", "note")
REQUIRED_RETURN_COLUMNS = ("id", "answer_a", "answer_b", "verdict", "reviewer", "pair_hash")
PAIR_COLUMNS = ["id", "lang", "source", "prompt", "messages", "base_answer", "finetuned_answer",
                "finetuned_is_a", "answer_a", "answer_b", "pair_hash"]  # fmt: skip
_VERDICT_ALIASES = {
    "a": "A", "b": "B", "tie": "tie", "same": "tie", "equal": "tie", "both_bad": "both_bad",
    "both bad": "both_bad", "both-bad": "both_bad", "bothbad": "both_bad", "neither": "both_bad",
}  # fmt: skip


class QuestionBankError(ValueError):
    """A question bank CSV was rejected; the message names file, row and column."""


@dataclass(frozen=True)
class EvalItem:
    id: str
    lang: str
    source: str  # "test_split" or "question_bank"
    prompt: str  # what the reviewer reads
    messages: tuple[Mapping[str, str], ...]  # what the models are asked


# --- prompts ------------------------------------------------------------------------------------


def eval_items_from_sft(sft_dataset: pd.DataFrame, lang: str, limit: int = 0) -> list[EvalItem]:
    """The held-out test split as prompts: the conversation up to (not including) the reference answer."""
    test = sft_dataset[sft_dataset["split"] == "test"]
    items = []
    for row in test.to_dict("records"):
        messages = json.loads(row["messages"])
        while messages and messages[-1]["role"] == "assistant":
            messages = messages[:-1]
        user = [m["content"] for m in messages if m["role"] == "user"]
        if not user:
            continue
        items.append(EvalItem(f"test-{row['id']}", lang, "test_split", user[-1], tuple(messages)))
    items.sort(key=lambda item: item.id)
    return items[:limit] if limit else items


def load_question_bank(path: str | Path, lang: str) -> list[EvalItem]:
    """A CSV of prompts in the language: a ``prompt`` column, optional ``id`` and ``lang``.

    Rows of another ``lang`` are skipped (one bank may hold several languages); an empty prompt,
    a duplicate id or a file that is not UTF-8 is an error naming file, row and column.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise QuestionBankError(f"{path}: question bank not found") from None
    except UnicodeDecodeError as err:
        raise QuestionBankError(f"{path}: not UTF-8 (byte {err.start}); save the CSV as UTF-8") from None
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows:
        raise QuestionBankError(f"{path}: the file is empty; it needs a header row with 'prompt'")
    header = [h.strip().lower() for h in rows[0]]
    if "prompt" not in header:
        raise QuestionBankError(f"{path}, row 1: no 'prompt' column in the header {rows[0]!r}")
    errors, items, seen = [], [], {}
    for number, raw in enumerate(rows[1:], start=2):
        cells = dict(zip(header, [*raw, *[""] * len(header)], strict=False))
        if not any(c.strip() for c in raw):
            continue
        row_lang = normalise_cell(cells.get("lang", ""))
        if row_lang and row_lang != lang:
            continue
        prompt = normalise_cell(cells["prompt"])
        if not prompt:
            errors.append(f"{path}, row {number}, column prompt: the prompt is empty")
            continue
        rid = normalise_cell(cells.get("id", "")) or stable_id("question_bank", lang, prompt)
        if rid in seen:
            errors.append(f"{path}, row {number}, column id: duplicate id {rid!r}, also on row {seen[rid]}")
            continue
        seen[rid] = number
        items.append(EvalItem(f"bank-{rid}", lang, "question_bank", prompt, ({"role": "user", "content": prompt},)))
    if errors:
        raise QuestionBankError("question bank rejected:\n" + "\n".join(f"  - {e}" for e in errors))
    return items


# --- the blind pairs ----------------------------------------------------------------------------


def finetuned_is_a(row_id: str, seed: int) -> bool:
    """The side of the fine-tuned answer: a seeded hash of the row id, so it never changes between runs."""
    return hashlib.sha256(f"{seed}\x1f{row_id}".encode()).digest()[0] % 2 == 0


def pair_hash_of(prompt: str, answer_a: str, answer_b: str) -> str:
    joined = "\x1f".join(normalise_cell(v) for v in (prompt, answer_a, answer_b))
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:16]


def build_pairs(
    items: Sequence[EvalItem], base_answers: Sequence[str], finetuned_answers: Sequence[str], seed: int
) -> pd.DataFrame:
    """The server-side table: both answers, which one is A, and the blind A/B texts."""
    records = []
    for item, base, tuned in zip(items, base_answers, finetuned_answers, strict=True):
        tuned_first = finetuned_is_a(item.id, seed)
        a, b = (tuned, base) if tuned_first else (base, tuned)
        records.append(
            {
                "id": item.id,
                "lang": item.lang,
                "source": item.source,
                "prompt": item.prompt,
                "messages": json.dumps(list(item.messages), ensure_ascii=False),
                "base_answer": base,
                "finetuned_answer": tuned,
                "finetuned_is_a": tuned_first,
                "answer_a": a,
                "answer_b": b,
                "pair_hash": pair_hash_of(item.prompt, a, b),
            }
        )
    return pd.DataFrame.from_records(records, columns=PAIR_COLUMNS)


def blind_sheet(pairs: pd.DataFrame, judged_ids: Iterable[str] = ()) -> pd.DataFrame:
    """What reviewers get: no model names, no side; rows already judged (by pair) left out."""
    done = set(judged_ids)
    sheet = pairs.loc[~pairs["id"].isin(done), ["id", "lang", "source", "prompt", "answer_a", "answer_b",
                                                 "pair_hash"]].copy()  # fmt: skip
    for column in EDITABLE_COLUMNS:
        sheet[column] = ""
    # Rows in id order, not by source: the order must not hint at anything either.
    return sheet[SHEET_COLUMNS].sort_values("id", kind="mergesort").reset_index(drop=True)


# --- formula neutralising -----------------------------------------------------------------------


# --- writing ------------------------------------------------------------------------------------


EVAL_LAYOUT = SheetLayout(
    "evaluation", EDITABLE_COLUMNS,
    {"id": 22, "lang": 6, "source": 12, "verdict": 10, "reviewer": 14, "note": 30, "pair_hash": 18},
    choices={"verdict": VERDICTS},
)


def write_eval_sheet(sheet: pd.DataFrame, csv_path: str | Path | None, xlsx_path: str | Path | None) -> None:
    """CSV (UTF-8 with BOM) and/or XLSX, each written atomically; formula-like cells neutralised
    (``write_sheet`` does it for every sheet, ``read_returned_sheet`` undoes it)."""
    write_sheet(sheet, csv_path, xlsx_path, EVAL_LAYOUT)


# --- validation ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    id: str
    reviewer: str
    verdict: str  # one of VERDICTS, as the reviewer saw the sides
    pair_hash: str  # the prompt and the two answers the reviewer read
    note: str = ""
    origin: str = "sheet"  # "sheet" or "label_studio"
    judged_at: str = ""


@dataclass
class EvalValidation:
    errors: list[ReviewError] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)


def parse_verdict(value: Any) -> str | None:
    text = normalise_cell(value).casefold().rstrip(".!")
    if not text:
        return None
    if text in _VERDICT_ALIASES:
        return _VERDICT_ALIASES[text]
    raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, not {value!r}")


def validate_eval_sheet(
    returned: pd.DataFrame, pairs: pd.DataFrame, *, sheet_name: str = "evaluation sheet", origin: str = "sheet"
) -> EvalValidation:
    """Every row checked against the current pairs; raises ``ReviewSheetError`` naming each bad row."""
    validation = EvalValidation()
    returned = returned.copy()
    missing = [c for c in REQUIRED_RETURN_COLUMNS if c not in returned.columns]
    if missing:
        validation.errors = [ReviewError(1, "", c, "required column is missing from the header") for c in missing]
    else:
        _validate_rows(returned, pairs, origin, validation)
    if validation.errors:
        validation.verdicts = []
        message = [f"{sheet_name} rejected, nothing was applied ({len(validation.errors)} problem(s)):"]
        message += [f"  - {error}" for error in validation.errors]
        raise ReviewSheetError("\n".join(message), validation.errors)
    return validation


def _validate_rows(returned: pd.DataFrame, pairs: pd.DataFrame, origin: str, validation: EvalValidation) -> None:
    current = {str(row["id"]): row for row in pairs.to_dict("records")}
    seen: dict[tuple[str, str], int] = {}
    for position, raw in enumerate(returned.to_dict("records")):
        number = position + 2  # the header is row 1
        row = {k: "" if v is None else str(v) for k, v in raw.items()}
        if not any(v.strip() for v in row.values()):
            continue
        rid = row["id"].strip()
        errors = []
        if not rid:
            validation.errors.append(ReviewError(number, "", "id", "the id is empty"))
            continue
        if rid not in current:
            validation.errors.append(ReviewError(number, rid, "id", "unknown id: no such row in this evaluation"))
            continue
        pair = current[rid]
        for column in ("answer_a", "answer_b"):
            if normalise_cell(row[column]) != normalise_cell(pair[column]):
                errors.append(ReviewError(number, rid, column, "the answer differs from the one exported: "
                                          "edited in the sheet or regenerated since (judge a new sheet)"))  # fmt: skip
        if row["pair_hash"].strip() != pair["pair_hash"] and not errors:
            errors.append(ReviewError(number, rid, "pair_hash", "pair_hash was edited; it must stay as exported"))
        try:
            verdict = parse_verdict(row["verdict"])
        except ValueError as err:
            errors.append(ReviewError(number, rid, "verdict", str(err)))
            verdict = None
        reviewer = normalise_cell(row["reviewer"])
        if verdict is not None and not reviewer:
            errors.append(ReviewError(number, rid, "reviewer", "a verdict needs the reviewer's name or id"))
        key = (rid, reviewer)
        if verdict is not None and key in seen:
            errors.append(ReviewError(number, rid, "id", f"judged twice by {reviewer!r}, also on row {seen[key]}"))
        validation.errors += errors
        if errors or verdict is None:
            continue
        seen[key] = number
        note = normalise_cell(row.get("note", ""))
        validation.verdicts.append(Verdict(rid, reviewer, verdict, pair["pair_hash"], note, origin))


# --- the verdict store --------------------------------------------------------------------------


class VerdictStore:
    """Latest verdict per (row id, reviewer), as JSON lines, rewritten atomically under a folder lock."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def load(self) -> dict[tuple[str, str], Verdict]:
        if not self.path.exists():
            return {}
        verdicts = {}
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                verdict = Verdict(**json.loads(line))
            except (json.JSONDecodeError, TypeError) as err:
                raise ValueError(f"{self.path}: line {number} is not a stored verdict: {err}") from None
            verdicts[(verdict.id, verdict.reviewer)] = verdict
        return verdicts

    def save(self, verdicts: Iterable[Verdict], *, judged_at: str | None = None) -> int:
        stamp = judged_at or dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        with self._locked():
            stored = self.load()
            count = 0
            for verdict in verdicts:
                stored[(verdict.id, verdict.reviewer)] = Verdict(**{**asdict(verdict), "judged_at": stamp})
                count += 1
            lines = "".join(json.dumps(asdict(v), ensure_ascii=False, sort_keys=True) + "\n" for v in stored.values())
            atomic_write(self.path, lambda handle: handle.write(lines.encode("utf-8")))
        return count

    @contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            import fcntl
        except ImportError:  # not POSIX
            yield
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def outcome_of(verdict: str, tuned_first: bool) -> str:
    """A/B as the reviewer saw them -> win/loss/tie/both_bad of the fine-tuned model."""
    if verdict in ("tie", "both_bad"):
        return verdict
    return "win" if (verdict == "A") == tuned_first else "loss"


def unblind(verdicts: Iterable[Verdict], pairs: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """One row per current judgment (id, lang, reviewer, outcome); verdicts on answers that changed
    since (stale) are left out and counted."""
    current = {str(r["id"]): r for r in pairs.to_dict("records")}
    records, stale = [], 0
    for verdict in verdicts:
        pair = current.get(verdict.id)
        if pair is None or pair["pair_hash"] != verdict.pair_hash:
            stale += 1
            continue
        records.append(
            {
                "id": verdict.id,
                "lang": pair["lang"],
                "source": pair["source"],
                "reviewer": verdict.reviewer,
                "outcome": outcome_of(verdict.verdict, bool(pair["finetuned_is_a"])),
                "origin": verdict.origin,
            }
        )
    columns = ["id", "lang", "source", "reviewer", "outcome", "origin"]
    return pd.DataFrame.from_records(records, columns=columns), stale


def judged_ids(verdicts: Iterable[Verdict], pairs: pd.DataFrame) -> set[str]:
    """Rows with at least one current verdict (left out of the next sheet)."""
    hashes = dict(zip(pairs["id"].astype(str), pairs["pair_hash"], strict=True))
    return {v.id for v in verdicts if hashes.get(v.id) == v.pair_hash}


def apply_returned_sheet(
    pairs: pd.DataFrame, paths: ReviewPaths, store: VerdictStore, returned_sheet: str | Path | None,
    warn: Callable[[str], None] | None = None,
) -> int:
    """Validate a returned sheet as a whole (any bad row raises, naming each), store its verdicts and
    archive it so it is never applied twice; the number of verdicts stored. A sheet that is gone was
    applied by an earlier run: stored verdicts only."""
    sheet_path = Path(returned_sheet) if returned_sheet else None
    if sheet_path is None:
        return 0
    if not sheet_path.exists():
        if warn is not None:
            warn(f"{sheet_path} is gone (already applied?); scoring stored verdicts only")
        return 0
    # sheets the Label Studio sensor pulled live under <round dir>/label_studio/
    origin = "label_studio" if sheet_path.resolve().parent == paths.label_studio_dir.resolve() else "sheet"
    validation = validate_eval_sheet(read_returned_sheet(sheet_path), pairs, sheet_name=sheet_path.name,
                                     origin=origin)  # fmt: skip
    applied = store.save(validation.verdicts)
    paths.archive(sheet_path)
    return applied


def human_eval_paths(data_dir: Path, lang: str) -> ReviewPaths:
    """<data dir>/human_eval/{outbox,inbox,store,processed}: the review sheets' round trip, for verdicts."""
    return ReviewPaths(data_dir / "human_eval", lang)
