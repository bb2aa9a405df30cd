"""The final instruction dataset: union of reviewed template rows, translated self-instruct rows and
curated backtranslated pairs; review rejections, empty rows and disallowed licences dropped;
exact and near duplicates removed on the target-language text. Columns: ``DATASET_COLUMNS``
(the contract agreed with the export stage; extra columns may follow).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pandas as pd

from instruct_global.lib.curate.licenses import MACHINE_GENERATED, UNSPECIFIED, is_allowed, license_id
from instruct_global.lib.curate.near_duplicates import RowDeduplicator

DATASET_COLUMNS = (
    "id", "lang", "category", "instruction", "input", "output", "instruction_lang",
    "instruction_en", "input_en", "output_en", "origin", "dataset", "record_id", "instruction_id",
    "doc_id", "chunk_id", "source", "source_url", "license", "generator", "translator", "judge",
    "curation_score", "checks", "review_status",
)  # fmt: skip
ORIGINS = ("template", "self_instruct", "backtranslation")
_STRING_COLUMNS = [c for c in DATASET_COLUMNS if c != "curation_score"]
# Reviewed rows win a duplicate tie, then the judge's best, then template / self-instruct / backtranslation.
_REVIEW_RANK = {"corrected": 0, "approved": 1}


@dataclass(frozen=True)
class DatasetSettings:
    allowed_licenses: tuple[str, ...]
    near_duplicate_threshold: float = 0.8
    shingle_size: int = 3


@dataclass
class BuiltDataset:
    rows: pd.DataFrame
    rejects: pd.DataFrame
    reasons: Counter[str] = field(default_factory=Counter)
    rows_in: Counter[str] = field(default_factory=Counter)  # per origin, before any filter


def empty_dataset(extra: Iterable[str] = ()) -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="object") for c in [*DATASET_COLUMNS, *extra]})
    return frame.astype({"curation_score": "float64"})


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def translated_rows(
    reviewed: pd.DataFrame, licenses_by_record: Mapping[str, str], *, generator: str, translator: str
) -> pd.DataFrame:
    """reviewed_instructions rows in the dataset's columns: template rows take their dataset's
    licence (the schema's optional ``license`` column), self-instruct rows are model output."""
    if reviewed.empty:
        return empty_dataset()
    out = reviewed.copy()
    for column in _STRING_COLUMNS:
        out[column] = out[column].map(_text) if column in out.columns else ""
    out["instruction_lang"] = out["lang"]
    out["license"] = [
        license_id(licenses_by_record.get(rid)) if origin == "template" else MACHINE_GENERATED
        for rid, origin in zip(out["record_id"], out["origin"], strict=True)
    ]
    out["generator"], out["translator"], out["judge"] = generator, translator, ""
    out["curation_score"] = math.nan
    return out


def target_language_text(row: Mapping[str, object]) -> str:
    """The fields written in the target language (an English instruction does not count)."""
    parts = [] if _text(row.get("instruction_lang")) == "eng" else [_text(row.get("instruction"))]
    return "\n".join(p for p in [*parts, _text(row.get("input")), _text(row.get("output"))] if p)


def _priority(frame: pd.DataFrame) -> pd.DataFrame:
    rank = frame["review_status"].map(lambda s: _REVIEW_RANK.get(s, 2))
    origin = frame["origin"].map(lambda o: ORIGINS.index(o) if o in ORIGINS else len(ORIGINS))
    score = -frame["curation_score"].fillna(0.0).astype(float)
    ordered = frame.assign(_rank=rank, _score=score, _origin=origin)
    ordered = ordered.sort_values(["_rank", "_score", "_origin", "id"], kind="mergesort")
    return ordered.drop(columns=["_rank", "_score", "_origin"]).reset_index(drop=True)


def build_dataset(parts: Iterable[pd.DataFrame], settings: DatasetSettings) -> BuiltDataset:
    """Union ``parts`` (rows in ``DATASET_COLUMNS``), filter, de-duplicate; every drop has a reason."""
    frames = [p for p in parts if not p.empty]
    result = BuiltDataset(rows=empty_dataset(), rejects=empty_dataset(["reason"]))
    if not frames:
        return result
    rows = pd.concat(frames, ignore_index=True, sort=False)
    for column in _STRING_COLUMNS:
        rows[column] = rows[column].map(_text) if column in rows.columns else ""
    rows["curation_score"] = rows["curation_score"].astype("float64") if "curation_score" in rows else math.nan
    result.rows_in = Counter(rows["origin"])
    rejects: list[pd.DataFrame] = []

    def drop(mask: pd.Series, reasons: pd.Series | str) -> None:
        nonlocal rows
        if not mask.any():
            return
        dropped = rows[mask].assign(reason=reasons if isinstance(reasons, str) else reasons[mask])
        result.reasons.update(Counter(dropped["reason"]))
        rejects.append(dropped)
        rows = rows[~mask].reset_index(drop=True)

    drop(rows["review_status"] == "rejected", "rejected_in_review")
    empty = (rows["instruction"].str.strip() == "") | (rows["output"].str.strip() == "")
    drop(empty, "empty_field")
    verdicts = rows["license"].map(lambda lic: is_allowed(lic or UNSPECIFIED, settings.allowed_licenses))
    drop(~verdicts.map(lambda v: v[0]), verdicts.map(lambda v: v[1] or ""))
    rows = _priority(rows)
    drop(rows["id"].duplicated(keep="first"), "duplicate_id")
    deduper = RowDeduplicator(settings.near_duplicate_threshold, settings.shingle_size)
    decisions = deduper.deduplicate([target_language_text(r) for r in rows.to_dict("records")])
    dup_reason = pd.Series([r or "" for r in decisions.reason], index=rows.index)
    duplicate_of = [rows["id"].iloc[j] if j is not None else "" for j in decisions.duplicate_of]
    rows["_duplicate_of"] = duplicate_of
    drop(pd.Series(~decisions.keep, index=rows.index), dup_reason)
    rows = rows.drop(columns=["_duplicate_of"])
    if rejects:
        result.rejects = pd.concat(rejects, ignore_index=True, sort=False).rename(
            columns={"_duplicate_of": "duplicate_of"})
    ordered = [*DATASET_COLUMNS, *[c for c in rows.columns if c not in DATASET_COLUMNS]]
    result.rows = rows[ordered].sort_values(["origin", "id"], kind="mergesort").reset_index(drop=True)
    result.rows["curation_score"] = result.rows["curation_score"].astype("float64")
    return result


def describe_model(backend: str, model: str, params: Mapping[str, object]) -> str:
    """The provenance JSON of a generator/translator/judge: {"backend", "model", "params"}."""
    return json.dumps({"backend": backend, "model": model, "params": dict(params)}, sort_keys=True, default=str)
