"""The novelty filter's inner loop, compiled: from signature look-ups to the best ROUGE-L F.

``NoveltyFilter`` finds, per candidate text, the signature keys it shares with kept texts. On
text where every word is common (what a small model writes in self-instruct) each look-up
returns hundreds of kept texts, most of which fail the positional filter or the overlap
bound; the few dozen left need an exact LCS. In numpy every hit costs a dozen passes over
temporary arrays and every stage a fixed overhead; here one compiled pass does it all per
hit: the look-up in the sorted index, the positional filter, de-duplication, the bit-set
bound on the overlap, and the bit-parallel LCS, with rouge-score's float operations.

Compiled with numba on first use (cached on disk where the package folder is writable).
"""

from __future__ import annotations

import numpy as np
from numba import njit

_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)
# Longest probe the single-word bit-parallel LCS takes; longer ones use the DP table.
WORD_BITS = 64
# Index values: kept-text position << POSITION_SHIFT | its length << REACH_BITS | the
# signature's reach. The reach is capped at REACH_MASK (which only weakens the positional
# filter); a length of LENGTH_CAP or more is read from the lengths array instead. The length
# in the value spares a cache miss per hit that the positional filter then drops.
REACH_BITS = 5
REACH_MASK = (1 << REACH_BITS) - 1
LENGTH_CAP = (1 << 16) - 1
POSITION_SHIFT = REACH_BITS + 16


@njit(cache=True, nogil=True, inline="always")
def popcount(x: np.uint64) -> np.int64:
    x = x - ((x >> np.uint64(1)) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return np.int64((x * _H01) >> np.uint64(56))


@njit(cache=True, nogil=True)
def overlap_bound(text: int, bits: np.ndarray, others: np.ndarray, probe_bits: np.ndarray, probe_others: int) -> int:
    """Upper bound on the multiset overlap of the probe with kept text ``text``: the frequent
    elements both hold, exactly, from their bit sets, plus the fewer of either side's count
    of other elements (exact where either count is 0)."""
    shared = min(others[text], probe_others)
    for w in range(bits.shape[1]):
        shared += popcount(bits[text, w] & probe_bits[w])
    return shared


@njit(cache=True, nogil=True)
def _lcs_bits(masks: np.ndarray, m: int, kept: np.ndarray) -> int:
    """LCS length, bit-parallel (Allison-Dix / Hyyrö) for a probe of m <= 64 tokens whose
    positions per token id are ``masks``; carries out of the top bit are dropped, which
    changes nothing below it."""
    full = np.uint64(0xFFFFFFFFFFFFFFFF) if m == 64 else (np.uint64(1) << np.uint64(m)) - np.uint64(1)
    v = full
    for t in kept:
        match = masks[t]
        if match:
            u = v & match
            v = (v + u) | (v - u)
    return m - popcount(v & full)


@njit(cache=True, nogil=True)
def _lcs_table(probe: np.ndarray, kept: np.ndarray) -> int:
    """LCS length by the dynamic-programming table, two rows (probes longer than 64 tokens)."""
    n = len(kept)
    previous = np.zeros(n + 1, dtype=np.int64)
    current = np.zeros(n + 1, dtype=np.int64)
    for a in probe:
        for j in range(n):
            if a == kept[j]:
                current[j + 1] = previous[j] + 1
            else:
                current[j + 1] = max(current[j], previous[j + 1])
        previous, current = current, previous
    return previous[n]


@njit(cache=True, nogil=True)
def _fmeasure(lcs: int, m: int, n: int) -> float:
    """rouge-score's F-measure, operation for operation (see novelty.rouge_l_fmeasure)."""
    if lcs == 0:
        return 0.0
    precision = lcs / n
    recall = lcs / m
    return 2 * precision * recall / (precision + recall)


@njit(cache=True, nogil=True)
def _consider(
    value, reach, best, probe_room, kept_room, lengths, seen, stamp, bits, others, probe_bits, probe_others,
    min_overlap, offsets, flat_tokens, masks, probe_tokens, margin,
):  # fmt: skip
    """``best`` after one hit: the kept text ``value >> POSITION_SHIFT`` through the positional
    filter (the signature's ``reach`` in the probe, ``value``'s low bits in the kept text),
    de-duplication, the overlap bound, and, past all of them, its exact F."""
    text = value >> POSITION_SHIFT
    n = (value >> REACH_BITS) & LENGTH_CAP
    if n == LENGTH_CAP:
        n = lengths[text]
    if reach > probe_room[n] or (value & REACH_MASK) > kept_room[n] or seen[text] == stamp:
        return best
    seen[text] = stamp
    m = len(probe_tokens)
    shared = overlap_bound(text, bits, others, probe_bits, probe_others)
    # F <= 2 * overlap / (m + n): too few shared tokens to pass, or to beat the best so far.
    if shared < min_overlap[m + n] or 2 * shared <= (best - margin) * (m + n):
        return best
    start = offsets[text]
    kept = flat_tokens[start : start + n]
    lcs = _lcs_bits(masks, m, kept) if m <= WORD_BITS else _lcs_table(probe_tokens, kept)
    return max(best, _fmeasure(lcs, m, n))


@njit(cache=True, nogil=True)
def best_score(
    keys, key_reach, index_keys, index_values, directory, shift, slot_offset, recent_values, recent_query,
    probe_room, kept_room, lengths, seen, stamp, bits, others, probe_bits, probe_others, min_overlap,
    offsets, flat_tokens, masks, probe_tokens, margin,
):  # fmt: skip
    """Highest F over the kept texts listed under ``keys`` (``key_reach``: each signature's
    reach in the probe) that pass the positional filter and the overlap bound: the sorted part
    of the index (``index_keys``, ``index_values``, ``directory`` over the keys' top bits, see
    signature_index) looked up here, the hits of its recent part passed in. Each kept text is
    scored once: marked with ``stamp`` in ``seen``. A text whose bound cannot beat the best so
    far is skipped (the maximum is unchanged, and exact wherever it exceeds the bound)."""
    best = 0.0
    for q in range(len(keys)):
        key = keys[q]
        slot = (key >> shift) + slot_offset
        for i in range(directory[slot], directory[slot + 1]):
            if index_keys[i] == key:
                best = _consider(
                    index_values[i], key_reach[q], best, probe_room, kept_room, lengths, seen, stamp, bits,
                    others, probe_bits, probe_others, min_overlap, offsets, flat_tokens, masks, probe_tokens,
                    margin,
                )  # fmt: skip
    for h in range(len(recent_values)):
        best = _consider(
            recent_values[h], key_reach[recent_query[h]], best, probe_room, kept_room, lengths, seen, stamp,
            bits, others, probe_bits, probe_others, min_overlap, offsets, flat_tokens, masks, probe_tokens,
            margin,
        )  # fmt: skip
    return best
