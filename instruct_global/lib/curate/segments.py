"""Candidate responses for backtranslation: chunks of ``clean_documents`` within token bounds.

Each candidate keeps its provenance (doc and chunk ids, URL, source, licence). A cap per
document keeps one long article from dominating; optional shares per source (Wikipedia / BBC)
set how many candidates each source contributes. The order is a hash of the chunk id, so the
choice is spread over the corpus and the same on every run.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from instruct_global.lib.curate.licenses import license_id

SEGMENT_COLUMNS = ("chunk_id", "doc_id", "lang", "source", "source_url", "title", "license", "text", "n_tokens")


@dataclass(frozen=True)
class SegmentSettings:
    min_tokens: int = 24
    max_tokens: int = 400
    max_per_document: int = 2
    max_segments: int = 200
    source_shares: Mapping[str, float] = field(default_factory=dict)  # {} : no quota per source


@dataclass
class SegmentSelection:
    segments: pd.DataFrame
    reasons: Counter[str]
    per_source: dict[str, int]
    quotas: dict[str, int]


def _spread_key(chunk_id: str) -> str:
    return hashlib.sha256(chunk_id.encode("utf-8")).hexdigest()


def _quotas(shares: Mapping[str, float], total: int) -> dict[str, int]:
    """Largest-remainder split of ``total`` over the sources (ties: source name order)."""
    positive = {k: float(v) for k, v in sorted(shares.items()) if float(v) > 0}
    if not positive:
        return {}
    norm = sum(positive.values())
    exact = {k: v * total / norm for k, v in positive.items()}
    quotas = {k: int(q) for k, q in exact.items()}
    for name in sorted(exact, key=lambda k: -(exact[k] - quotas[k]))[: total - sum(quotas.values())]:
        quotas[name] += 1
    return quotas


def select_segments(clean: pd.DataFrame, settings: SegmentSettings) -> SegmentSelection:
    """Chunks within the token bounds, at most ``max_per_document`` each, up to ``max_segments``."""
    reasons: Counter[str] = Counter()
    empty = pd.DataFrame({c: pd.Series(dtype="object") for c in SEGMENT_COLUMNS})
    if clean.empty:
        return SegmentSelection(empty, reasons, {}, {})
    rows = clean.assign(_key=clean["chunk_id"].astype(str).map(_spread_key)).sort_values("_key", kind="mergesort")
    quotas = _quotas(settings.source_shares, settings.max_segments)
    taken_per_doc: Counter[str] = Counter()
    taken_per_source: Counter[str] = Counter()
    chosen: list[dict[str, object]] = []
    for row in rows.to_dict("records"):
        n_tokens = int(row["n_tokens"])
        source = str(row["source"])
        if not str(row.get("text") or "").strip():
            reasons["empty_text"] += 1
        elif n_tokens < settings.min_tokens:
            reasons["too_few_tokens"] += 1
        elif n_tokens > settings.max_tokens:
            reasons["too_many_tokens"] += 1
        elif taken_per_doc[row["doc_id"]] >= settings.max_per_document:
            reasons["document_cap"] += 1
        elif quotas and taken_per_source[source] >= quotas.get(source, 0):
            reasons["source_quota" if source in quotas else "source_not_in_shares"] += 1
        elif len(chosen) >= settings.max_segments:
            reasons["over_max_segments"] += 1
        else:
            taken_per_doc[row["doc_id"]] += 1
            taken_per_source[source] += 1
            chosen.append({
                "chunk_id": str(row["chunk_id"]), "doc_id": str(row["doc_id"]), "lang": str(row["lang"]),
                "source": source, "source_url": str(row.get("url") or ""), "title": str(row.get("title") or ""),
                "license": license_id(row.get("license")), "text": str(row["text"]), "n_tokens": n_tokens,
            })
    frame = pd.DataFrame.from_records(chosen, columns=list(SEGMENT_COLUMNS)) if chosen else empty
    return SegmentSelection(frame, reasons, dict(taken_per_source), quotas)
