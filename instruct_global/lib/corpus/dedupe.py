"""Exact and near-duplicate detection for documents, first occurrence wins.

Near duplicates: MinHash over word 5-shingles, candidates from LSH, confirmed by the estimated
Jaccard similarity so an LSH false positive is never dropped. Seeds and hash functions are fixed,
so the same input gives the same decisions on every run and machine.
"""

from __future__ import annotations

import hashlib

from datasketch import MinHash, MinHashLSH

from instruct_global.lib.common.text_tokens import WORD_RE

_SCHEME = "affine32"
_LSH_RECALL_FACTOR = 0.7


def text_fingerprint(text: str) -> str:
    """Hash of the normalised text; whitespace differences do not count."""
    return hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()


def word_shingles(text: str, size: int = 5) -> set[str]:
    words = [w.casefold() for w in WORD_RE.findall(text)]
    if len(words) <= size:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}


class ExactDeduplicator:
    def __init__(self) -> None:
        self._first: dict[str, str] = {}

    def duplicate_of(self, doc_id: str, text: str) -> str | None:
        """The doc_id first seen with this text, or None (and remember this one)."""
        key = text_fingerprint(text)
        first = self._first.get(key)
        if first is None:
            self._first[key] = doc_id
        return first

    def check(self, doc_id: str, text: str) -> tuple[bool, str | None]:
        return (True, None) if self.duplicate_of(doc_id, text) is None else (False, "exact_duplicate")


class NearDeduplicator:
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
        self._lsh = MinHashLSH(threshold=max(0.05, threshold * _LSH_RECALL_FACTOR), num_perm=num_perm)
        self._hashes: dict[str, MinHash] = {}
        self._order: dict[str, int] = {}
        # One permutation set for every signature: fixed seed and scheme, computed once, so a
        # datasketch upgrade that changes its default scheme cannot silently change decisions.
        self._permutations = MinHash(num_perm=num_perm, seed=seed, scheme=_SCHEME).permutations

    def minhash(self, text: str) -> MinHash:
        m = MinHash(num_perm=self.num_perm, seed=self.seed, permutations=self._permutations, scheme=_SCHEME)
        shingles = sorted(word_shingles(text, self.shingle_size))
        if shingles:
            m.update_batch([s.encode("utf-8") for s in shingles])
        return m

    def duplicate_of(self, doc_id: str, text: str) -> tuple[str, float] | None:
        """(kept doc_id, estimated Jaccard) of the closest earlier near duplicate, or None.

        A document that is not a duplicate is indexed so later ones are compared with it.
        """
        m = self.minhash(text)
        best: tuple[str, float] | None = None
        for other in self._lsh.query(m):
            jaccard = float(m.jaccard(self._hashes[other]))
            if jaccard < self.threshold:
                continue
            if best is None or (jaccard, -self._order[other]) > (best[1], -self._order[best[0]]):
                best = (other, jaccard)
        if best is None and doc_id not in self._hashes:
            self._lsh.insert(doc_id, m)
            self._hashes[doc_id] = m
            self._order[doc_id] = len(self._order)
        return best

    def check(self, doc_id: str, text: str) -> tuple[bool, str | None]:
        return (True, None) if self.duplicate_of(doc_id, text) is None else (False, "near_duplicate")
