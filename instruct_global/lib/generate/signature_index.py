"""A compact multimap from 64-bit signature keys to kept-text positions, queried in batches.

The novelty filter lists a few dozen signatures per kept text, so at 50,000 kept texts the
index holds millions of entries: as Python dict entries that is hundreds of megabytes. Here
older entries live in one pair of sorted numpy arrays (12 bytes an entry) and only recent ones
in a dict; the dict is merged into the arrays once it holds a fixed fraction of them, so the
merging costs amortised constant time per entry. A query of many keys costs two
``searchsorted`` calls over the arrays plus one dict lookup per key.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

# The dict is merged into the arrays once it holds this many entries, or a quarter of them.
_MIN_MERGE = 1 << 15


class SignatureIndex:
    """Multimap ``key -> positions``; keys are Python ints in the signed 64-bit range (hashes)."""

    def __init__(self) -> None:
        self._keys = np.empty(0, dtype=np.int64)
        self._positions = np.empty(0, dtype=np.int32)
        self._recent: dict[int, list[int]] = {}
        self._recent_entries = 0

    def __len__(self) -> int:
        return len(self._keys) + self._recent_entries

    def add(self, keys: Iterable[int], position: int) -> None:
        """List ``position`` under every key of ``keys``."""
        recent = self._recent
        added = 0
        for key in keys:
            bucket = recent.get(key)
            if bucket is None:
                recent[key] = [position]
            else:
                bucket.append(position)
            added += 1
        self._recent_entries += added
        if self._recent_entries >= max(_MIN_MERGE, len(self._keys) // 4):
            self._merge()

    def rebuild(self, keys: list[int], positions: list[int]) -> None:
        """Replace the whole content by ``keys[i] -> positions[i]``."""
        self._recent = {}
        self._recent_entries = 0
        key_array = np.array(keys, dtype=np.int64)
        order = np.argsort(key_array, kind="stable")
        self._keys = key_array[order]
        self._positions = np.array(positions, dtype=np.int32)[order]

    def lookup(self, keys: list[int]) -> np.ndarray:
        """Positions listed under any of ``keys``, with repeats, as an int64 array."""
        found: list[int] = []
        recent = self._recent
        for key in keys:
            bucket = recent.get(key)
            if bucket is not None:
                found += bucket
        recent_hits = np.array(found, dtype=np.int64)
        if not len(self._keys) or not keys:
            return recent_hits
        query = np.array(keys, dtype=np.int64)
        lo = np.searchsorted(self._keys, query, side="left")
        counts = np.searchsorted(self._keys, query, side="right") - lo
        total = int(counts.sum())
        if not total:
            return recent_hits
        # The ranges [lo, lo + count) laid end to end: each range start repeated, plus a ramp.
        starts = np.repeat(lo - (np.cumsum(counts) - counts), counts) + np.arange(total)
        hits = self._positions[starts].astype(np.int64)
        return np.concatenate((hits, recent_hits)) if found else hits

    def _merge(self) -> None:
        keys = np.fromiter(
            (k for k, bucket in self._recent.items() for _ in bucket), dtype=np.int64, count=self._recent_entries
        )
        positions = np.fromiter(
            (p for bucket in self._recent.values() for p in bucket), dtype=np.int32, count=self._recent_entries
        )
        all_keys = np.concatenate((self._keys, keys))
        order = np.argsort(all_keys, kind="stable")
        self._keys = all_keys[order]
        self._positions = np.concatenate((self._positions, positions))[order]
        self._recent = {}
        self._recent_entries = 0
