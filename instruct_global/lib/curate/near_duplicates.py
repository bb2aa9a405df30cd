"""Exact and near-duplicate removal over many short rows, first occurrence wins.

Words come from the Unicode-aware tokenizer (``text_tokens.unicode_word_tokenize``: NFC, case
folded, any script), so Yoruba tone marks or Ethiopic text compare as words. Near duplicates:
word shingles, MinHash signatures computed for all rows at once with numpy, LSH bands tuned for
high recall at the threshold, and every candidate confirmed by its *exact* Jaccard similarity:
an LSH false positive is never dropped. Everything is seeded and content-hashed, so the same
rows give the same decisions on every run and machine.

Cost grows about linearly with the number of rows (the naive alternative compares all pairs);
``benchmarks/bench_curate.py`` prints both side by side.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from instruct_global.lib.common.text_tokens import unicode_word_tokenize

_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a fast, well-spread 64-bit hash of 64-bit values (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _token_hash(token: str) -> int:
    return int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest(), "little")


@dataclass
class DedupeResult:
    keep: np.ndarray  # bool per row
    duplicate_of: list[int | None]  # index of the kept row each dropped row duplicates
    reason: list[str | None]  # "exact_duplicate" / "near_duplicate" / "empty_text" / None
    similarity: list[float | None]
    candidates_checked: int = 0


class RowDeduplicator:
    def __init__(self, threshold: float = 0.8, shingle_size: int = 3, num_perm: int = 64, seed: int = 1) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"near-duplicate threshold must be in (0, 1], got {threshold}")
        if shingle_size < 1:
            raise ValueError("shingle_size must be at least 1")
        self.threshold = threshold
        self.shingle_size = shingle_size
        self.num_perm = num_perm
        rng = np.random.default_rng(seed)
        self._seeds = rng.integers(0, 2**63 - 1, size=num_perm, dtype=np.int64).astype(np.uint64)
        self.bands, self.rows_per_band = self._bands(threshold, num_perm)
        self._token_cache: dict[str, int] = {}

    @staticmethod
    def _bands(threshold: float, num_perm: int) -> tuple[int, int]:
        """The longest band (fewest false candidates) whose recall at the threshold is >= 99.5%."""
        best = (num_perm, 1)
        for r in range(1, num_perm + 1):
            if num_perm % r:
                continue
            b = num_perm // r
            if 1 - (1 - threshold**r) ** b >= 0.995:
                best = (b, r)
        return best

    # -- shingles ----------------------------------------------------------------------------------
    def shingle_table(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[bytes]]:
        """All rows' shingle hashes in one flat array, each row's [start, end) in it, and a key of
        each row's words (for exact duplicates). A text without words has no shingles."""
        cache = self._token_cache
        k = self.shingle_size
        flat_tokens: list[int] = []
        token_starts = np.zeros(len(texts) + 1, dtype=np.int64)
        word_keys: list[bytes] = []
        for i, text in enumerate(texts):
            words = unicode_word_tokenize(text or "")
            word_keys.append(hashlib.sha256("\x1f".join(words).encode("utf-8")).digest())
            for w in words:
                h = cache.get(w)
                if h is None:
                    h = cache[w] = _token_hash(w)
                flat_tokens.append(h)
            token_starts[i + 1] = len(flat_tokens)
        tokens = np.asarray(flat_tokens, dtype=np.uint64)
        lengths = np.diff(token_starts)
        # one window per k consecutive tokens of a row; a row shorter than k is one shorter window
        windows = np.maximum(lengths - k + 1, np.minimum(lengths, 1))
        starts = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(windows, out=starts[1:])
        row_of_window = np.repeat(np.arange(len(texts)), windows)
        first_token = token_starts[:-1][row_of_window] + (np.arange(starts[-1]) - starts[:-1][row_of_window])
        width = np.minimum(lengths[row_of_window], k)
        acc = np.zeros(len(first_token), dtype=np.uint64)
        for offset in range(k):  # fold k token hashes into one (rows shorter than k fold fewer)
            active = offset < width
            acc[active] = _mix(acc[active] ^ tokens[first_token[active] + offset])
        return acc, starts, word_keys

    # -- MinHash -------------------------------------------------------------------------------------
    def signatures(self, shingles: np.ndarray, starts: np.ndarray, rows: np.ndarray,
                   block_shingles: int = 1 << 16) -> np.ndarray:
        """(len(rows), num_perm) MinHash signatures of the given rows (each must have shingles)."""
        sig = np.empty((len(rows), self.num_perm), dtype=np.uint64)
        position = 0
        while position < len(rows):
            # a block of whole rows with about block_shingles shingles in all
            end = position + 1
            budget = starts[rows[position] + 1] - starts[rows[position]]
            while end < len(rows) and budget + (starts[rows[end] + 1] - starts[rows[end]]) <= block_shingles:
                budget += starts[rows[end] + 1] - starts[rows[end]]
                end += 1
            block = rows[position:end]
            pieces = [shingles[starts[r] : starts[r + 1]] for r in block]
            flat = np.concatenate(pieces)
            offsets = np.zeros(len(block), dtype=np.int64)
            np.cumsum([len(p) for p in pieces[:-1]], out=offsets[1:])
            # each permutation: hash(shingle ^ seed); the min per row via reduceat
            sig[position:end] = np.minimum.reduceat(_mix(flat[:, None] ^ self._seeds[None, :]), offsets, axis=0)
            position = end
        return sig

    def _band_keys(self, sig: np.ndarray) -> np.ndarray:
        r = self.rows_per_band
        keys = np.zeros((sig.shape[0], self.bands), dtype=np.uint64)
        for b in range(self.bands):
            acc = np.full(sig.shape[0], np.uint64(b), dtype=np.uint64)
            for j in range(r):
                acc = _mix(acc ^ sig[:, b * r + j])
            keys[:, b] = acc
        return keys

    # -- decisions -----------------------------------------------------------------------------------
    @staticmethod
    def jaccard(a: np.ndarray, b: np.ndarray) -> float:
        if not len(a) and not len(b):
            return 1.0
        inter = len(np.intersect1d(a, b, assume_unique=True))
        return inter / (len(a) + len(b) - inter)

    def deduplicate(self, texts: Sequence[str]) -> DedupeResult:
        n = len(texts)
        keep = np.ones(n, dtype=bool)
        dup_of: list[int | None] = [None] * n
        reason: list[str | None] = [None] * n
        similarity: list[float | None] = [None] * n
        shingles, starts, word_keys = self.shingle_table(texts)
        # exact duplicates first: same words in the same order (case, NFC and punctuation aside)
        first_by_words: dict[bytes, int] = {}
        for i in range(n):
            if starts[i + 1] == starts[i]:
                keep[i], reason[i] = False, "empty_text"
                continue
            first = first_by_words.setdefault(word_keys[i], i)
            if first != i:
                keep[i], dup_of[i], reason[i], similarity[i] = False, first, "exact_duplicate", 1.0
        alive = np.flatnonzero(keep)
        keys = self._band_keys(self.signatures(shingles, starts, alive)) if len(alive) else np.empty((0, self.bands))
        sets: dict[int, np.ndarray] = {}

        def shingle_set(row: int) -> np.ndarray:
            if row not in sets:
                sets[row] = np.unique(shingles[starts[row] : starts[row + 1]])
            return sets[row]

        buckets: list[dict[int, list[int]]] = [{} for _ in range(self.bands)]
        checked = 0
        for position, i in enumerate(alive.tolist()):
            row_keys = keys[position].tolist()
            candidates: set[int] = set()
            for b, key in enumerate(row_keys):
                members = buckets[b].get(key)
                if members:
                    candidates.update(members)
            best: tuple[float, int] | None = None
            for j in sorted(candidates):
                checked += 1
                sim = self.jaccard(shingle_set(i), shingle_set(j))
                if sim >= self.threshold and (best is None or sim > best[0]):
                    best = (sim, j)
            if best is not None:
                keep[i], dup_of[i], reason[i], similarity[i] = False, best[1], "near_duplicate", round(best[0], 4)
                continue
            for b, key in enumerate(row_keys):
                buckets[b].setdefault(key, []).append(i)
        return DedupeResult(keep, dup_of, reason, similarity, checked)


def naive_near_duplicates(texts: Sequence[str], threshold: float = 0.8, shingle_size: int = 3) -> np.ndarray:
    """The reference: every row against every kept earlier row, exact Jaccard (quadratic)."""
    dedupe = RowDeduplicator(threshold=threshold, shingle_size=shingle_size)
    shingles, starts, _ = dedupe.shingle_table(texts)
    sets = [set(shingles[starts[i] : starts[i + 1]].tolist()) for i in range(len(texts))]
    keep = np.ones(len(texts), dtype=bool)
    kept: list[int] = []
    for i, s in enumerate(sets):
        if not s:
            keep[i] = False
            continue
        for j in kept:
            other = sets[j]
            inter = len(s & other)
            if inter and inter / (len(s) + len(other) - inter) >= threshold:
                keep[i] = False
                break
        if keep[i]:
            kept.append(i)
    return keep
