"""Exact ROUGE-L novelty filtering without comparing against every kept text.

Self-instruct and Alpaca keep a generated instruction only when its ROUGE-L F-measure with every
instruction kept so far is at most 0.7 (``if max(rouge_scores) > 0.7: continue``). Done naively
that is one LCS per kept instruction per candidate, quadratic over a run. ``NoveltyFilter`` makes
exactly the same decisions (bit for bit, including scores of exactly the threshold) while scoring
only the few kept texts that could possibly exceed it.

Why pruning is exact. With m and n tokens and LCS length L, ROUGE-L F = 2L/(m+n). L is at most
the multiset overlap of the two token lists, and at most min(m, n). So a kept text can exceed a
threshold t only if its length is within bounds set by m (length filter) and it shares at least
``need(m + n)``, the least integer above t(m+n)/2, tokens with the candidate. Treating a token's
k-th occurrence as the element (token, k) turns multiset overlap into plain set overlap, so the
prefix filter of set-similarity joins applies: sort each text's elements in one global order;
two texts sharing ``need >= 2`` elements share their first two common ones, and both lie within
the first ``len - need + 2`` elements of each text. Only those prefixes are indexed (with each
element's position) and probed, and a kept text is verified only when met twice: near misses
that share a single rare-ish word are dropped by set operations, in C. (Pairs with ``need == 1``,
very short texts or tiny thresholds, become candidates on one shared element.) Rarest-first
order keeps prefixes made of rare elements, whose postings stay short. The order is document
frequency among kept texts, frozen between re-indexings (at each doubling of the kept set): any
fixed total order keeps the filter exact, the frequencies only make it fast. Elements first seen
after the last re-indexing rank before all others, which extends the frozen order without moving
anything already indexed. Survivors get an exact bit-parallel LCS and the same float arithmetic
as ``rouge_score``; bounds carry a 1e-9 margin so rounding cannot hide a score above t.
"""

from __future__ import annotations

import bisect
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations

from instruct_global.lib.common.text_tokens import rouge_tokenize

# Bounds are loosened by this much so float rounding in rouge-score's F-measure (a few ulps)
# can never turn a pruned pair into one that exceeds the threshold.
_MARGIN = 1e-9
# Kept-set size of the first re-ranking by frequency; later ones happen at each doubling.
_FIRST_REINDEX = 32
# Elements in at most this many kept texts (at the last re-indexing) are rare: a signature they
# start is a pair, where common ones start triples.
_RARE_DOC_FREQ = 40
# Most signatures one kept text may list; longer prefixes use smaller subsets.
_MAX_SIGNATURES = 100

Tokenizer = Callable[[str], list[str]]
_Element = tuple[str, int]  # (token, occurrence number): multiset -> set


@dataclass(frozen=True, slots=True)
class NoveltyCheck:
    """Outcome of checking one text against the kept set.

    ``max_score`` is the highest ROUGE-L F over the kept texts that were scored. When ``exact``
    it is the true maximum over all kept texts; otherwise the true maximum lies in
    ``[max_score, exact_above]`` (texts that could score above ``exact_above`` are always scored).
    """

    novel: bool
    max_score: float
    exact: bool


@dataclass(frozen=True, slots=True)
class _Prepared:
    tokens: list[str]
    elements: list[_Element]


def rouge_l_fmeasure(lcs: int, candidate_len: int, kept_len: int) -> float:
    """ROUGE-L F with rouge-score's exact float operations (``_score_lcs`` + ``fmeasure``)."""
    if candidate_len == 0 or kept_len == 0:
        return 0.0
    precision = lcs / kept_len
    recall = lcs / candidate_len
    if precision + recall > 0:
        return 2 * precision * recall / (precision + recall)
    return 0.0


def lcs_masks(tokens: list[str]) -> dict[str, int]:
    """Bit masks of each token's positions in ``tokens``, for ``lcs_length``."""
    masks: dict[str, int] = {}
    for i, tok in enumerate(tokens):
        masks[tok] = masks.get(tok, 0) | (1 << i)
    return masks


def lcs_length(masks: dict[str, int], length: int, other: list[str]) -> int:
    """Length of the longest common subsequence, bit-parallel (Allison-Dix / Hyyrö).

    ``masks`` and ``length`` describe the first sequence (see ``lcs_masks``). Each token of
    ``other`` costs a few big-int operations instead of a row of the DP table. Carries past bit
    ``length`` never flow back down, so they are masked off only at the end.
    """
    full = (1 << length) - 1
    v = full
    for tok in other:
        match = masks.get(tok)
        if match:
            u = v & match
            v = (v + u) | (v - u)
    return length - (v & full).bit_count()


def _multiset_elements(tokens: list[str]) -> list[_Element]:
    seen: dict[str, int] = {}
    elements: list[_Element] = []
    for tok in tokens:
        k = seen.get(tok, 0) + 1
        seen[tok] = k
        elements.append((tok, k))
    return elements


class NoveltyFilter:
    """Keep texts whose ROUGE-L F with every kept text is at most ``threshold``.

    Decisions equal the naive loop over ``RougeScorer(["rougeL"], use_stemmer=False)`` (with the
    default tokenizer): a text is rejected when any kept text scores strictly above
    ``threshold``. ``exact_above`` (default: ``threshold``) sets how far down reported maximum
    scores are exact; lowering it makes the filter slower (see ``NoveltyCheck``).
    """

    def __init__(
        self,
        threshold: float = 0.7,
        tokenizer: Tokenizer | None = None,
        *,
        exact_above: float | None = None,
    ) -> None:
        floor = threshold if exact_above is None else exact_above
        if not 0.0 <= floor <= threshold <= 1.0:
            raise ValueError(f"need 0 <= exact_above <= threshold <= 1, got {floor} and {threshold}")
        self._threshold = threshold
        self._exact_above = floor
        self._tokenize: Tokenizer = tokenizer or rouge_tokenize
        # Pairs are pruned only when 2 * overlap <= _bound * (m + n): then F <= exact_above.
        self._bound = floor - _MARGIN
        # Kept texts, by position.
        self._tokens: list[list[str]] = []
        self._element_sets: list[frozenset[int]] = []
        self._lengths: list[int] = []
        self._max_len = 0
        # Element ids, their document frequency among kept texts, and their rank in the order.
        self._element_ids: dict[_Element, int] = {}
        self._doc_freq: list[int] = []
        self._rank: list[int] = []
        self._next_fresh_rank = -1
        self._next_reindex = _FIRST_REINDEX
        # Elements ranked below this count as rare (see _signature_keys).
        self._rare_below = 0
        # Hashed signature -> positions of the kept texts that list it.
        self._buckets: dict[int, list[int]] = {}
        # Length bounds, minimal overlaps and signature shapes, cached by length / by m + n.
        self._min_overlap: list[int] = []
        self._length_ranges: dict[int, tuple[int, int]] = {}
        self._shapes: list[tuple[int, int]] = []
        self._groups: dict[int, list[tuple[int, int]]] = {}

    @property
    def threshold(self) -> float:
        return self._threshold

    @property
    def exact_above(self) -> float:
        return self._exact_above

    def __len__(self) -> int:
        return len(self._lengths)

    def add(self, text: str) -> None:
        """Keep ``text`` unconditionally (seed tasks)."""
        self._keep(self._prepare(text))

    def check(self, text: str) -> NoveltyCheck:
        """Score ``text`` against the kept set without keeping it."""
        return self._check(self._prepare(text))

    def submit(self, text: str) -> NoveltyCheck:
        """Check ``text`` and keep it when novel; the check tells both the decision and score."""
        prepared = self._prepare(text)
        result = self._check(prepared)
        if result.novel:
            self._keep(prepared)
        return result

    def add_if_novel(self, text: str) -> bool:
        """Keep ``text`` and return True only when it is novel."""
        return self.submit(text).novel

    def max_score(self, text: str) -> float:
        """Exact highest ROUGE-L F of ``text`` against all kept texts (0.0 when none).

        When the indexed search cannot prove the maximum (it is at most ``exact_above``), this
        falls back to bounding every kept text by token overlap: linear in the kept set, so meant
        for metadata and spot checks, not for the generation loop.
        """
        prepared = self._prepare(text)
        result = self._check(prepared)
        if result.exact:
            return result.max_score
        return self._scan_max(prepared, result.max_score)

    # -- internals -------------------------------------------------------------------------

    def _prepare(self, text: str) -> _Prepared:
        tokens = self._tokenize(text)
        return _Prepared(tokens, _multiset_elements(tokens))

    def _check(self, prepared: _Prepared) -> NoveltyCheck:
        best = self._indexed_max(prepared)
        exact = best > self._exact_above or not prepared.tokens or not self._lengths
        return NoveltyCheck(novel=not best > self._threshold, max_score=best, exact=exact)

    def _indexed_max(self, prepared: _Prepared) -> float:
        """Highest F among kept texts that share a signature with the probe and pass the overlap bound."""
        m = len(prepared.tokens)
        if m == 0 or not self._lengths:
            return 0.0
        known = [e for e in map(self._element_ids.get, prepared.elements) if e is not None]
        known.sort(key=self._rank.__getitem__)
        candidates = self._probe(known, m)
        if not candidates:
            return 0.0
        return self._verify(prepared.tokens, frozenset(known), candidates)

    def _probe(self, known: list[int], m: int) -> set[int]:
        """Kept texts sharing a signature with the probe: every text that can score above the bound."""
        # Unseen elements are in no kept text: counted as first in the probe's order, they take
        # prefix positions without opening signatures (the tightest choice, still exact).
        unseen = m - len(known)
        buckets = self._buckets
        candidates: set[int] = set()
        for need, size in self._probe_groups(m):
            for key in self._signature_keys(known, unseen, m, need, size):
                bucket = buckets.get(key)
                if bucket is not None:
                    candidates.update(bucket)
        return candidates

    def _signature_keys(self, elements: list[int], unseen: int, length: int, need: int, size: int) -> list[int]:
        """Hashed signatures of a text of ``length`` tokens whose known elements, in rank order, are
        ``elements`` (after ``unseen`` elements no kept text has), against partners needing at
        least ``need`` shared elements, for partners whose lengths use signatures of ``size``.

        Two texts sharing c >= need elements have their j-th common element (in rank order)
        within the first ``length - need + j`` elements of each. The signature of a pair is the
        set of its first s common elements, s = ``size``, or at most 2 when the first of them is
        rare (its pairs are already rare), so both texts list it: each text lists, for every
        element that can be first, the s-subsets it starts within that prefix.
        """
        rank = self._rank
        rare_below = self._rare_below
        keys: list[int] = []
        first_end = min(length - need + 1 - unseen, len(elements))
        for i in range(first_end):
            e = elements[i]
            s = 2 if size == 3 and rank[e] < rare_below else size
            if s == 1:
                keys.append(hash((e,)))
                continue
            rest = elements[i + 1 : length - need + s - unseen]
            if s == 2:
                keys.extend([hash((e, f)) for f in rest])
            else:
                keys.extend([hash((e, *pair)) for pair in combinations(rest, 2)])
        return keys

    def _probe_groups(self, m: int) -> list[tuple[int, int]]:
        """(need, signature size) per group of kept lengths a probe of ``m`` tokens must meet.

        Kept texts of one signature size are met with the smallest ``need`` among their
        admissible lengths, i.e. that of the shortest one, since ``need`` grows with length.
        """
        cached = self._groups.get(m)
        if cached is not None:
            return cached
        lo, hi = self._length_range(m)
        shortest: dict[int, int] = {}
        for n in range(lo, min(hi, self._max_len) + 1):
            shortest.setdefault(self._shape(n)[1], n)
        groups = [(self._min_overlap_at(m + n), size) for size, n in shortest.items()]
        self._groups[m] = groups
        return groups

    def _shape(self, n: int) -> tuple[int, int]:
        """(need, signature size) a kept text of ``n`` tokens is indexed with.

        ``need`` is the fewest shared elements over all admissible partners (that of the
        shortest one). The size is 3 where it fits: a triple of common words is far rarer
        than one or two of them. It drops where fewer shared elements are needed, or where a
        long prefix would make too many subsets.
        """
        while len(self._shapes) <= n:
            length = len(self._shapes)
            lo, _ = self._length_range(length) if length else (0, 0)
            need = self._min_overlap_at(length + lo)
            size = min(3, need)
            while size > 1 and math.comb(length - need + size, size) > _MAX_SIGNATURES:
                size -= 1
            self._shapes.append((need, size))
        return self._shapes[n]

    def _verify(self, tokens: list[str], element_set: frozenset[int], candidates: set[int]) -> float:
        m = len(tokens)
        self._extend_min_overlap(m + self._max_len)
        min_overlap = self._min_overlap
        masks = lcs_masks(tokens)
        best = 0.0
        lengths = self._lengths
        element_sets = self._element_sets
        kept_tokens = self._tokens
        for j in candidates:
            n = lengths[j]
            if len(element_set & element_sets[j]) < min_overlap[m + n]:
                continue
            score = rouge_l_fmeasure(lcs_length(masks, m, kept_tokens[j]), m, n)
            if score > best:
                best = score
        return best

    def _scan_max(self, prepared: _Prepared, best: float) -> float:
        """Exact maximum by overlap upper bounds over every kept text, best bounds first."""
        tokens = prepared.tokens
        m = len(tokens)
        ids = self._element_ids
        element_set = frozenset(e for e in map(ids.get, prepared.elements) if e is not None)
        bounded = []
        for j, kept in enumerate(self._element_sets):
            overlap = len(element_set & kept)
            if overlap:
                bounded.append((overlap / (m + self._lengths[j]), overlap, j))
        bounded.sort(reverse=True)
        masks = lcs_masks(tokens)
        for _, overlap, j in bounded:
            n = self._lengths[j]
            # F <= 2 * overlap / (m + n); the margin absorbs rounding in rouge-score's F.
            if 2 * overlap <= (best - _MARGIN) * (m + n):
                break
            best = max(best, rouge_l_fmeasure(lcs_length(masks, m, self._tokens[j]), m, n))
        return best

    def _keep(self, prepared: _Prepared) -> None:
        element_ids: list[int] = []
        for element in prepared.elements:
            e = self._element_ids.get(element)
            if e is None:
                e = len(self._doc_freq)
                self._element_ids[element] = e
                self._doc_freq.append(0)
                # Fresh elements rank before everything already indexed: the order only grows.
                self._rank.append(self._next_fresh_rank)
                self._next_fresh_rank -= 1
            self._doc_freq[e] += 1
            element_ids.append(e)
        position = len(self._lengths)
        m = len(prepared.tokens)
        self._tokens.append(prepared.tokens)
        self._element_sets.append(frozenset(element_ids))
        self._lengths.append(m)
        if m > self._max_len:
            self._max_len = m
            self._groups = {}  # longer kept texts: probes may need new length groups
        if len(self._lengths) >= self._next_reindex:
            self._reindex()
        else:
            self._index(position, element_ids)

    def _index(self, position: int, element_ids: list[int]) -> None:
        n = len(element_ids)
        if n == 0:
            return
        need, size = self._shape(n)
        elements = sorted(element_ids, key=self._rank.__getitem__)
        buckets = self._buckets
        for key in self._signature_keys(elements, 0, n, need, size):
            bucket = buckets.get(key)
            if bucket is None:
                buckets[key] = [position]
            elif bucket[-1] != position:  # a hash collision within one text lists it once
                bucket.append(position)

    def _reindex(self) -> None:
        """Re-rank elements rarest first by current frequencies and rebuild the signature index."""
        doc_freq = self._doc_freq
        order = sorted(range(len(doc_freq)), key=doc_freq.__getitem__)
        rank = [0] * len(order)
        for r, e in enumerate(order):
            rank[e] = r
        self._rank = rank
        # Ranks below this are rare; fresh elements (negative ranks) count as rare too.
        self._rare_below = bisect.bisect_right([doc_freq[e] for e in order], _RARE_DOC_FREQ)
        self._next_fresh_rank = -1
        self._buckets = {}
        for position, element_set in enumerate(self._element_sets):
            self._index(position, list(element_set))
        self._next_reindex = 2 * len(self._lengths)

    def _min_overlap_at(self, total: int) -> int:
        """Fewest shared tokens that can give F > exact_above when m + n == total."""
        # 2 * overlap > bound * (m + n); at least one shared token since F > 0 needs one.
        return max(1, math.floor(self._bound * total / 2) + 1)

    def _extend_min_overlap(self, total: int) -> None:
        table = self._min_overlap
        while len(table) <= total:
            table.append(self._min_overlap_at(len(table)))

    def _admissible(self, m: int, n: int) -> bool:
        return self._min_overlap_at(m + n) <= min(m, n)

    def _length_range(self, m: int) -> tuple[int, int]:
        """Kept lengths n for which a text of m tokens can score above exact_above."""
        cached = self._length_ranges.get(m)
        if cached is not None:
            return cached
        lo = 1
        while not self._admissible(m, lo):
            lo += 1
        if self._bound <= 0:
            hi = sys.maxsize
        else:
            # Closed form for 2m > bound * (m + n), then corrected against the exact test.
            hi = max(m, math.floor(2 * m / self._bound - m))
            while self._admissible(m, hi + 1):
                hi += 1
            while hi > m and not self._admissible(m, hi):
                hi -= 1
        self._length_ranges[m] = (lo, hi)
        return lo, hi
