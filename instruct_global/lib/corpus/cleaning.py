"""The ``clean_documents`` stage as one pure function: normalise, filter, de-duplicate, chunk.

Per document, in this order (cheap checks first, first failing check names the drop):
invalid_doc_id -> normalise -> empty_after_cleaning -> too_short -> exact_duplicate ->
wrong_language -> near_duplicate -> chunk under the token budget (long documents are split,
never dropped). Every drop is counted by reason and kept in ``rejects`` as the input row plus
``reason`` and a human-readable ``reason_detail``.

Language ID and both duplicate checks judge the whole normalised document (LID reads its first
~2,000 characters); its chunks inherit the document's ``lid_lang`` and ``lid_score``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from instruct_global.languages import Language
from instruct_global.lib.common.text_tokens import WORD_RE
from instruct_global.lib.corpus.chunking import (
    DEFAULT_TOKEN_FACTOR,
    TokenCounter,
    chunk_text,
    make_approx_counter,
)
from instruct_global.lib.corpus.dedupe import ExactDeduplicator, NearDeduplicator
from instruct_global.lib.corpus.documents import DOCUMENT_COLUMNS
from instruct_global.lib.corpus.langid import LidResult, identify, lid_method_for
from instruct_global.lib.corpus.normalise import normalise_text

CLEAN_EXTRA_COLUMNS = ("chunk_id", "chunk_index", "n_chunks", "n_tokens", "lid_lang", "lid_score")
REJECT_EXTRA_COLUMNS = ("reason", "reason_detail")
DROP_REASONS = (
    "invalid_doc_id",
    "empty_after_cleaning",
    "too_short",
    "exact_duplicate",
    "wrong_language",
    "near_duplicate",
)

Verdict = tuple[bool, str | None]  # (keep, reason)


@dataclass(frozen=True)
class CleaningConfig:
    min_chars: int = 100
    min_words: int = 15
    min_lid_score: float = 0.5
    near_duplicate_threshold: float = 0.8
    num_perm: int = 128
    shingle_size: int = 5
    minhash_seed: int = 1
    max_tokens: int = 512
    token_factor: float = DEFAULT_TOKEN_FACTOR  # used by the default (approximate) counter
    token_counter: TokenCounter | None = None  # exact counter, e.g. a tokenizer; overrides the factor
    remove_boilerplate: bool = True

    def __post_init__(self) -> None:
        problems = []
        if self.min_chars < 0 or self.min_words < 0:
            problems.append("min_chars and min_words must be >= 0")
        if not 0.0 <= self.min_lid_score <= 1.0:
            problems.append(f"min_lid_score must be in [0, 1], got {self.min_lid_score}")
        if not 0.0 < self.near_duplicate_threshold <= 1.0:
            problems.append(
                f"near_duplicate_threshold must be in (0, 1], got {self.near_duplicate_threshold}"
            )
        if self.max_tokens < 1:
            problems.append(f"max_tokens must be >= 1, got {self.max_tokens}")
        if self.token_factor <= 0:
            problems.append(f"token_factor must be > 0, got {self.token_factor}")
        if self.num_perm < 16 or self.shingle_size < 1:
            problems.append("num_perm must be >= 16 and shingle_size >= 1")
        if problems:
            raise ValueError("invalid CleaningConfig: " + "; ".join(problems))

    def counter(self) -> TokenCounter:
        return self.token_counter or make_approx_counter(self.token_factor)

    def counter_name(self) -> str:
        if self.token_counter is None:
            return f"approx_words_x{self.token_factor:g}"
        return getattr(self.token_counter, "__name__", type(self.token_counter).__name__)


@dataclass
class CleaningResult:
    clean: pd.DataFrame  # one row per chunk: input columns (text = chunk text) + CLEAN_EXTRA_COLUMNS
    rejects: pd.DataFrame  # one row per dropped document: the input row + reason, reason_detail
    drop_counts: dict[str, int]  # every reason in DROP_REASONS, zeros included
    lid_method: str
    stats: dict[str, Any] = field(default_factory=dict)  # JSON-friendly numbers for metadata


def length_filter(text: str, config: CleaningConfig) -> Verdict:
    if not text.strip():
        return False, "empty_after_cleaning"
    if len(text) < config.min_chars or len(WORD_RE.findall(text)) < config.min_words:
        return False, "too_short"
    return True, None


def language_filter(result: LidResult, lang: Language, min_score: float) -> Verdict:
    if result.lang != lang.key or result.score < min_score:
        return False, "wrong_language"
    return True, None


def _as_doc_id(value: object) -> str:
    """The id as text; "" for None/NaN/NA (checked as scalars, so a stray list cannot crash it)."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return ""
    return str(value).strip()


def chunk_id(doc_id: str, index: int) -> str:
    """Stable across re-runs: depends only on the document id and the chunk's position."""
    return hashlib.sha256(f"{doc_id}\x1f{index}".encode()).hexdigest()[:16]


def _with_required_columns(docs: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in DOCUMENT_COLUMNS if c not in docs.columns]
    if missing and len(docs):
        raise ValueError(f"documents frame lacks required columns: {', '.join(missing)}")
    if missing:  # an empty frame may come without columns; give it the contract's
        docs = docs.copy()
        for column in missing:
            docs[column] = pd.Series(dtype="object")
    return docs.reset_index(drop=True)


def _empty_frame_like(docs: pd.DataFrame, extra: dict[str, str]) -> pd.DataFrame:
    frame = docs.iloc[0:0].copy()
    for column, dtype in extra.items():
        frame[column] = pd.Series(dtype=dtype)
    return frame


_CLEAN_DTYPES = {
    "chunk_id": "object",
    "chunk_index": "int64",
    "n_chunks": "int64",
    "n_tokens": "int64",
    "lid_lang": "object",
    "lid_score": "float64",
}
_REJECT_DTYPES = {"reason": "object", "reason_detail": "object"}


def clean_corpus(docs: pd.DataFrame, lang: Language, config: CleaningConfig | None = None) -> CleaningResult:
    """Clean one language partition's documents. Input follows the documents contract."""
    config = config or CleaningConfig()
    docs = _with_required_columns(docs)
    count = config.counter()
    exact = ExactDeduplicator()
    near = NearDeduplicator(
        config.near_duplicate_threshold, config.num_perm, config.shingle_size, config.minhash_seed
    )
    seen_ids: set[str] = set()
    drops: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
    rejected: list[tuple[int, str, str]] = []  # (row position, reason, detail)
    chunk_rows: list[tuple[int, str, int, int, int, LidResult]] = []
    boilerplate_lines = ftfy_changed = chars_in = chars_out = 0

    def reject(pos: int, reason: str, detail: str) -> None:
        drops[reason] += 1
        rejected.append((pos, reason, detail))

    for pos, (doc_id_raw, raw_text) in enumerate(zip(docs["doc_id"], docs["text"], strict=True)):
        doc_id = _as_doc_id(doc_id_raw)
        if not doc_id or doc_id in seen_ids:
            reject(pos, "invalid_doc_id", "doc_id is missing" if not doc_id else f"doc_id {doc_id!r} repeats")
            continue
        seen_ids.add(doc_id)
        normalised = normalise_text(raw_text, drop_boilerplate=config.remove_boilerplate)
        text = normalised.text
        boilerplate_lines += normalised.boilerplate_lines
        ftfy_changed += normalised.ftfy_changed
        chars_in += len(raw_text) if isinstance(raw_text, str) else 0

        keep, reason = length_filter(text, config)
        if not keep:
            n_words = len(WORD_RE.findall(text))
            detail = (
                f"nothing left after cleaning ({normalised.boilerplate_lines} boilerplate lines removed)"
                if reason == "empty_after_cleaning"
                else f"{len(text)} chars, {n_words} words; minimum {config.min_chars} chars, {config.min_words} words"
            )
            reject(pos, str(reason), detail)
            continue
        if (first := exact.duplicate_of(doc_id, text)) is not None:
            reject(pos, "exact_duplicate", f"same text as doc_id {first}")
            continue
        lid = identify(text, lang)
        if not language_filter(lid, lang, config.min_lid_score)[0]:
            reject(
                pos,
                "wrong_language",
                f"{lid.method} says {lid.lang} ({lid.score:.2f}); expected {lang.key} with score >= {config.min_lid_score}",
            )
            continue
        if (match := near.duplicate_of(doc_id, text)) is not None:
            reject(pos, "near_duplicate", f"Jaccard ~{match[1]:.2f} with doc_id {match[0]}")
            continue
        chars_out += len(text)
        chunks = chunk_text(text, config.max_tokens, count, lang)
        for index, chunk in enumerate(chunks):
            chunk_rows.append((pos, chunk, index, len(chunks), count(chunk), lid))

    clean = _build_clean(docs, chunk_rows)
    rejects = _build_rejects(docs, rejected)
    n_tokens = clean["n_tokens"]
    kept_docs = len({row[0] for row in chunk_rows})
    stats: dict[str, Any] = {
        "documents_in": len(docs),
        "documents_kept": kept_docs,
        "documents_dropped": len(rejected),
        "chunks": len(clean),
        "documents_split": len({row[0] for row in chunk_rows if row[3] > 1}),
        "tokens_total": int(n_tokens.sum()),
        "tokens_mean_per_chunk": round(float(n_tokens.mean()), 1) if len(clean) else 0.0,
        "tokens_max_per_chunk": int(n_tokens.max()) if len(clean) else 0,
        "token_budget": config.max_tokens,
        "token_counter": config.counter_name(),
        "boilerplate_lines_removed": boilerplate_lines,
        "ftfy_repaired_documents": ftfy_changed,
        "chars_in": chars_in,
        "chars_kept": chars_out,
        "lid_method": lid_method_for(lang),
        "min_lid_score": config.min_lid_score,
        "lid_score_mean_kept": round(float(clean.drop_duplicates("doc_id")["lid_score"].mean()), 4)
        if len(clean)
        else 0.0,
        "near_duplicate_threshold": config.near_duplicate_threshold,
    }
    return CleaningResult(clean, rejects, drops, lid_method_for(lang), stats)


def _build_clean(docs: pd.DataFrame, rows: list[tuple[int, str, int, int, int, LidResult]]) -> pd.DataFrame:
    if not rows:
        return _empty_frame_like(docs, _CLEAN_DTYPES)
    # Selecting by position keeps every input column with its dtype; one row per chunk.
    clean = docs.iloc[[r[0] for r in rows]].reset_index(drop=True)
    clean["text"] = [r[1] for r in rows]
    clean["chunk_id"] = [chunk_id(str(d).strip(), r[2]) for d, r in zip(clean["doc_id"], rows, strict=True)]
    clean["chunk_index"] = pd.Series([r[2] for r in rows], dtype="int64")
    clean["n_chunks"] = pd.Series([r[3] for r in rows], dtype="int64")
    clean["n_tokens"] = pd.Series([r[4] for r in rows], dtype="int64")
    clean["lid_lang"] = [r[5].lang for r in rows]
    clean["lid_score"] = pd.Series([r[5].score for r in rows], dtype="float64")
    return clean


def _build_rejects(docs: pd.DataFrame, rejected: list[tuple[int, str, str]]) -> pd.DataFrame:
    if not rejected:
        return _empty_frame_like(docs, _REJECT_DTYPES)
    rejects = docs.iloc[[r[0] for r in rejected]].reset_index(drop=True)
    rejects["reason"] = [r[1] for r in rejected]
    rejects["reason_detail"] = [r[2] for r in rejected]
    return rejects
