"""A compact multimap from 64-bit signature keys to 32-bit values, queried in batches.

The novelty filter lists a few dozen signatures per kept text, so at 50,000 kept texts the
index holds millions of entries: as Python dict entries that is hundreds of megabytes, and a
binary search per key misses the CPU cache a dozen times. Here older entries live in sorted
numpy arrays with a directory over the top bits of the keys (keys are hashes, so about two
entries share a directory slot): a batch of keys costs one gather into the directory and one
into the entries, a couple of cache misses a key. For look-ups from compiled code each entry is
also packed into one 64-bit word, the key's low 32 bits above the value, so that a key's slot
and its values share cache lines (a fingerprint match where the full keys differ only adds a
value; the full keys stay for merges and the numpy look-up). Recent entries sit in a hash table
of chained arrays, filled and read by compiled code (no Python loop over a text's keys), and
are merged into the sorted arrays (a linear merge, rewriting them) once they are a quarter as
many as those.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# The recent entries are merged into the arrays once they are this many, or a quarter of those.
_MIN_MERGE = 1 << 15
_LOW = np.uint64(0xFFFFFFFF)


class SignatureIndex:
    """Multimap ``key -> values`` with int64 keys (uniformly spread hashes) and values in
    ``[0, 2**32)``."""

    def __init__(self) -> None:
        self._keys = np.empty(0, dtype=np.int64)
        self._entries = np.empty(0, dtype=np.uint64)  # key's low 32 bits << 32 | value
        self._shift = 63
        self._slot_offset = 1
        self._directory = np.zeros(3, dtype=np.int32)
        # Recent entries in the order added: key, value, and the previous entry in the same
        # bucket (-1: none); heads holds each bucket's last entry (buckets: the key's low bits).
        self._recent_keys = np.empty(0, dtype=np.int64)
        self._recent_values = np.empty(0, dtype=np.int64)
        self._recent_previous = np.empty(0, dtype=np.int32)
        self._recent_heads = np.full(1, -1, dtype=np.int32)
        self._recent_entries = 0

    def __len__(self) -> int:
        return len(self._keys) + self._recent_entries

    def add(self, keys: np.ndarray, values: np.ndarray) -> None:
        """List ``values[i]`` under ``keys[i]``."""
        _check_values(values)
        end = self._recent_entries + len(keys)
        if end > len(self._recent_keys):
            self._grow_recent(end)
        _insert(keys, values, self._recent_keys, self._recent_values, self._recent_previous, self._recent_heads,
                self._recent_entries)  # fmt: skip
        self._recent_entries = end
        if self._recent_entries >= max(_MIN_MERGE, len(self._keys) >> 2):
            self._merge()

    def rebuild(self, keys: np.ndarray, values: np.ndarray) -> None:
        """Replace the whole content by ``keys[i] -> values[i]``."""
        self._clear_recent()
        order = np.argsort(keys, kind="stable")
        self._set_arrays(keys[order], values.astype(np.int64)[order])

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(values, query): every value listed under any of ``keys``, and which key listed it."""
        recent_values, recent_for = recent_lookup(keys, *self.recent_part())
        if not len(self._keys) or not len(keys):
            return recent_values, recent_for
        slots = self._slots(keys)
        lo = self._directory[slots]
        counts = self._directory[slots + 1] - lo
        total = int(counts.sum())
        if not total:
            return recent_values, recent_for
        # Every entry of every key's slot, slots laid end to end, then only the equal keys.
        query = np.repeat(np.arange(len(keys)), counts)
        index = np.repeat(lo - (np.cumsum(counts) - counts), counts) + np.arange(total)
        equal = self._keys[index] == keys[query]
        values = (self._entries[index[equal]] & _LOW).astype(np.int64)
        return np.concatenate((values, recent_values)), np.concatenate((query[equal], recent_for))

    def recent_part(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(keys, values, previous entry in the bucket, bucket heads) of the recent entries: the
        values of ``key`` are those of the chain from ``heads[key & (len(heads) - 1)]`` along
        ``previous`` (ending at -1) whose keys equal it."""
        return self._recent_keys, self._recent_values, self._recent_previous, self._recent_heads

    def sorted_part(self) -> tuple[np.ndarray, np.ndarray, int, int]:
        """(packed entries, directory, shift, slot offset) of the sorted entries: the values of
        ``key`` are the low 32 bits of the entries in ``entries[directory[s]:directory[s + 1]]``
        whose high 32 bits equal the key's low 32 bits, where ``s = (key >> shift) + slot
        offset``."""
        return self._entries, self._directory, self._shift, self._slot_offset

    def _slots(self, keys: np.ndarray) -> np.ndarray:
        # The top bits by an arithmetic shift (order-preserving), moved up to start at slot 0.
        return (keys >> self._shift) + self._slot_offset

    def _merge(self) -> None:
        count = self._recent_entries
        keys, values = self._recent_keys[:count], self._recent_values[:count]
        order = np.argsort(keys, kind="stable")
        keys, values = keys[order], values[order]
        # Linear merge: insert the sorted new entries into the sorted old ones.
        at = np.searchsorted(self._keys, keys, side="right")
        old_values = (self._entries & _LOW).astype(np.int64)
        self._set_arrays(np.insert(self._keys, at, keys), np.insert(old_values, at, values))
        self._clear_recent()

    def _clear_recent(self) -> None:
        self._recent_heads[:] = -1
        self._recent_entries = 0

    def _grow_recent(self, needed: int) -> None:
        """Room for ``needed`` recent entries, buckets at least twice as many (short chains)."""
        size = max(1024, 2 * len(self._recent_keys))
        while size < needed:
            size *= 2
        count = self._recent_entries
        keys, values = self._recent_keys[:count].copy(), self._recent_values[:count].copy()
        self._recent_keys = np.empty(size, dtype=np.int64)
        self._recent_values = np.empty(size, dtype=np.int64)
        self._recent_previous = np.empty(size, dtype=np.int32)
        self._recent_heads = np.full(2 * size, -1, dtype=np.int32)
        _insert(keys, values, self._recent_keys, self._recent_values, self._recent_previous, self._recent_heads, 0)

    def _set_arrays(self, keys: np.ndarray, values: np.ndarray) -> None:
        _check_values(values)
        self._keys = keys
        self._entries = ((keys.view(np.uint64) & _LOW) << np.uint64(32)) | values.astype(np.uint64)
        # About two entries per directory slot.
        bits = max(1, len(keys).bit_length() - 1)
        self._shift = 64 - bits
        self._slot_offset = 1 << (bits - 1)
        per_slot = np.bincount(self._slots(keys), minlength=1 << bits)
        self._directory = np.concatenate(([0], np.cumsum(per_slot))).astype(np.int32)


def _check_values(values: np.ndarray) -> None:
    if len(values) and (values.min() < 0 or values.max() > _LOW):
        raise ValueError("SignatureIndex values must lie in [0, 2**32)")


@njit(cache=True, nogil=True)
def _insert(keys, values, table_keys, table_values, previous, heads, count):
    """Append entries ``count``, ``count + 1``, ... to the chained table (see recent_part)."""
    mask = len(heads) - 1
    for i in range(len(keys)):
        at = count + i
        bucket = keys[i] & mask
        table_keys[at] = keys[i]
        table_values[at] = values[i]
        previous[at] = heads[bucket]
        heads[bucket] = at


@njit(cache=True, nogil=True)
def recent_lookup(keys, table_keys, table_values, previous, heads):
    """(values, which key listed each) of the recent entries under ``keys``, the arrays of
    ``SignatureIndex.recent_part`` (compiled: the novelty kernel calls it too)."""
    mask = len(heads) - 1
    found = 0
    for q in range(len(keys)):
        at = heads[keys[q] & mask]
        while at >= 0:
            found += table_keys[at] == keys[q]
            at = previous[at]
    values = np.empty(found, dtype=np.int64)
    which = np.empty(found, dtype=np.int64)
    found = 0
    for q in range(len(keys)):
        at = heads[keys[q] & mask]
        while at >= 0:
            if table_keys[at] == keys[q]:
                values[found] = table_values[at]
                which[found] = q
                found += 1
            at = previous[at]
    return values, which
