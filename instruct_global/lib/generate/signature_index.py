"""A compact multimap from 64-bit signature keys to kept-text positions, queried in batches.

The novelty filter lists a few dozen signatures per kept text, so at 50,000 kept texts the
index holds millions of entries: as Python dict entries that is hundreds of megabytes, and a
binary search per key misses the CPU cache a dozen times. Here older entries live in sorted
numpy arrays (12 bytes an entry) with a directory over the top bits of the keys (keys are
hashes, so about two entries share a directory slot): a batch of keys costs one gather into the
directory and one into the entries, a couple of cache misses a key. Recent entries sit in a
small dict that is merged into the arrays (a linear merge) once it holds a sixteenth of them.
"""

from __future__ import annotations

import numpy as np

# The dict is merged into the arrays once it holds this many entries, or a sixteenth of them.
_MIN_MERGE = 1 << 15
_SIGN = np.uint64(1 << 63)


class SignatureIndex:
    """Multimap ``key -> positions`` with int64 keys (uniformly spread hashes)."""

    def __init__(self) -> None:
        self._keys = np.empty(0, dtype=np.int64)
        self._positions = np.empty(0, dtype=np.int32)
        self._shift = np.uint64(63)
        self._directory = np.zeros(3, dtype=np.int64)
        # key -> position, or list of positions once a key has several.
        self._recent: dict[int, int | list[int]] = {}
        self._recent_entries = 0

    def __len__(self) -> int:
        return len(self._keys) + self._recent_entries

    def add(self, keys: np.ndarray, position: int) -> None:
        """List ``position`` under every key of ``keys``."""
        recent = self._recent
        for key in keys.tolist():
            held = recent.get(key)
            if held is None:
                recent[key] = position
            elif isinstance(held, int):
                recent[key] = [held, position]
            else:
                held.append(position)
        self._recent_entries += len(keys)
        if self._recent_entries >= max(_MIN_MERGE, len(self._keys) >> 4):
            self._merge()

    def rebuild(self, keys: np.ndarray, positions: np.ndarray) -> None:
        """Replace the whole content by ``keys[i] -> positions[i]``."""
        self._recent = {}
        self._recent_entries = 0
        order = np.argsort(keys, kind="stable")
        self._set_arrays(keys[order], positions.astype(np.int32)[order])

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Positions listed under any of ``keys``, with repeats, as an int64 array."""
        found: list[int] = []
        recent = self._recent
        for key in keys.tolist():
            held = recent.get(key)
            if held is not None:
                if isinstance(held, int):
                    found.append(held)
                else:
                    found += held
        recent_hits = np.array(found, dtype=np.int64)
        if not len(self._keys) or not len(keys):
            return recent_hits
        slots = self._slots(keys)
        lo = self._directory[slots]
        counts = self._directory[slots + 1] - lo
        total = int(counts.sum())
        if not total:
            return recent_hits
        # Every entry of every key's slot, slots laid end to end, then only the equal keys.
        index = np.repeat(lo - (np.cumsum(counts) - counts), counts) + np.arange(total)
        index = index[self._keys[index] == np.repeat(keys, counts)]
        hits = self._positions[index].astype(np.int64)
        return np.concatenate((hits, recent_hits)) if found else hits

    def _slots(self, keys: np.ndarray) -> np.ndarray:
        # Flipping the sign bit maps signed order onto unsigned order: sorted keys, sorted slots.
        return ((keys.view(np.uint64) ^ _SIGN) >> self._shift).astype(np.int64)

    def _merge(self) -> None:
        keys = np.fromiter(self._recent.keys(), dtype=np.int64, count=len(self._recent))
        held = list(self._recent.values())
        counts = np.fromiter((1 if isinstance(h, int) else len(h) for h in held), dtype=np.int64, count=len(held))
        positions = np.fromiter(
            (p for h in held for p in ((h,) if isinstance(h, int) else h)), dtype=np.int32, count=int(counts.sum())
        )
        keys = np.repeat(keys, counts)
        order = np.argsort(keys, kind="stable")
        keys, positions = keys[order], positions[order]
        # Linear merge: insert the sorted new entries into the sorted old ones.
        at = np.searchsorted(self._keys, keys, side="right")
        self._set_arrays(np.insert(self._keys, at, keys), np.insert(self._positions, at, positions))
        self._recent = {}
        self._recent_entries = 0

    def _set_arrays(self, keys: np.ndarray, positions: np.ndarray) -> None:
        self._keys = keys
        self._positions = positions
        # About two entries per directory slot.
        bits = max(1, len(keys).bit_length() - 1)
        self._shift = np.uint64(64 - bits)
        per_slot = np.bincount(self._slots(keys), minlength=1 << bits)
        self._directory = np.concatenate(([0], np.cumsum(per_slot)))
