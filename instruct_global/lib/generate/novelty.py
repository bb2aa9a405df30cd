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
k-th occurrence as the element (token, k) turns multiset overlap into plain set overlap.

Candidates come from signatures, sets of elements rarer than any single word. Sort each text's
elements in one global order (rarest first). Two texts sharing c >= need elements have their j-th
common element within the first ``len - need + j`` elements of each text, so the set of their
first s common elements (s <= need) is among the s-subsets of those prefixes that each text
lists. s is 3 (a triple of common words is rare even when every word is common, as in templated
text from a small model), 2 when the first element is itself rare, and less only where ``need``
or a long prefix asks for it. A kept text lists its subsets once, keyed by the XOR of random
64-bit codes of their elements, in a compact sorted index (``signature_index``); a key collision
only adds a candidate. Each entry also holds how far into the kept text's order its subset
reaches, so a hit is dropped unless the subset lies within the prefixes of both texts for this
pair's own ``need`` (a positional filter: the lists are built for the loosest partner).

Prefixes depend on ``need``, which depends on both lengths. The shorter text of a pair needs the
shorter prefix, and one short prefix per pair is what keeps out texts that share only common
words late in a long prefix. So a kept text of n tokens tags the subsets within its tight
prefix (for partners at least as long, ``need >= need(2n)``) apart from those one element past
it and those further (for ever shorter partners): probes no shorter than it look up tight
subsets only, with their own long prefix; shorter probes look up the tags their ``need`` can
fit, with their own short prefix.

The order is document frequency among kept texts, frozen between re-indexings (at each doubling
of the kept set): any fixed total order keeps the filter exact, the frequencies only make it
fast. One exception: the words of a template's fixed phrase ("can you explain the main ideas
of ...") are held by nearly the same texts (Jaccard index >= 0.5), so all but the rarest of
them rank after every other element; otherwise every short text of that template would have
only phrase words in its prefix and share its signatures with all the others. Elements first
seen after the last re-indexing rank before all others, which extends the frozen order without
moving anything already indexed. A probe computes all its signature keys in one batch (a plan
per probe shape lists each subset and tag once, over all the kept lengths it can meet).

Then one compiled pass (``novelty_kernel.best_score``) per probe: each key's entries in the
sorted index, the positional filter, each kept text once, an upper bound on its multiset
overlap from a bit set per kept text over the most frequent elements (exact for those; the
others add the fewer of either side's count of them), and, where the bound can still beat the
best score so far, the exact bit-parallel LCS. The same float arithmetic as ``rouge_score``
throughout; bounds carry a 1e-9 margin so rounding cannot hide a score above t.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from instruct_global.lib.common.text_tokens import rouge_tokenize
from instruct_global.lib.generate.novelty_kernel import (
    FIELD_BITS,
    MAX_FIELD,
    MAX_POSITION,
    REACH_BITS,
    REACH_MASK,
    STAMP_LIMIT,
    STAMP_SHIFT,
    WORD_BITS,
    best_score,
)
from instruct_global.lib.generate.signature_index import SignatureIndex

# Bounds are loosened by this much so float rounding in rouge-score's F-measure (a few ulps)
# can never turn a pruned pair into one that exceeds the threshold.
_MARGIN = 1e-9
# Kept-set size of the first re-ranking by frequency; later ones happen at each doubling.
_FIRST_REINDEX = 32
# Elements in at most this many kept texts (at the last re-indexing) are rare: a signature they
# start is a pair, where common ones start triples.
_RARE_DOC_FREQ = 40
# Most signatures one kept text may list; longer prefixes use smaller subsets.
_MAX_SIGNATURES = 120
# The most frequent elements (at the last re-indexing) each own a bit of a text's bit set:
# this many uint64 words per kept text (7: with the word of length, count and stamp, a row is
# one 64-byte cache line).
_BIT_WORDS = 7
# A common element held by nearly the same kept texts as a rarer one (a template's fixed
# phrase) tells texts apart no better than that one, so it ranks last: the most frequent elements
# this many are compared, pairwise, on at most _REDUNDANCY_SAMPLE kept texts.
_REDUNDANCY_CANDIDATES = 256
_REDUNDANCY_SAMPLE = 1 << 14
_REDUNDANT_JACCARD = 0.5

Tokenizer = Callable[[str], list[str]]
_Element = tuple[str, int]  # (token, occurrence number): multiset -> set
# Signature tags: how far past the tight prefix a kept text's subset reaches (see _kept_keys).
_TIGHT, _NEAR, _FAR = 0, 1, 2
# When a probe's signature counts (see _probe_plan).
_ALWAYS, _IF_RARE, _IF_NOT_RARE = 0, 1, 2
_CODE_SEED = 20241201
# Index values: kept-text position, length and the signature's reach (see _subset_codes and
# novelty_kernel, which reads them).
_MAX_KEPT = MAX_POSITION
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


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


def _popcount(words: np.ndarray) -> np.ndarray:
    """Set bits of each unsigned integer in ``words`` (any shape), as uint8."""
    if hasattr(np, "bitwise_count"):  # numpy >= 2
        return np.bitwise_count(words)
    size = words.dtype.itemsize
    return _BYTE_POPCOUNT[words.view(np.uint8)].reshape(*words.shape, size).sum(axis=-1, dtype=np.uint8)


_BYTE_POPCOUNT = np.array([bin(b).count("1") for b in range(256)], dtype=np.uint8)


def _aligned_rows(count: int, width: int) -> np.ndarray:
    """Zeroed uint64 rows starting on a 64-byte boundary, so that a row of 8 words is one cache
    line."""
    buffer = np.zeros(count * width + 8, dtype=np.uint64)
    start = (-buffer.ctypes.data % 64) // 8
    return buffer[start : start + count * width].reshape(count, width)


def _columns(rows: list[tuple[int, ...]], width: int) -> tuple[np.ndarray, ...]:
    """The columns of ``rows`` (tuples of ``width`` ints) as int64 arrays."""
    table = np.array(rows, dtype=np.int64).reshape(-1, width)
    return tuple(table[:, c].copy() for c in range(width))


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
        # Kept texts, by position: tokens (for max_score's scan), lengths, and element ids and
        # token ids laid end to end in one array each (text j's at _offsets[j] : _offsets[j] +
        # _lengths[j]) for vectorised overlaps and the compiled LCS.
        self._tokens: list[list[str]] = []
        self._lengths: list[int] = []
        self._length_array = np.zeros(64, dtype=np.int64)
        self._offsets = np.zeros(64, dtype=np.int64)
        self._flat = np.zeros(1024, dtype=np.int32)
        self._flat_size = 0
        self._token_ids: dict[str, int] = {}
        self._flat_tokens = np.zeros(1024, dtype=np.int32)
        # The stamp of the current probe (see best_score), marked in the rows of texts it scores.
        self._stamp = 0
        self._mask_table = np.zeros(64, dtype=np.uint64)
        # One row per kept text (see novelty_kernel): a bit set of its frequent elements, then
        # its length, the count of its other elements and a stamp in one word, for a cheap upper
        # bound on overlaps; _bit_of maps an element to its bit (-1: none, as for every element
        # first seen after the last re-indexing).
        self._rows = _aligned_rows(64, _BIT_WORDS + 1)
        self._bit_of = np.zeros(0, dtype=np.int64)
        self._max_len = 0
        self._length_counts = [0]  # kept texts per length
        # Element ids, their document frequency among kept texts, and their rank in the order.
        self._element_ids: dict[_Element, int] = {}
        self._doc_freq: list[int] = []
        self._rank: list[int] = []
        self._next_fresh_rank = -1
        self._next_reindex = _FIRST_REINDEX
        self._index = SignatureIndex()
        # Random 64-bit codes per element (a subset's key is the XOR of its codes and a salt per
        # tag and size) and rare flags per element; both grow with the elements.
        self._code_source = np.random.default_rng(_CODE_SEED)
        self._codes = np.zeros(0, dtype=np.int64)
        self._rare = np.zeros(0, dtype=bool)
        self._salts = [
            [np.int64(s) for s in self._code_source.integers(_INT64_MIN, _INT64_MAX, 4, dtype=np.int64)]
            for _ in (_TIGHT, _NEAR, _FAR)
        ]
        self._plans: dict[tuple[int, int, int], tuple[np.ndarray, ...]] = {}
        # Scratch: marks the probe's elements while its overlaps are counted.
        self._probe_mask = np.zeros(1024, dtype=bool)
        # Length bounds, minimal overlaps and signature shapes, cached by length / by m + n.
        self._min_overlap: list[int] = []
        self._min_overlap_array = np.zeros(0, dtype=np.int64)
        self._length_ranges: dict[int, tuple[int, int]] = {}
        self._shapes: list[tuple[int, int, int]] = []
        self._groups: dict[int, list[tuple[tuple[int, ...], int, int]]] = {}
        self._probe_plans: dict[tuple[int, int], tuple[np.ndarray, ...] | None] = {}

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
        """Highest F among kept texts that share a signature with the probe and could pass."""
        m = len(prepared.tokens)
        if m == 0 or not self._lengths:
            return 0.0
        known = [e for e in map(self._element_ids.get, prepared.elements) if e is not None]
        known.sort(key=self._rank.__getitem__)
        elements = np.array(known, dtype=np.int64)
        # Unseen elements are in no kept text: counted as first in the probe's order, they take
        # prefix positions without opening signatures (the tightest choice, still exact).
        unseen = m - len(known)
        plan = self._probe_plan(m, unseen)
        if plan is None:
            return 0.0
        rows, first, always, want_rare, salts, probe_reach, probe_room, kept_room = plan
        # A pair counts where its first element is rare, a triple where it is not (as in
        # _subset_codes); a row that some group lists unconditionally always counts.
        listed = always | (self._rare[elements[first]] == want_rare)
        codes = np.concatenate((self._codes[elements], [0]))  # the last one pads short rows
        keys = np.bitwise_xor.reduce(codes[rows[listed]], axis=1) ^ salts[listed]
        probe_reach = probe_reach[listed]
        probe_bits, probe_others = self._bit_set(known)
        masks, probe_tokens = self._probe_masks(prepared.tokens)
        self._stamp += 1
        if self._stamp >= STAMP_LIMIT:
            self._rows[:, -1] &= np.uint64((1 << STAMP_SHIFT) - 1)
            self._stamp = 1
        try:
            return best_score(
                keys, probe_reach, *self._index.sorted_part(), *self._index.recent_part(), probe_room, kept_room,
                self._rows, self._stamp, probe_bits, probe_others, self._min_overlaps(m + self._max_len),
                self._offsets, self._flat_tokens, masks, probe_tokens, _MARGIN,
            )  # fmt: skip
        finally:
            masks[probe_tokens] = 0

    def _probe_masks(self, tokens: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(table of the probe's position bit masks by token id, for probes of at most 64
        tokens; the probe's token ids, 0 for tokens no kept text has). The caller zeroes the
        table again at the probe's ids."""
        ids = np.array([self._token_ids.get(tok, 0) for tok in tokens], dtype=np.int64)
        table = self._mask_table
        if len(table) <= len(self._token_ids):
            table = self._mask_table = np.zeros(2 * len(self._token_ids) + 2, dtype=np.uint64)
        if len(tokens) <= WORD_BITS:
            masks = lcs_masks(tokens)
            table[[self._token_ids.get(tok, 0) for tok in masks]] = np.array(list(masks.values()), dtype=np.uint64)
            table[0] = 0
        return table, ids

    def _probe_plan(self, m: int, unseen: int) -> tuple[np.ndarray, ...] | None:
        """The signatures a probe of ``m`` tokens, ``unseen`` of them unknown, looks up, over all
        its groups (see _probe_groups) at once, each (subset, tag) once: element indices per
        row (padded with the index past the last element), the first one, whether the row
        counts whatever the first element's rarity (else: only when it is rare, for pairs, or
        only when it is not, for triples), the salt, and the reach; then, per kept length n,
        the most reach a signature may have in the probe and in the kept text (len - need for
        the pair's need). Cached by shape."""
        key = (m, unseen)
        if key in self._probe_plans:
            return self._probe_plans[key]
        count = m - unseen
        listed: dict[tuple[tuple[int, ...], int], list[int]] = {}  # -> [reach, condition]
        for tags, need, size in self._probe_groups(m):
            slack = m - need - unseen
            if slack < 0 or not count:
                continue
            starts = range(min(slack + 1, count))
            subsets: list[tuple[tuple[int, ...], int, int]] = []
            if size == 1:
                subsets = [((i,), i, _ALWAYS) for i in starts]
            else:
                pair_end = min(slack + 2, count)
                pair_condition = _ALWAYS if size == 2 else _IF_RARE
                subsets = [((i, j), j - 1, pair_condition) for i in starts for j in range(i + 1, pair_end)]
                if size == 3:
                    ends = min(slack + 3, count)
                    subsets += [
                        ((i, j, k), k - 2, _IF_NOT_RARE)
                        for i in starts
                        for j in range(i + 1, ends)
                        for k in range(j + 1, ends)
                    ]
            for subset, reach, condition in subsets:
                for tag in tags:
                    row = listed.setdefault((subset, tag), [reach, condition])
                    if row[1] != condition:
                        row[1] = _ALWAYS
        plan = None
        if listed:
            table = [(*subset, *[count] * (3 - len(subset)), tag, len(subset), reach, condition)
                     for (subset, tag), (reach, condition) in listed.items()]
            columns = np.array(table, dtype=np.int64)
            salts = np.array([self._salts[tag][size] for tag, size in columns[:, 3:5].tolist()], dtype=np.int64)
            condition = columns[:, 6]
            lengths = np.arange(self._max_len + 1)
            need = self._min_overlaps(m + self._max_len)[m + lengths]
            plan = (
                columns[:, :3].copy(),
                columns[:, 0].copy(),
                condition == _ALWAYS,
                condition == _IF_RARE,
                salts,
                columns[:, 5].copy(),
                m - unseen - need,
                lengths - need,
            )
        self._probe_plans[key] = plan
        return plan

    def _subset_codes(
        self, elements: np.ndarray, slack: int, size: int
    ) -> list[tuple[np.ndarray, np.ndarray, int]]:
        """Signature subsets of a text whose known elements, in rank order, are ``elements``,
        where ``slack`` is its length minus ``need`` minus the unseen elements before them, as
        (XOR of the elements' random codes, reach, subset size) per subset size.

        The j-th common element of a pair (1-based) lies at index ``slack + j - 1`` or earlier,
        so a subset of s elements whose last one sits at index ``s - 1 + reach`` serves pairs
        with ``reach <= slack``. Size-3 subsets that would start with a rare element are pairs.
        """
        count = len(elements)
        if slack < 0 or not count:
            return []
        plan = self._subset_plan(count, slack, size)
        codes = self._codes[elements]
        if size == 1:
            first, reach = plan
            return [(codes[first], reach, 1)]
        pair_first, pair_last, pair_reach = plan[:3]
        pairs = codes[pair_first] ^ codes[pair_last]
        if size == 2:
            return [(pairs, pair_reach, 2)]
        rare = self._rare[elements]
        rare_pairs = rare[pair_first]
        first, middle, last, reach = plan[3:]
        triples = ~rare[first]
        return [
            (pairs[rare_pairs], pair_reach[rare_pairs], 2),
            (codes[first[triples]] ^ codes[middle[triples]] ^ codes[last[triples]], reach[triples], 3),
        ]

    def _subset_plan(self, count: int, slack: int, size: int) -> tuple[np.ndarray, ...]:
        """Index arrays of the subsets ``_subset_codes`` lists, cached by shape, each family with
        its reach: singles (index, reach), or pairs (first, last, reach), or pairs then triples
        (first, middle, last, reach)."""
        key = (count, slack, size)
        plan = self._plans.get(key)
        if plan is None:
            starts = range(min(slack + 1, count))
            if size == 1:
                plan = _columns([(i, i) for i in starts], 2)
            else:
                pair_end = min(slack + 2, count)
                plan = _columns([(i, j, j - 1) for i in starts for j in range(i + 1, pair_end)], 3)
                if size == 3:
                    ends = min(slack + 3, count)
                    triples = [
                        (i, j, k, k - 2) for i in starts for j in range(i + 1, ends) for k in range(j + 1, ends)
                    ]
                    plan += _columns(triples, 4)
            self._plans[key] = plan
        return plan

    def _kept_keys(self, elements: np.ndarray, position: int) -> tuple[np.ndarray, np.ndarray]:
        """Signature keys a kept text lists, and their values (the text's position and the
        subset's reach). Subsets within the tight prefix are tagged _TIGHT, those one element
        past it _NEAR (they serve partners a little shorter), the rest of the loose prefix
        _FAR (only much shorter partners), so that probes skip what cannot fit them."""
        n = len(elements)
        tight_need, loose_need, size = self._shape(n)
        salts = self._salts
        keys = []
        reaches = []
        for codes, reach, s in self._subset_codes(elements, n - loose_need, size):
            if tight_need == loose_need:
                keys.append(codes ^ salts[_TIGHT][s])
            else:
                past = reach - (n - tight_need)
                tagged = np.where(past <= 0, codes ^ salts[_TIGHT][s], codes ^ salts[_NEAR][s])
                keys.append(np.where(past >= 2, codes ^ salts[_FAR][s], tagged))
            reaches.append(reach)
        if not keys:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        values = (position << REACH_BITS) | np.minimum(np.concatenate(reaches), REACH_MASK)
        return np.concatenate(keys), values

    def _probe_groups(self, m: int) -> list[tuple[tuple[int, ...], int, int]]:
        """(tags, need, signature size) per group of kept lengths a probe of ``m`` tokens meets.

        Kept texts no longer than the probe are met through their tight subsets, longer ones
        also through near and far ones where the pair's ``need`` lets those fit (a subset d
        elements past the tight prefix fits pairs with need <= tight need - d). Within a group the probe's prefix serves the smallest
        ``need``, that of the shortest length in it that some kept text has (``need`` grows
        with length; the cache is cleared when a kept text brings a new length).
        """
        cached = self._groups.get(m)
        if cached is not None:
            return cached
        lo, hi = self._length_range(m)
        shortest: dict[tuple[tuple[int, ...], int], int] = {}
        for n in range(lo, min(hi, self._max_len) + 1):
            if not self._length_counts[n]:
                continue
            tight_need, loose_need, size = self._shape(n)
            past = min(_FAR, tight_need - self._min_overlap_at(m + n), tight_need - loose_need)
            tags = (_TIGHT, _NEAR, _FAR)[: max(0, past) + 1]
            shortest.setdefault((tags, size), n)
        groups = [(tags, self._min_overlap_at(m + n), size) for (tags, size), n in shortest.items()]
        self._groups[m] = groups
        return groups

    def _shape(self, n: int) -> tuple[int, int, int]:
        """(tight need, loose need, signature size) a kept text of ``n`` tokens is indexed with.

        Tight: partners at least as long need at least need(2n) shared elements. Loose: the
        shortest admissible partner needs the fewest. The size is 3 where it fits, less where
        fewer shared elements are needed or a long prefix would make too many subsets.
        """
        while len(self._shapes) <= n:
            length = len(self._shapes)
            lo, _ = self._length_range(length) if length else (0, 0)
            tight_need = self._min_overlap_at(2 * length)
            loose_need = self._min_overlap_at(length + lo)
            size = min(3, loose_need)
            while size > 1 and math.comb(length - loose_need + size, size) > _MAX_SIGNATURES:
                size -= 1
            self._shapes.append((tight_need, loose_need, size))
        return self._shapes[n]

    def _bit_set(self, element_ids: list[int]) -> tuple[np.ndarray, int]:
        """(bit set of the frequent ones, count of the others) of distinct ``element_ids``."""
        words = [0] * _BIT_WORDS
        others = 0
        for b in self._bit_of[element_ids].tolist():
            if b < 0:
                others += 1
            else:
                words[b >> 6] |= 1 << (b & 63)
        return np.array(words, dtype=np.uint64), others

    def _elements_of(self, texts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(element ids of every text of ``texts``, laid end to end; where each text starts)."""
        starts = np.cumsum(lengths) - lengths
        index = np.repeat(self._offsets[texts] - starts, lengths) + np.arange(int(lengths.sum()))
        return self._flat[index], starts

    def _overlaps(self, known: list[int], texts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Multiset overlap of the probe (its known element ids) with each of ``texts`` (all of
        at least one element)."""
        mask = self._probe_mask
        mask[known] = True
        elements, starts = self._elements_of(texts, lengths)
        overlap = np.add.reduceat(mask[elements], starts, dtype=np.int64)
        mask[known] = False
        return overlap

    def _scan_max(self, prepared: _Prepared, best: float) -> float:
        """Exact maximum by overlap upper bounds over every kept text, best bounds first."""
        tokens = prepared.tokens
        m = len(tokens)
        known = [e for e in map(self._element_ids.get, prepared.elements) if e is not None]
        texts = np.flatnonzero(self._length_array[: len(self._lengths)])
        if not m or not len(texts):
            return best
        n = self._length_array[texts]
        overlap = self._overlaps(known, texts, n)
        order = np.argsort(-(overlap / (m + n)), kind="stable")
        masks = lcs_masks(tokens)
        for j, shared, length in zip(texts[order].tolist(), overlap[order].tolist(), n[order].tolist(), strict=True):
            # F <= 2 * overlap / (m + n); the margin absorbs rounding in rouge-score's F.
            if 2 * shared <= (best - _MARGIN) * (m + length):
                break
            best = max(best, rouge_l_fmeasure(lcs_length(masks, m, self._tokens[j]), m, length))
        return best

    def _keep(self, prepared: _Prepared) -> None:
        # Refused before anything changes, so that a refused text leaves no trace.
        position = len(self._lengths)
        if position >= _MAX_KEPT:
            raise ValueError(f"NoveltyFilter holds at most {_MAX_KEPT} texts")
        n = len(prepared.tokens)
        if n > MAX_FIELD:
            raise ValueError(f"NoveltyFilter keeps texts of at most {MAX_FIELD} tokens, got {n}")
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
        token_ids = []
        for tok in prepared.tokens:
            t = self._token_ids.get(tok)
            if t is None:
                t = self._token_ids[tok] = len(self._token_ids) + 1  # 0: a token no kept text has
            token_ids.append(t)
        self._store(position, element_ids, token_ids)
        self._tokens.append(prepared.tokens)
        self._lengths.append(n)
        if n > self._max_len:
            self._max_len = n
            self._length_counts += [0] * (n + 1 - len(self._length_counts))
        if not self._length_counts[n]:
            self._groups = {}  # a new kept length: probes may need other groups or prefixes
            self._probe_plans = {}
        self._length_counts[n] += 1
        if len(self._lengths) >= self._next_reindex:
            self._reindex()
        elif n:
            ordered = np.array(sorted(element_ids, key=self._rank.__getitem__), dtype=np.int64)
            self._index.add(*self._kept_keys(ordered, position))

    def _store(self, position: int, element_ids: list[int], token_ids: list[int]) -> None:
        """Append a kept text's length and element ids to the arrays, growing them by doubling."""
        if position >= len(self._offsets):
            self._offsets = np.concatenate((self._offsets, np.zeros_like(self._offsets)))
            self._length_array = np.concatenate((self._length_array, np.zeros_like(self._length_array)))
            rows = _aligned_rows(2 * len(self._rows), self._rows.shape[1])
            rows[: len(self._rows)] = self._rows
            self._rows = rows
        end = self._flat_size + len(element_ids)
        while end > len(self._flat):
            self._flat = np.concatenate((self._flat, np.zeros_like(self._flat)))
        while end > len(self._flat_tokens):
            self._flat_tokens = np.concatenate((self._flat_tokens, np.zeros_like(self._flat_tokens)))
        self._flat_tokens[self._flat_size : end] = token_ids
        while len(self._doc_freq) > len(self._probe_mask):
            self._probe_mask = np.concatenate((self._probe_mask, np.zeros_like(self._probe_mask)))
        fresh = len(self._doc_freq) - len(self._codes)
        if fresh > 0:
            more = self._code_source.integers(_INT64_MIN, _INT64_MAX, fresh, dtype=np.int64, endpoint=True)
            self._codes = np.concatenate((self._codes, more))
            self._rare = np.concatenate((self._rare, np.ones(fresh, dtype=bool)))  # fresh ranks are rare
            self._bit_of = np.concatenate((self._bit_of, np.full(fresh, -1, dtype=np.int64)))
        words, others = self._bit_set(element_ids)
        self._rows[position, :-1] = words
        self._rows[position, -1] = (others << FIELD_BITS) | len(element_ids)
        self._flat[self._flat_size : end] = element_ids
        self._offsets[position] = self._flat_size
        self._length_array[position] = len(element_ids)
        self._flat_size = end

    def _reindex(self) -> None:
        """Re-rank elements rarest first by current frequencies and rebuild the signature index."""
        doc_freq = self._doc_freq
        by_frequency = sorted(range(len(doc_freq)), key=doc_freq.__getitem__)
        demoted = self._redundant(by_frequency)
        order = [e for e in by_frequency if e not in demoted] + [e for e in by_frequency if e in demoted]
        rank = [0] * len(order)
        for r, e in enumerate(order):
            rank[e] = r
        self._rank = rank
        self._next_fresh_rank = -1
        # Fresh elements (ranked before all these) are rare too; see _store.
        self._rare = np.array(doc_freq, dtype=np.int64) <= _RARE_DOC_FREQ
        keys: list[np.ndarray] = []
        values: list[np.ndarray] = []
        flat = self._flat.tolist()
        for position, n in enumerate(self._lengths):
            if n:
                start = int(self._offsets[position])
                ordered = np.array(sorted(flat[start : start + n], key=rank.__getitem__), dtype=np.int64)
                text_keys, text_values = self._kept_keys(ordered, position)
                keys.append(text_keys)
                values.append(text_values)
        if keys:
            self._index.rebuild(np.concatenate(keys), np.concatenate(values))
        self._rebuild_bit_sets(by_frequency)
        self._next_reindex = 2 * len(self._lengths)

    def _redundant(self, by_frequency: list[int]) -> set[int]:
        """Common elements whose kept texts overlap those of a rarer common element by a Jaccard
        index of at least _REDUNDANT_JACCARD: the words of a template's fixed phrase, which
        occur together. Ranking all but the rarest of them last keeps them out of prefixes, so
        that signatures are made of the words that tell such texts apart (otherwise every
        text of a template with few slot words would share its prefix with all the others).
        Estimated on an even sample of the kept texts; any order keeps the filter exact."""
        doc_freq = self._doc_freq
        frequent = [e for e in by_frequency[-_REDUNDANCY_CANDIDATES:] if doc_freq[e] > _RARE_DOC_FREQ]
        if len(frequent) < 2:
            return set()
        count = len(self._lengths)
        sample = np.linspace(0, count - 1, min(count, _REDUNDANCY_SAMPLE)).astype(np.int64)
        lengths = self._length_array[sample]
        column = np.full(len(doc_freq), -1, dtype=np.int64)
        column[frequent] = np.arange(len(frequent))
        held = column[self._elements_of(sample, lengths)[0]]
        owner = np.repeat(np.arange(len(sample)), lengths)
        # One bit set over the sampled texts per element; pairs by AND and popcount (numpy
        # only: a BLAS product would start threads that keep spinning after it).
        present = np.zeros((len(frequent), len(sample)), dtype=bool)
        present[held[held >= 0], owner[held >= 0]] = True
        packed = np.packbits(present, axis=1, bitorder="little")
        packed = np.pad(packed, ((0, 0), (0, -packed.shape[1] % 8))).view(np.uint64)
        alone = _popcount(packed).sum(axis=1, dtype=np.int64)
        both = np.empty((len(frequent), len(frequent)), dtype=np.int64)
        for start in range(0, len(frequent), 32):
            both[start : start + 32] = _popcount(packed[start : start + 32, None, :] & packed[None, :, :]).sum(
                axis=2, dtype=np.int64
            )
        jaccard = both / np.maximum(alone[:, None] + alone[None, :] - both, 1)
        demoted: set[int] = set()
        leaders: list[int] = []  # columns of the elements that keep their rank, rarest first
        for c, e in enumerate(frequent):
            if leaders and jaccard[c, leaders].max() >= _REDUNDANT_JACCARD:
                demoted.add(e)
            else:
                leaders.append(c)
        return demoted

    def _rebuild_bit_sets(self, order: list[int]) -> None:
        """Give the most frequent elements (last in ``order``) a bit each; redo every bit set."""
        frequent = np.array(order[-64 * _BIT_WORDS :], dtype=np.int64)
        self._bit_of = np.full(len(order), -1, dtype=np.int64)
        self._bit_of[frequent] = np.arange(len(frequent))
        count = len(self._lengths)
        lengths = self._length_array[:count]
        owner = np.repeat(np.arange(count), lengths)
        bits = self._bit_of[self._flat[: self._flat_size]]
        held = bits >= 0
        self._rows[:] = 0
        # Elements are distinct within a text, so adding their bits is or-ing them.
        np.add.at(
            self._rows,
            (owner[held], bits[held] >> 6),
            np.left_shift(np.uint64(1), (bits[held] & 63).astype(np.uint64)),
        )
        others = np.bincount(owner[~held], minlength=count).astype(np.uint64)
        self._rows[:count, -1] = (others << np.uint64(FIELD_BITS)) | lengths.astype(np.uint64)

    def _min_overlap_at(self, total: int) -> int:
        """Fewest shared tokens that can give F > exact_above when m + n == total."""
        # 2 * overlap > bound * (m + n); at least one shared token since F > 0 needs one.
        return max(1, math.floor(self._bound * total / 2) + 1)

    def _min_overlaps(self, total: int) -> np.ndarray:
        """``_min_overlap_at`` for every total up to ``total``, as an array."""
        if len(self._min_overlap_array) <= total:
            self._min_overlap_array = np.array(
                [self._min_overlap_at(t) for t in range(2 * total + 1)], dtype=np.int64
            )
        return self._min_overlap_array

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
