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

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass

from instruct_global.lib.common.text_tokens import rouge_tokenize

# Bounds are loosened by this much so float rounding in rouge-score's F-measure (a few ulps)
# can never turn a pruned pair into one that exceeds the threshold.
_MARGIN = 1e-9
# Kept-set size of the first re-ranking by frequency; later ones happen at each doubling.
_FIRST_REINDEX = 32

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
        # element id -> kept length n -> (texts, ends): positions of the kept texts of n tokens
        # with the element in their index prefix, sorted by where it sits there (j); ends[j] is
        # how many sit at j or earlier (all of them past the end of ends).
        self._postings: dict[int, dict[int, tuple[list[int], list[int]]]] = {}
        # Length bounds and minimal overlaps, cached by length / by m + n.
        self._min_overlap: list[int] = []
        self._length_ranges: dict[int, tuple[int, int]] = {}
        self._probe_plans: dict[int, tuple[int, list[int]]] = {}

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
        """Highest F among kept texts that survive length, prefix and overlap filtering."""
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
        """Kept texts sharing enough prefix elements with the probe to possibly pass."""
        lo, plan = self._probe_plan(m)
        self._extend_min_overlap(m + self._max_len)
        min_overlap = self._min_overlap
        longest = self._max_len
        once: set[int] = set()
        candidates: set[int] = set()
        postings = self._postings
        # Unseen elements rank first and have no postings, but still take prefix positions.
        for element, end in zip(known, plan[m - len(known) :], strict=False):
            by_length = postings.get(element)
            if by_length is None:
                continue
            end = min(end, longest + 1)
            if len(by_length) <= end - lo:  # rare elements: few lengths to look at
                groups = [(n, p) for n, p in by_length.items() if lo <= n < end]
            else:
                groups = [(n, p) for n in range(lo, end) if (p := by_length.get(n)) is not None]
            for n, (texts, ends) in groups:
                # A pair needing `need` >= 2 shared elements shares two within the first
                # n - need + 2 elements of the kept text's prefix: later ones are skipped.
                cap = n - min_overlap[m + n] + 2
                # Texts are sorted by where the element sits in their prefix: take the leading ones.
                cut = ends[cap - 1] if cap <= len(ends) else len(texts)
                if cut == 0:
                    continue
                hits = texts[:cut] if cut < len(texts) else texts
                if cap > n:  # need == 1: a single shared element can be enough for this pair
                    candidates.update(hits)
                else:
                    # Each text is listed once per element: meeting it again means two shared.
                    candidates.update(once.intersection(hits))
                    once.update(hits)
        return candidates

    def _probe_plan(self, m: int) -> tuple[int, list[int]]:
        """Shortest admissible kept length, and per probe prefix position i the end (exclusive)
        of the kept lengths worth looking up there.

        A pair needing ``need`` >= 2 shared elements shares two within the first ``m - need + 2``
        probe elements, so later probe positions serve only shorter partners (``need`` grows with
        the partner's length). Pairs needing a single shared element are looked up everywhere.
        """
        cached = self._probe_plans.get(m)
        if cached is not None:
            return cached
        lo, hi = self._length_range(m)
        plan = []
        for i in range(self._prefix_length(m)):
            # Largest n in [lo, hi] with need(m + n) <= m - i + 1, by bisection (need is monotone).
            below, above = lo - 1, hi + 1
            while above - below > 1:
                mid = (below + above) // 2
                if self._min_overlap_at(m + mid) <= m - i + 1:
                    below = mid
                else:
                    above = mid
            plan.append(below + 1)
        self._probe_plans[m] = (lo, plan)
        return lo, plan

    def _verify(self, tokens: list[str], element_set: frozenset[int], candidates: set[int]) -> float:
        m = len(tokens)
        self._extend_min_overlap(m + self._max_len)
        min_overlap = self._min_overlap
        masks = lcs_masks(tokens)
        best = 0.0
        for j in candidates:
            n = self._lengths[j]
            if len(element_set & self._element_sets[j]) < min_overlap[m + n]:
                continue
            score = rouge_l_fmeasure(lcs_length(masks, m, self._tokens[j]), m, n)
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
        self._max_len = max(self._max_len, m)
        if len(self._lengths) >= self._next_reindex:
            self._reindex()
        else:
            self._index(position, element_ids)

    def _index(self, position: int, element_ids: list[int]) -> None:
        m = len(element_ids)
        if m == 0:
            return
        prefix = sorted(element_ids, key=self._rank.__getitem__)[: self._prefix_length(m)]
        for j, element in enumerate(prefix):
            by_length = self._postings.setdefault(element, {})
            posting = by_length.get(m)
            if posting is None:
                by_length[m] = ([position], [0] * j + [1])
                continue
            texts, ends = posting
            if len(ends) <= j:
                ends.extend([len(texts)] * (j + 1 - len(ends)))
            texts.insert(ends[j], position)
            for k in range(j, len(ends)):
                ends[k] += 1

    def _reindex(self) -> None:
        """Re-rank elements rarest first by current frequencies and rebuild the prefix index."""
        order = sorted(range(len(self._doc_freq)), key=self._doc_freq.__getitem__)
        rank = [0] * len(order)
        for r, e in enumerate(order):
            rank[e] = r
        self._rank = rank
        self._next_fresh_rank = -1
        self._postings = {}
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

    def _prefix_length(self, m: int) -> int:
        """Prefix size that two texts of m and any admissible n tokens must share within."""
        lo, _ = self._length_range(m)
        # Texts sharing `need` >= 2 elements share their first two common ones, and both lie
        # within the first len - need + 2 elements of each text.
        return min(m, m - self._min_overlap_at(m + lo) + 2)
