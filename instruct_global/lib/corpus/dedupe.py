"""Exact and near-duplicate detection for documents, first occurrence wins.

Near duplicates: MinHash over word 5-shingles, candidates from LSH, confirmed by the estimated
Jaccard similarity so an LSH false positive is never dropped. Seeds and hash functions are fixed,
so the same input gives the same decisions on every run, machine and worker process.

Signatures are computed with numpy in one vectorised pass per document: each distinct word is
hashed once (CRC-32 of its casefolded UTF-8, cached), a shingle's hash is a polynomial over its
words' hashes, and datasketch's ``affine32`` permutation scheme (MurmurHash3 finalizer, then
``a * h + b`` in 32 bits) turns those into the signature. This replaces hashing every shingle
string with SHA-1 in Python, which was the bulk of near-duplicate detection's cost.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence

import numpy as np
from datasketch import MinHash
from datasketch.lsh import _optimal_param

from instruct_global.lib.common.text_tokens import WORD_RE

_SCHEME = "affine32"
_LSH_RECALL_FACTOR = 0.7
_ROWS_PER_BLOCK = 2048  # shingles permuted at a time: bounded temporary memory for long texts
_WORD_CACHE_LIMIT = 1 << 20
_word_hashes: dict[str, int] = {}
_POLY = np.uint64(0x100000001B3)  # FNV-64 prime: mixes word hashes in shingle order


def text_fingerprint(text: str) -> str:
    """Hash of the normalised text; whitespace differences do not count."""
    return hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()


def word_shingles(text: str, size: int = 5) -> set[str]:
    words = [w.casefold() for w in WORD_RE.findall(text)]
    if len(words) <= size:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}


def _word_hash_array(words: Sequence[str]) -> np.ndarray:
    cache = _word_hashes
    if len(cache) > _WORD_CACHE_LIMIT:
        cache.clear()  # bounded memory over a large corpus
    for word in set(words).difference(cache):  # most words of a corpus were seen before
        cache[word] = zlib.crc32(word.casefold().encode("utf-8"))
    return np.fromiter(map(cache.__getitem__, words), dtype=np.uint64, count=len(words))


def shingle_hashes(words: Sequence[str], size: int = 5) -> np.ndarray:
    """32-bit hashes of the word ``size``-shingles (casefolded), as ``word_shingles`` forms them."""
    if not words:
        return np.empty(0, dtype=np.uint32)
    w = _word_hash_array(words)
    width = min(size, len(w))
    n = len(w) - width + 1
    h = w[:n].copy()
    for j in range(1, width):
        h = h * _POLY ^ w[j : j + n]
    h ^= h >> np.uint64(29)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(32)
    return h.astype(np.uint32)


def _fmix32(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


class ExactDeduplicator:
    def __init__(self) -> None:
        self._first: dict[str, str] = {}

    def duplicate_of(self, doc_id: str, text: str) -> str | None:
        """The doc_id first seen with this text, or None (and remember this one)."""
        return self.duplicate_of_fingerprint(doc_id, text_fingerprint(text))

    def duplicate_of_fingerprint(self, doc_id: str, key: str) -> str | None:
        first = self._first.get(key)
        if first is None:
            self._first[key] = doc_id
        return first

    def check(self, doc_id: str, text: str) -> tuple[bool, str | None]:
        return (True, None) if self.duplicate_of(doc_id, text) is None else (False, "exact_duplicate")


class MinHashSigner:
    """MinHash signatures of word shingles; what worker processes need (no LSH index)."""

    def __init__(self, num_perm: int = 128, shingle_size: int = 5, seed: int = 1) -> None:
        self.num_perm = num_perm
        self.shingle_size = shingle_size
        self.seed = seed
        # One permutation set for every signature: fixed seed and scheme, computed once, so a
        # datasketch upgrade that changes its default scheme cannot silently change decisions.
        self.permutations = MinHash(num_perm=num_perm, seed=seed, scheme=_SCHEME).permutations
        a, b = self.permutations
        self._a = np.asarray(a, dtype=np.uint32)
        self._b = np.asarray(b, dtype=np.uint32)

    def signature(self, words: Sequence[str]) -> np.ndarray:
        """MinHash values (uint32, ``num_perm``) of the word shingles of ``words``."""
        sig = np.full(self.num_perm, np.iinfo(np.uint32).max, dtype=np.uint32)
        hv = shingle_hashes(words, self.shingle_size)
        if len(hv):
            hv = np.unique(hv)  # a set, as the shingles are
            mixed = _fmix32(hv)
            for start in range(0, len(mixed), _ROWS_PER_BLOCK):
                block = mixed[start : start + _ROWS_PER_BLOCK].reshape(-1, 1)
                np.minimum(sig, (block * self._a + self._b).min(axis=0), out=sig)
        return sig


class NearDeduplicator:
    """First-seen-wins near-duplicate index over MinHash signatures, compact in memory.

    Banding as datasketch's ``MinHashLSH`` chooses it for the (lowered) threshold, so the same
    pairs become candidates; each candidate is confirmed by the Jaccard estimate. The index keeps
    one uint32 signature row per kept document and one 64-bit key per band (a hash of the band's
    values), about 2 KB per document instead of datasketch's MinHash objects and byte-string
    tables. Two different bands hashing alike only add a candidate, which the estimate then
    judges, so no pair is dropped that the estimate puts below the threshold.
    """

    def __init__(
        self, threshold: float = 0.8, num_perm: int = 128, shingle_size: int = 5, seed: int = 1
    ) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"near-duplicate threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold
        self.num_perm = num_perm
        self.shingle_size = shingle_size
        self.seed = seed
        # LSH banding tuned at the decision threshold misses a fair share of pairs just above it;
        # tuning it lower and confirming each candidate by its Jaccard estimate keeps recall high
        # without dropping anything below the threshold.
        self.bands, self.rows = _optimal_param(max(0.05, threshold * _LSH_RECALL_FACTOR), num_perm, 0.5, 0.5)
        self._signer = MinHashSigner(num_perm, shingle_size, seed)
        self._permutations = self._signer.permutations
        self._band_salt = np.arange(1, self.bands + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        self._buckets: dict[int, int | list[int]] = {}  # band key -> row(s) of the kept documents
        self._sigs = np.empty((64, num_perm), dtype=np.uint32)
        self._ids: list[str] = []
        self._known: set[str] = set()

    def _band_keys(self, signature: np.ndarray) -> list[int]:
        bands = signature[: self.bands * self.rows].reshape(self.bands, self.rows).astype(np.uint64)
        h = self._band_salt.copy()
        for j in range(self.rows):
            h = (h ^ bands[:, j]) * _POLY
            h ^= h >> np.uint64(31)
        return h.tolist()

    def signature(self, words: Sequence[str]) -> np.ndarray:
        """MinHash values (uint32, ``num_perm``) of the word shingles of ``words``."""
        return self._signer.signature(words)

    def minhash_of_signature(self, signature: np.ndarray) -> MinHash:
        return MinHash(
            num_perm=self.num_perm, seed=self.seed, hashvalues=signature,
            permutations=self._permutations, scheme=_SCHEME,
        )

    def minhash(self, text: str) -> MinHash:
        return self.minhash_of_signature(self.signature(WORD_RE.findall(text)))

    def duplicate_of(self, doc_id: str, text: str) -> tuple[str, float] | None:
        """(kept doc_id, estimated Jaccard) of the closest earlier near duplicate, or None.

        A document that is not a duplicate is indexed so later ones are compared with it.
        """
        return self.duplicate_of_signature(doc_id, self.signature(WORD_RE.findall(text)))

    def duplicate_of_signature(self, doc_id: str, signature: np.ndarray) -> tuple[str, float] | None:
        signature = np.asarray(signature, dtype=np.uint32)
        keys = self._band_keys(signature)
        rows: set[int] = set()
        for key in keys:
            found = self._buckets.get(key)
            if found is not None:
                rows.update(found) if isinstance(found, list) else rows.add(found)
        best: tuple[str, float] | None = None
        if rows:
            order = sorted(rows)  # earliest first: ties go to the first-seen document
            estimates = (self._sigs[order] == signature).mean(axis=1)
            for row, jaccard in zip(order, estimates.tolist(), strict=True):
                if jaccard >= self.threshold and (best is None or jaccard > best[1]):
                    best = (self._ids[row], jaccard)
        if best is None and doc_id not in self._known:
            self._add(doc_id, signature, keys)
        return best

    def _add(self, doc_id: str, signature: np.ndarray, keys: list[int]) -> None:
        row = len(self._ids)
        if row == len(self._sigs):
            self._sigs = np.concatenate([self._sigs, np.empty_like(self._sigs)])
        self._sigs[row] = signature
        self._ids.append(doc_id)
        self._known.add(doc_id)
        for key in keys:
            found = self._buckets.get(key)
            if found is None:
                self._buckets[key] = row
            elif isinstance(found, list):
                if found[-1] != row:
                    found.append(row)
            elif found != row:
                self._buckets[key] = [found, row]

    def check(self, doc_id: str, text: str) -> tuple[bool, str | None]:
        return (True, None) if self.duplicate_of(doc_id, text) is None else (False, "near_duplicate")
