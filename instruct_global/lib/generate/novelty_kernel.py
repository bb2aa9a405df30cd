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

from instruct_global.lib.generate.signature_index import recent_lookup

_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)
# Longest probe the single-word bit-parallel LCS takes; longer ones use the DP table.
WORD_BITS = 64
# Index values (32 bits): kept-text position << REACH_BITS | the signature's reach, capped at
# REACH_MASK (which only weakens the positional filter).
REACH_BITS = 5
REACH_MASK = (1 << REACH_BITS) - 1
MAX_POSITION = 1 << (32 - REACH_BITS)
_LOW = np.uint64(0xFFFFFFFF)
_HIGH = np.uint64(32)
# Per kept text, one row of uint64 words: its bit set over the most frequent elements, then a
# word with its length, the count of its other elements (FIELD_BITS each) and the stamp of the
# last probe that scored it, so that a hit costs one cache line (rows of 8 words, aligned).
FIELD_BITS = 20
MAX_FIELD = (1 << FIELD_BITS) - 1
STAMP_SHIFT = 2 * FIELD_BITS
STAMP_LIMIT = 1 << (64 - STAMP_SHIFT)
_FIELD = np.uint64(MAX_FIELD)
_OTHERS_SHIFT = np.uint64(FIELD_BITS)
_STAMP_SHIFT = np.uint64(STAMP_SHIFT)
_UNSTAMPED = np.uint64((1 << STAMP_SHIFT) - 1)


@njit(cache=True, nogil=True, inline="always")
def popcount(x: np.uint64) -> np.int64:
    x = x - ((x >> np.uint64(1)) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return np.int64((x * _H01) >> np.uint64(56))


@njit(cache=True, nogil=True)
def overlap_bound(rows: np.ndarray, text: int, probe_bits: np.ndarray, probe_others: int) -> int:
    """Upper bound on the multiset overlap of the probe with kept text ``text``: the frequent
    elements both hold, exactly, from their bit sets, plus the fewer of either side's count
    of other elements (exact where either count is 0)."""
    words = rows.shape[1] - 1
    shared = min(np.int64((rows[text, words] >> _OTHERS_SHIFT) & _FIELD), probe_others)
    for w in range(words):
        shared += popcount(rows[text, w] & probe_bits[w])
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
def best_score(
    keys, key_reach, entries, directory, shift, slot_offset, recent_keys, recent_values, recent_previous,
    recent_heads, probe_room, kept_room, rows, stamp, probe_bits, probe_others, min_overlap, offsets, flat_tokens,
    masks, probe_tokens, margin,
):  # fmt: skip
    """Highest F over the kept texts listed under ``keys`` (``key_reach``: each signature's
    reach in the probe) that pass the positional filter and the overlap bound: the sorted
    part of the index (packed ``entries`` and the ``directory`` over the keys' top bits, see
    SignatureIndex.sorted_part) and its recent part (see SignatureIndex.recent_part). Each
    kept text is scored once: marked with ``stamp`` (below STAMP_LIMIT) in its row. A text
    whose bound cannot beat the best so far is skipped (the maximum is unchanged, and exact
    wherever it exceeds the bound)."""
    values, reaches = _hits(
        keys, key_reach, entries, directory, shift, slot_offset, recent_keys, recent_values, recent_previous,
        recent_heads,
    )  # fmt: skip
    best = 0.0
    stamp = np.uint64(stamp)
    last = rows.shape[1] - 1
    m = len(probe_tokens)
    # One loop over every hit, in this function: a call per hit to a helper taking these
    # arrays cost about as much as all the rest of the work.
    for h in range(len(values)):
        value = values[h]
        text = value >> REACH_BITS
        meta = rows[text, last]
        n = np.int64(meta & _FIELD)
        # The positional filter (the signature's reach in the probe and, in value's low bits,
        # in the kept text), then de-duplication.
        if reaches[h] > probe_room[n] or (value & REACH_MASK) > kept_room[n] or meta >> _STAMP_SHIFT == stamp:
            continue
        rows[text, last] = (meta & _UNSTAMPED) | (stamp << _STAMP_SHIFT)
        shared = overlap_bound(rows, text, probe_bits, probe_others)
        # F <= 2 * overlap / (m + n): too few shared tokens to pass, or to beat the best so far.
        if shared < min_overlap[m + n] or 2 * shared <= (best - margin) * (m + n):
            continue
        start = offsets[text]
        kept = flat_tokens[start : start + n]
        lcs = _lcs_bits(masks, m, kept) if m <= WORD_BITS else _lcs_table(probe_tokens, kept)
        best = max(best, _fmeasure(lcs, m, n))
    return best


@njit(cache=True, nogil=True)
def _hits(
    keys, key_reach, entries, directory, shift, slot_offset, recent_keys, recent_values, recent_previous,
    recent_heads,
):  # fmt: skip
    """(values, the reach in the probe of the signature that listed each) of every entry under
    ``keys``: the directory slots first, for all keys (independent loads the CPU overlaps),
    then the entries whose fingerprint matches, then the recent part's."""
    count = len(keys)
    lo = np.empty(count, dtype=np.int64)
    hi = np.empty(count, dtype=np.int64)
    for q in range(count):
        slot = (keys[q] >> shift) + slot_offset
        lo[q] = directory[slot]
        hi[q] = directory[slot + 1]
    recent, recent_query = recent_lookup(keys, recent_keys, recent_values, recent_previous, recent_heads)
    room = len(recent) + (hi - lo).sum()
    values = np.empty(room, dtype=np.int64)
    reaches = np.empty(room, dtype=np.int64)
    found = 0
    for q in range(count):
        fingerprint = np.uint64(keys[q]) & _LOW
        for i in range(lo[q], hi[q]):
            entry = entries[i]
            if entry >> _HIGH == fingerprint:
                values[found] = np.int64(entry & _LOW)
                reaches[found] = key_reach[q]
                found += 1
    for h in range(len(recent)):
        values[found] = recent[h]
        reaches[found] = key_reach[recent_query[h]]
        found += 1
    return values[:found], reaches[:found]
