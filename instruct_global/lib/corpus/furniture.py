"""Page furniture found by corpus statistics: what recurs across many documents of one source.

An article's own sentences do not repeat across dozens of other articles; image credits, video
notes ("Danna lasifikar da ke sama domin kallon bidiyon"), related-stories headers and byline
labels do. Two statistics per source (one language partition at a time):

- recurring lines: a line (compared casefolded, NFC) found in at least ``min_docs`` documents
  and at least ``min_share`` of the source's documents;
- recurring prefixes: the words before the first comma or colon of a short line
  (``Asalin hoton``, ``Àwọn iròyin tì ẹ leè ní ìfẹ̀ síí``), with the same thresholds; a short line
  that starts with such a prefix is furniture whatever follows it (``Asalin hoton, Reuters``,
  ``Asalin hoton, Getty Images``).

Exact duplicate documents count once, so a copied article cannot make its own lines look like
furniture. Pure Python; no dagster import.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from instruct_global.lib.corpus.bbc_labels import LabelMatcher

_PREFIX_SEPARATORS = (",", ":", "፣", "፡", "：")


def _key(line: str) -> str:
    """``line_key`` without the NFC step: cleaning hands over NFC text, and learning and removal
    both use this one form, so they agree."""
    return " ".join(line.casefold().split()).replace("’", "'").rstrip(" :：፡")


@dataclass(frozen=True)
class FurnitureConfig:
    min_docs: int = 10  # a line must recur in at least this many documents ...
    min_share: float = 0.05  # ... and in at least this share of the source's documents
    max_prefix_words: int = 6  # a prefix is at most this many words
    max_line_words: int = 16  # prefixes are learnt from, and applied to, lines this short

    def __post_init__(self) -> None:
        if self.min_docs < 2:
            raise ValueError(f"furniture min_docs must be >= 2, got {self.min_docs}")
        if not 0.0 < self.min_share <= 1.0:
            raise ValueError(f"furniture min_share must be in (0, 1], got {self.min_share}")


def line_prefix(key: str, max_words: int) -> str | None:
    """The words before the first comma/colon of a line key, if there are 1..max_words of them."""
    cut = min((i for i in (key.find(s) for s in _PREFIX_SEPARATORS) if i > 0), default=-1)
    if cut <= 0 or cut >= len(key) - 1:
        return None
    prefix = key[:cut].strip()
    if not prefix or len(prefix.split()) > max_words:
        return None
    return prefix


@dataclass
class RecurringFurniture:
    """The recurring lines and prefixes of one source."""

    documents: int = 0
    lines: dict[str, int] = field(default_factory=dict)  # key -> documents it occurs in
    prefixes: dict[str, int] = field(default_factory=dict)

    def as_dict(self, top: int = 10) -> dict[str, object]:
        def best(counts: dict[str, int]) -> list[list[object]]:
            return [[k, n] for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]]

        return {"documents": self.documents, "lines": best(self.lines), "prefixes": best(self.prefixes)}


def learn_recurring(texts: Iterable[str], config: FurnitureConfig) -> RecurringFurniture:
    """Recurring lines and prefixes over one source's documents (exact duplicates count once)."""
    line_docs: Counter[str] = Counter()
    prefix_docs: Counter[str] = Counter()
    seen: set[bytes] = set()
    documents = 0
    for text in texts:
        digest = hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()
        if digest in seen:
            continue
        seen.add(digest)
        documents += 1
        keys = {_key(line) for line in text.split("\n")}
        keys.discard("")
        line_docs.update(keys)
        prefix_docs.update(
            {
                p
                for k in keys
                if k.count(" ") < config.max_line_words
                and (p := line_prefix(k, config.max_prefix_words)) is not None
            }
        )
    needed = max(config.min_docs, config.min_share * documents)
    return RecurringFurniture(
        documents=documents,
        lines={k: n for k, n in line_docs.items() if n >= needed},
        prefixes={k: n for k, n in prefix_docs.items() if n >= needed},
    )


FURNITURE_KINDS = ("service_label", "recurring_line", "recurring_prefix")


def furniture_kind(
    line: str, recurring: RecurringFurniture | None, labels: LabelMatcher | None, config: FurnitureConfig
) -> str | None:
    """Why ``line`` is furniture (one of FURNITURE_KINDS), or None when it is text."""
    if labels is not None and labels.is_furniture(line):
        return "service_label"
    if recurring is None or not (recurring.lines or recurring.prefixes):
        return None
    key = _key(line)
    if not key:
        return None
    if key in recurring.lines:
        return "recurring_line"
    if recurring.prefixes and key.count(" ") < config.max_line_words:
        prefix = line_prefix(key, config.max_prefix_words)
        if prefix is not None and prefix in recurring.prefixes:
            return "recurring_prefix"
    return None



def _join_without_blank_runs(kept: list[str]) -> str:
    """The kept lines, with no runs of blank lines where furniture stood."""
    out: list[str] = []
    for line in kept:
        if line.strip() or (out and out[-1].strip()):
            out.append(line)
    return "\n".join(out).strip()

def remove_furniture(
    text: str,
    recurring: RecurringFurniture | None,
    labels: LabelMatcher | None,
    config: FurnitureConfig,
    counts: Counter[str] | None = None,
) -> str:
    """``text`` without its furniture lines; what went is added to ``counts`` by kind."""
    kept: list[str] = []
    for line in text.split("\n"):
        kind = furniture_kind(line, recurring, labels, config) if line.strip() else None
        if kind is None:
            kept.append(line)
        elif counts is not None:
            counts[kind] += 1
    return _join_without_blank_runs(kept)


# ---------------------------------------------------------------------------------------------
# The same statistics as learn_recurring / remove_furniture, in a form for large corpora: what a
# document contributes is computed where it is normalised (a worker process) as 64-bit hashes of
# its line keys and prefixes, this process only counts hashes (8 bytes per document and distinct
# line, not a second copy of the corpus as strings), and removal matches lines by hash.
# ---------------------------------------------------------------------------------------------


_HASH_KEY = "instruct-global-"  # 16 characters: the SipHash key of pandas, fixed so every process agrees


def hash_keys(keys: list[str]) -> np.ndarray:
    """64-bit hashes (uint64) of line keys or prefixes, one vectorised call, the same in every
    process (unlike ``hash``)."""
    if not keys:
        return np.empty(0, dtype=np.uint64)
    return pd.util.hash_array(np.array(keys, dtype=object), hash_key=_HASH_KEY, categorize=False)


def key_hash(key: str) -> int:
    return int(hash_keys([key])[0])


# What str.split treats as whitespace, other than the space and the newline.
_OTHER_WHITESPACE = re.compile("[\t\x0b\x0c\r\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")


def line_keys(text: str) -> list[str]:
    """``_key`` of every line of ``text`` ("" for blank lines), folding the text once when it is
    tidy (single spaces, no space at a line's ends: then ``" ".join(line.split())`` is the line)."""
    if "  " in text or "\n " in text or " \n" in text or text[:1] == " " or text[-1:] == " " or (
        _OTHER_WHITESPACE.search(text)
    ):
        return [_key(line) for line in text.split("\n")]
    folded = text.casefold()  # character by character, so line by line too
    if "’" in folded:
        folded = folded.replace("’", "'")
    return [line.rstrip(" :：፡") for line in folded.split("\n")]


@dataclass(frozen=True)
class DocumentKeys:
    """What one document adds to its source's statistics."""

    digest: bytes  # of the whole text: exact duplicates count once
    lines: bytes  # uint64 hashes of its distinct line keys
    prefixes: bytes  # uint64 hashes of its distinct short-line prefixes


def document_keys(text: str, config: FurnitureConfig) -> DocumentKeys:
    keys = set(line_keys(text))
    keys.discard("")
    prefixes = {
        p for k in keys
        if k.count(" ") < config.max_line_words and (p := line_prefix(k, config.max_prefix_words)) is not None
    }
    return DocumentKeys(
        hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest(),
        hash_keys(list(keys)).tobytes(),
        hash_keys(list(prefixes)).tobytes(),
    )


@dataclass(frozen=True)
class RecurringHashes:
    """The recurring lines and prefixes of one source, as key hashes -> documents."""

    documents: int = 0
    lines: dict[int, int] = field(default_factory=dict)
    prefixes: dict[int, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.lines or self.prefixes)


class RecurringCounter:
    """Counts one source's line and prefix hashes over its documents (duplicates once)."""

    _FLUSH = 4096  # documents between merges of the per-document arrays

    def __init__(self) -> None:
        self.documents = 0
        self._seen: set[bytes] = set()
        self._pending: tuple[list[bytes], list[bytes]] = ([], [])
        self._lines: list[np.ndarray] = []
        self._prefixes: list[np.ndarray] = []

    def add(self, keys: DocumentKeys) -> None:
        if keys.digest in self._seen:
            return
        self._seen.add(keys.digest)
        self.documents += 1
        self._pending[0].append(keys.lines)
        self._pending[1].append(keys.prefixes)
        if len(self._pending[0]) >= self._FLUSH:
            self._flush()

    def _flush(self) -> None:
        lines, prefixes = self._pending
        if lines:
            self._lines.append(np.frombuffer(b"".join(lines), dtype=np.uint64))
            self._prefixes.append(np.frombuffer(b"".join(prefixes), dtype=np.uint64))
        self._pending = ([], [])

    def result(self, config: FurnitureConfig) -> RecurringHashes:
        self._flush()
        needed = max(config.min_docs, config.min_share * self.documents)

        def recurring(parts: list[np.ndarray]) -> dict[int, int]:
            if not parts:
                return {}
            values, counts = np.unique(np.concatenate(parts), return_counts=True)
            keep = counts >= needed
            return dict(zip(values[keep].tolist(), counts[keep].tolist(), strict=True))

        return RecurringHashes(self.documents, recurring(self._lines), recurring(self._prefixes))


def remove_furniture_hashed(
    text: str,
    recurring: RecurringHashes,
    labels: LabelMatcher | None,
    config: FurnitureConfig,
    counts: Counter[str],
    names: dict[int, str],
) -> str:
    """``remove_furniture`` with ``recurring`` as hashes; the keys of removed recurring lines and
    prefixes go to ``names`` (hash -> text), for the report."""
    if labels is None and not recurring:
        return text  # nothing can match: the text stays as it is (normalised text is tidy)
    lines = text.split("\n")
    keys = line_keys(text) if recurring else [""] * len(lines)
    hashes = hash_keys(keys).tolist() if recurring else []
    short_prefix: dict[int, str] = {}  # line -> its prefix, for short lines with one
    if recurring.prefixes:
        for i, key in enumerate(keys):
            if key and key.count(" ") < config.max_line_words:
                prefix = line_prefix(key, config.max_prefix_words)
                if prefix is not None:
                    short_prefix[i] = prefix
    prefix_hashes = dict(zip(short_prefix, hash_keys(list(short_prefix.values())).tolist(), strict=True))
    kept: list[str] = []
    for i, line in enumerate(lines):
        kind = None
        if line.strip():
            # The report names every recurring key it counts, whatever removed its lines.
            is_line = bool(keys[i]) and hashes[i] in recurring.lines
            is_prefix = i in prefix_hashes and prefix_hashes[i] in recurring.prefixes
            if is_line:
                names[hashes[i]] = keys[i]
            if is_prefix:
                names[prefix_hashes[i]] = short_prefix[i]
            if labels is not None and labels.is_furniture(line):
                kind = "service_label"
            elif is_line:
                kind = "recurring_line"
            elif is_prefix:
                kind = "recurring_prefix"
        if kind is None:
            kept.append(line)
        else:
            counts[kind] += 1
    return _join_without_blank_runs(kept)


def recurring_report(recurring: RecurringHashes, names: dict[int, str], top: int = 10) -> dict[str, object]:
    """``RecurringFurniture.as_dict`` for hashed statistics (keys never seen removed are left out)."""
    def named(counts: dict[int, int]) -> dict[str, int]:
        return {names[h]: n for h, n in counts.items() if h in names}

    return RecurringFurniture(recurring.documents, named(recurring.lines), named(recurring.prefixes)).as_dict(top)
