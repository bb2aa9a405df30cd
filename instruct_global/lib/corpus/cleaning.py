"""The ``clean_documents`` stage as one pure function: normalise, filter, de-duplicate, chunk.

Per document, in this order (cheap checks first, first failing check names the drop):
invalid_doc_id -> normalise -> empty_after_cleaning -> too_short -> exact_duplicate ->
wrong_language -> near_duplicate -> chunk under the token budget (long documents are split,
never dropped). Every drop is counted by reason and kept in ``rejects`` as the input row plus
``reason`` and a human-readable ``reason_detail``.

Language ID and both duplicate checks judge the whole normalised document (LID reads a bounded
sample, its first ~600 characters); its chunks inherit the document's ``lid_lang`` and
``lid_score``.

Between normalising and the filters, page furniture goes (``remove_furniture``): lines carrying
the BBC service's page labels (BBC documents), and lines and line prefixes that recur across many
documents of one source (``lib/corpus/furniture.py``); removed lines are counted by kind.

Throughput and memory: two passes over batches of documents, each in ``workers`` processes.
Pass 1 normalises and returns each document's furniture statistics as 64-bit hashes of its line
keys (this process counts hashes, it never holds a second copy of the corpus as strings). Pass 2
removes furniture, tokenizes each document once (line by line, so the chunker reuses the counts),
identifies the language, computes the MinHash signature and the chunks. The order-dependent
decisions (duplicates: first occurrence wins) are taken in this process in input order, so the
result is the same for any number of workers; texts are released as they are handed out, and
the near-duplicate index keeps about 2 KB per kept document.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import pickle
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from instruct_global.languages import Language
from instruct_global.lib.common.frame_stream import FrameSink, FrameSource, RowSink, RowSource
from instruct_global.lib.common.text_tokens import WORD_RE
from instruct_global.lib.corpus.bbc_labels import LabelMatcher, label_matcher
from instruct_global.lib.corpus.chunking import (
    DEFAULT_TOKEN_FACTOR,
    TokenCounter,
    chunk_text_with_counts,
    make_approx_counter,
)
from instruct_global.lib.corpus.dedupe import (
    ExactDeduplicator,
    MinHashSigner,
    NearDeduplicator,
    text_fingerprint,
)
from instruct_global.lib.corpus.documents import DOCUMENT_COLUMNS
from instruct_global.lib.corpus.furniture import (
    FURNITURE_KINDS,
    DocumentKeys,
    FurnitureConfig,
    RecurringCounter,
    RecurringHashes,
    document_keys,
    recurring_report,
    remove_furniture_hashed,
)
from instruct_global.lib.corpus.langid import LidResult, identify, lid_method_for
from instruct_global.lib.corpus.normalise import normalise_text
from instruct_global.lib.corpus.parallel import new_pool, ordered_map, resolve_workers

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
# Whitespace as str.split sees it (str.isspace), less the space and the newline.
_WHITESPACE_NOT_SPACE = re.compile("[\t\x0b\x0c\r\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")



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
    # Page furniture: BBC service labels, and lines / prefixes recurring across a source's documents.
    remove_furniture: bool = True
    furniture_min_docs: int = 10
    furniture_min_share: float = 0.05
    furniture_max_prefix_words: int = 6
    furniture_max_line_words: int = 16
    # Processes for the per-document work (0: one per CPU); small inputs stay in this process.
    workers: int = 1
    batch_size: int = 256

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
        if self.furniture_min_docs < 2 or not 0.0 < self.furniture_min_share <= 1.0:
            problems.append("furniture_min_docs must be >= 2 and furniture_min_share in (0, 1]")
        if self.workers < 0 or self.batch_size < 1:
            problems.append("workers must be >= 0 and batch_size >= 1")
        if problems:
            raise ValueError("invalid CleaningConfig: " + "; ".join(problems))

    def furniture(self) -> FurnitureConfig:
        return FurnitureConfig(
            self.furniture_min_docs, self.furniture_min_share, self.furniture_max_prefix_words,
            self.furniture_max_line_words,
        )

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


def length_filter(text: str, config: CleaningConfig, n_words: int | None = None) -> Verdict:
    if not text.strip():
        return False, "empty_after_cleaning"
    if len(text) < config.min_chars:
        return False, "too_short"
    if (len(WORD_RE.findall(text)) if n_words is None else n_words) < config.min_words:
        return False, "too_short"
    return True, None


def language_filter(result: LidResult, lang: Language, min_score: float) -> Verdict:
    if result.lang != lang.key or result.score < min_score:
        return False, "wrong_language"
    return True, None


def _as_doc_id(value: object) -> str:
    """The id as text; "" for None/NaN/NA (checked as scalars, so a stray list cannot crash it)."""
    return "" if _missing(value) else str(value).strip()


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def chunk_id(doc_id: str, index: int) -> str:
    """Stable across re-runs: depends only on the document id and the chunk's position."""
    return hashlib.sha256(f"{doc_id}\x1f{index}".encode()).hexdigest()[:16]


def _with_required_columns(docs: pd.DataFrame) -> pd.DataFrame:
    """The frame, failing if it has rows but lacks a contract column; an empty frame may come
    without columns and gets the contract's (so the empty outputs have them too)."""
    FrameSource(docs).require(DOCUMENT_COLUMNS, "documents")
    missing = [c for c in DOCUMENT_COLUMNS if c not in docs.columns]
    if missing:
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
# The same columns as Parquet types, for output written in batches.
CLEAN_ARROW_COLUMNS = {"chunk_id": pa.string(), "chunk_index": pa.int64(), "n_chunks": pa.int64(),
                       "n_tokens": pa.int64(), "lid_lang": pa.string(), "lid_score": pa.float64()}  # fmt: skip
REJECT_ARROW_COLUMNS = {"reason": pa.string(), "reason_detail": pa.string()}


@dataclass
class _Normalised:
    text: str
    boilerplate_lines: int
    ftfy_changed: bool
    chars_in: int
    keys: DocumentKeys | None  # what the document adds to its source's furniture statistics


@dataclass
class _Facts:
    """What one document's checks need, computed without looking at any other document."""

    n_chars: int
    n_words: int
    length: Verdict
    fingerprint: str
    furniture: Counter[str]
    furniture_names: dict[int, str]
    lid: LidResult | None = None
    signature: np.ndarray | None = None
    chunks: list[tuple[str, int]] = field(default_factory=list)


def _normalise_one(raw_text: object, config: CleaningConfig) -> _Normalised:
    normalised = normalise_text(raw_text, drop_boilerplate=config.remove_boilerplate)
    chars_in = len(raw_text) if isinstance(raw_text, str) else 0
    keys = document_keys(normalised.text, config.furniture()) if config.remove_furniture else None
    return _Normalised(normalised.text, normalised.boilerplate_lines, normalised.ftfy_changed, chars_in, keys)


def _normalise_batch(texts: list[object], config: CleaningConfig) -> list[_Normalised]:
    return [_normalise_one(t, config) for t in texts]


@functools.cache
def _labels(service: str | None) -> LabelMatcher | None:
    return label_matcher(service)


def _facts_one(
    text: str,
    repeat: bool,
    furniture: tuple[RecurringHashes, LabelMatcher | None] | None,
    lang: Language,
    config: CleaningConfig,
    near: MinHashSigner,
    count: TokenCounter,
) -> _Facts:
    """``repeat``: an earlier document of the same source had the same normalised text, so this
    one can only be an exact duplicate or fail the length filter as that one did; language ID and
    the rest are skipped."""
    removed: Counter[str] = Counter()
    names: dict[int, str] = {}
    if furniture is not None:
        text = remove_furniture_hashed(text, furniture[0], furniture[1], config.furniture(), removed, names)
    # The document's one tokenization, line by line: the chunker's paragraphs are its lines.
    lines = text.split("\n")
    line_words = [WORD_RE.findall(line) for line in lines]
    words = list(itertools.chain.from_iterable(line_words))
    facts = _Facts(
        n_chars=len(text), n_words=len(words), length=length_filter(text, config, len(words)),
        fingerprint=text_fingerprint(text), furniture=removed, furniture_names=names,
    )
    if not facts.length[0] or repeat:
        return facts
    facts.lid = identify(text, lang)
    if not language_filter(facts.lid, lang, config.min_lid_score)[0]:
        return facts
    facts.signature = near.signature(words)
    # pieces of the approximate token count: word runs plus single non-space, non-word characters
    if _WHITESPACE_NOT_SPACE.search(text) is None:  # normalised text: only " " between words
        line_pieces = [
            len(w) + len(line) - line.count(" ") - sum(map(len, w)) for line, w in zip(lines, line_words, strict=True)
        ]
    else:
        line_pieces = [
            len(w) + len("".join(line.split())) - sum(map(len, w)) for line, w in zip(lines, line_words, strict=True)
        ]
    facts.chunks = chunk_text_with_counts(
        text, config.max_tokens, count, lang, n_pieces=sum(line_pieces), line_pieces=line_pieces
    )
    return facts


def _facts_batch(
    items: list[tuple[str, bool, str]],
    lang: Language,
    config: CleaningConfig,
    recurring: dict[str, RecurringHashes] | None,
) -> list[_Facts]:
    signer = MinHashSigner(config.num_perm, config.shingle_size, config.minhash_seed)
    count = config.counter()
    labels = _labels(lang.bbc_service)

    def furniture(source: str) -> tuple[RecurringHashes, LabelMatcher | None] | None:
        if recurring is None:
            return None
        # Service labels are BBC page chrome; Wikipedia may use the same words as real headings.
        return recurring.get(source, RecurringHashes()), labels if source == "bbc" else None

    return [
        _facts_one(text, repeat, furniture(source), lang, config, signer, count) for text, repeat, source in items
    ]


class _Runner:
    """Runs a per-batch function here or in a process pool, results in input order."""

    def __init__(self, workers: int, batch_size: int) -> None:
        self.workers = workers
        self.batch_size = batch_size
        self._pool: ProcessPoolExecutor | None = None

    def map(self, fn: Callable[..., list[Any]], items: Iterable[Any], *args: Any) -> Iterator[Any]:
        """``fn(batch, *args)`` over batches of ``items`` cut as they are needed (so no second
        copy of the corpus is held), at most a few batches per worker in flight."""
        batches = _batched(items, self.batch_size)
        first = next(batches, None)
        if first is None:
            return
        second = next(batches, None)
        if self.workers <= 1 or second is None:
            for batch in itertools.chain((first,), () if second is None else (second,), batches):
                yield from fn(batch, *args)
            return
        if self._pool is None:
            self._pool = new_pool(self.workers)
        yield from ordered_map(self._pool, fn, itertools.chain((first, second), batches), self.workers, *args)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


def _batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _picklable(value: object) -> bool:
    try:
        pickle.dumps(value)
    except Exception:  # lambdas, local functions, tokenizers holding native handles
        return False
    return True


def clean_corpus(docs: pd.DataFrame, lang: Language, config: CleaningConfig | None = None) -> CleaningResult:
    """Clean one language partition's documents. Input follows the documents contract."""
    docs = _with_required_columns(docs)
    clean_sink = FrameSink(_empty_frame_like(docs, _CLEAN_DTYPES))
    rejects_sink = FrameSink(_empty_frame_like(docs, _REJECT_DTYPES))
    summary = clean_corpus_stream(FrameSource(docs), lang, config, clean_sink, rejects_sink)
    return CleaningResult(clean_sink.frame(), rejects_sink.frame(), summary.drop_counts, summary.lid_method,
                          summary.stats)  # fmt: skip


def clean_corpus_stream(
    source: RowSource,
    lang: Language,
    config: CleaningConfig | None,
    clean_sink: RowSink,
    rejects_sink: RowSink,
    batch_rows: int = 1024,
) -> CleaningSummary:
    """Clean documents read from ``source`` in batches; chunks and rejects go to the sinks in input order.

    Memory does not grow with the text of the partition: between the two passes the normalised
    texts wait in a temporary file, and output rows are written a batch of input at a time
    (``batch_rows`` input rows are read at once). What is kept per document is small: its id, a few
    flags, ~2 KB in the near-duplicate index if it is kept.
    """
    config = config or CleaningConfig()
    source.require(DOCUMENT_COLUMNS, "documents")
    workers = resolve_workers(config.workers)
    if workers > 1 and not _picklable(config):
        workers = 1  # a custom token counter that cannot travel to other processes
    runner = _Runner(workers, config.batch_size)
    try:
        return _clean(source, lang, config, runner, clean_sink, rejects_sink, batch_rows)
    finally:
        runner.close()


@dataclass
class CleaningSummary:
    drop_counts: dict[str, int]
    lid_method: str
    stats: dict[str, Any]
    n_tokens: list[int]  # per chunk written, for the histogram
    preview: pd.DataFrame  # the first chunks written


class _TextSpill:
    """Texts written once and read back once, in order, from a temporary file."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())

    def append(self, text: str) -> None:
        data = text.encode("utf-8", "surrogatepass")
        self._file.write(len(data).to_bytes(8, "little"))
        self._file.write(data)

    def __iter__(self) -> Iterator[str]:
        self._file.flush()
        self._file.seek(0)
        while header := self._file.read(8):
            yield self._file.read(int.from_bytes(header, "little")).decode("utf-8", "surrogatepass")

    def close(self) -> None:
        self._file.close()


class _Writer:
    """Output rows for the input rows in order, built one input batch at a time."""

    PREVIEW_ROWS = 10

    def __init__(self, source: RowSource, batch_rows: int, clean_sink: RowSink, rejects_sink: RowSink) -> None:
        self._frames = source.iter_frames(batch_rows)
        self._frame: pd.DataFrame | None = None
        self._start = self._end = 0
        self._chunks: list[tuple[int, str, int, int, int, LidResult]] = []
        self._rejects: list[tuple[int, str, str]] = []
        self._clean_sink, self._rejects_sink = clean_sink, rejects_sink
        self.n_tokens: list[int] = []
        self.preview: list[pd.DataFrame] = []
        self._previewed = 0

    def _at(self, pos: int) -> None:
        while pos >= self._end:
            self._flush()
            frame = next(self._frames)
            self._frame, self._start, self._end = frame.reset_index(drop=True), self._end, self._end + len(frame)

    def chunks(self, pos: int, rows: list[tuple[int, str, int, int, int, LidResult]]) -> None:
        self._at(pos)
        self._chunks.extend(rows)

    def reject(self, pos: int, reason: str, detail: str) -> None:
        self._at(pos)
        self._rejects.append((pos, reason, detail))

    def _flush(self) -> None:
        if self._frame is None:
            return
        if self._chunks:
            clean = _build_clean(self._frame, [(r[0] - self._start, *r[1:]) for r in self._chunks])
            self._clean_sink.write(clean)
            self.n_tokens.extend(r[4] for r in self._chunks)
            if self._previewed < self.PREVIEW_ROWS:
                self.preview.append(clean.head(self.PREVIEW_ROWS - self._previewed))
                self._previewed += len(self.preview[-1])
        if self._rejects:
            self._rejects_sink.write(_build_rejects(self._frame, [(r[0] - self._start, *r[1:]) for r in self._rejects]))
        self._chunks, self._rejects = [], []

    def close(self) -> None:
        self._flush()
        self._frame = None


def _clean(
    source: RowSource, lang: Language, config: CleaningConfig, runner: _Runner, clean_sink: RowSink,
    rejects_sink: RowSink, batch_rows: int,
) -> CleaningSummary:  # fmt: skip
    seen_ids: set[str] = set()
    drops: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
    writer = _Writer(source, batch_rows, clean_sink, rejects_sink)
    n_rejected = 0

    def reject(pos: int, reason: str, detail: str) -> None:
        nonlocal n_rejected
        drops[reason] += 1
        n_rejected += 1
        writer.reject(pos, reason, detail)

    doc_ids = [_as_doc_id(v) for v in source.column("doc_id")] if source.num_rows else []
    all_sources = source.column("source") if source.num_rows else []
    valid: list[int] = []  # positions with a usable, first-seen doc_id
    invalid: list[tuple[int, str]] = []  # (position, detail), rejected in input order below
    for pos, doc_id in enumerate(doc_ids):
        if not doc_id or doc_id in seen_ids:
            invalid.append((pos, "doc_id is missing" if not doc_id else f"doc_id {doc_id!r} repeats"))
            continue
        seen_ids.add(doc_id)
        valid.append(pos)
    del seen_ids
    is_valid = np.zeros(len(doc_ids), dtype=bool)
    is_valid[valid] = True

    def raw_texts() -> Iterator[object]:
        pos = 0
        for frame in source.iter_frames(batch_rows, ["text"]):
            for value in frame["text"].tolist():
                if is_valid[pos]:
                    yield value
                pos += 1

    # Pass 1 (workers): normalise; each document's furniture statistics come back as hashes.
    sources = ["" if _missing(s) else str(s) for s in (all_sources[p] for p in valid)]
    del all_sources
    counters: dict[str, RecurringCounter] = {}
    first_seen: set[tuple[str, bytes]] = set()
    spill = _TextSpill()
    repeats: list[bool] = []
    boilerplate_per_doc: list[int] = []
    ftfy_repaired = chars_in = 0
    try:
        for i, n in enumerate(runner.map(_normalise_batch, raw_texts(), config)):
            spill.append(n.text)
            boilerplate_per_doc.append(n.boilerplate_lines)
            ftfy_repaired += n.ftfy_changed
            chars_in += n.chars_in
            digest = n.keys.digest if n.keys is not None else text_fingerprint(n.text).encode()
            # Same source, same normalised text: the same text after furniture removal, so an exact
            # duplicate (or as short as the first); language ID is not needed for it.
            repeats.append((sources[i], digest) in first_seen)
            first_seen.add((sources[i], digest))
            if n.keys is not None:
                counters.setdefault(sources[i], RecurringCounter()).add(n.keys)
        del first_seen
        furniture_config = config.furniture()
        recurring = (
            {source: c.result(furniture_config) for source, c in counters.items()} if config.remove_furniture else None
        )
        del counters

        # Pass 2 (workers): furniture, language ID, signatures, chunks; decisions here, in input order.
        exact = ExactDeduplicator()
        near = NearDeduplicator(
            config.near_duplicate_threshold, config.num_perm, config.shingle_size, config.minhash_seed
        )
        furniture_counts: Counter[str] = Counter()
        names: dict[int, str] = {}
        chars_out = kept_docs = split_docs = 0
        lid_sum_kept = 0.0
        pending_invalid = iter(invalid)
        next_invalid = next(pending_invalid, None)

        def items() -> Iterator[tuple[str, bool, str]]:
            for i, text in enumerate(spill):
                yield text, repeats[i], sources[i]

        for i, facts in enumerate(runner.map(_facts_batch, items(), lang, config, recurring)):
            pos = valid[i]
            while next_invalid is not None and next_invalid[0] < pos:
                reject(next_invalid[0], "invalid_doc_id", next_invalid[1])
                next_invalid = next(pending_invalid, None)
            furniture_counts.update(facts.furniture)
            names.update(facts.furniture_names)
            keep, reason = facts.length
            if not keep:
                removed = sum(facts.furniture.values())
                detail = (
                    f"nothing left after cleaning ({boilerplate_per_doc[i]} boilerplate lines removed"
                    + (f", {removed} furniture lines" if removed else "") + ")"
                    if reason == "empty_after_cleaning"
                    else f"{facts.n_chars} chars, {facts.n_words} words; minimum {config.min_chars} chars, "
                    f"{config.min_words} words"
                )
                reject(pos, str(reason), detail)
                continue
            doc_id = doc_ids[pos]
            if (first := exact.duplicate_of_fingerprint(doc_id, facts.fingerprint)) is not None:
                reject(pos, "exact_duplicate", f"same text as doc_id {first}")
                continue
            lid = facts.lid
            assert lid is not None  # only repeats skip language ID, and a repeat is caught just above
            if facts.signature is None:  # the language filter failed in the worker
                reject(
                    pos,
                    "wrong_language",
                    f"{lid.method} says {lid.lang} ({lid.score:.2f}); expected {lang.key} with score >= "
                    f"{config.min_lid_score}",
                )
                continue
            if (match := near.duplicate_of_signature(doc_id, facts.signature)) is not None:
                reject(pos, "near_duplicate", f"Jaccard ~{match[1]:.2f} with doc_id {match[0]}")
                continue
            chars_out += facts.n_chars
            kept_docs += 1
            split_docs += len(facts.chunks) > 1
            lid_sum_kept += lid.score
            writer.chunks(pos, [(pos, chunk, index, len(facts.chunks), n_tokens, lid)
                                for index, (chunk, n_tokens) in enumerate(facts.chunks)])  # fmt: skip
        while next_invalid is not None:
            reject(next_invalid[0], "invalid_doc_id", next_invalid[1])
            next_invalid = next(pending_invalid, None)
        writer.close()
    finally:
        spill.close()

    report = {
        source or "unknown": recurring_report(r, names)
        for source, r in sorted((recurring or {}).items()) if r
    }
    n_tokens = writer.n_tokens
    stats: dict[str, Any] = {
        "documents_in": source.num_rows,
        "documents_kept": kept_docs,
        "documents_dropped": n_rejected,
        "chunks": len(n_tokens),
        "documents_split": split_docs,
        "tokens_total": int(sum(n_tokens)),
        "tokens_mean_per_chunk": round(sum(n_tokens) / len(n_tokens), 1) if n_tokens else 0.0,
        "tokens_max_per_chunk": max(n_tokens) if n_tokens else 0,
        "token_budget": config.max_tokens,
        "token_counter": config.counter_name(),
        "boilerplate_lines_removed": sum(boilerplate_per_doc),
        "furniture_lines_removed": sum(furniture_counts.values()),
        "furniture_lines_by_kind": {k: furniture_counts.get(k, 0) for k in FURNITURE_KINDS},
        "recurring_furniture": report,
        "ftfy_repaired_documents": ftfy_repaired,
        "chars_in": chars_in,
        "chars_kept": chars_out,
        "lid_method": lid_method_for(lang),
        "min_lid_score": config.min_lid_score,
        "lid_score_mean_kept": round(lid_sum_kept / kept_docs, 4) if kept_docs else 0.0,
        "near_duplicate_threshold": config.near_duplicate_threshold,
        "workers": runner.workers,
    }
    preview = (pd.concat(writer.preview, ignore_index=True) if writer.preview
               else pd.DataFrame(columns=[*source.columns, *_CLEAN_DTYPES]))  # fmt: skip
    return CleaningSummary(drops, lid_method_for(lang), stats, n_tokens, preview)


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
