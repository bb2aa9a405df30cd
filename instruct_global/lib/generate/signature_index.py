"""A compact multimap from 64-bit signature keys to 32-bit values, queried in batches.

The novelty filter lists a few dozen signatures per kept text, so at 50,000 kept texts the
index holds millions of entries: as Python dict entries that is hundreds of megabytes, and a
binary search per key misses the CPU cache a dozen times. Here older entries live in sorted
numpy arrays with a directory over the top bits of the keys (keys are hashes, so about two
entries share a directory slot): a batch of keys costs one gather into the directory and one
into the entries, a couple of cache misses a key. For look-ups from compiled code each entry is
also packed into one 64-bit word, the key's low 32 bits above the value, so that a key's slot
and its values share cache lines (a fingerprint match where the full keys differ only adds a
value; the full keys stay for merges and the numpy look-up). Recent entries sit in a small dict
that is merged into the arrays (a linear merge) once it holds a sixteenth of them.
"""

from __future__ import annotations

import numpy as np

# The dict is merged into the arrays once it holds this many entries, or a sixteenth of them.
_MIN_MERGE = 1 << 15
# Low key bits of the dict's keys are marked in a bitmap, so most keys skip the dict lookup.
_RECENT_BITS = (1 << 22) - 1
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
        # key -> value, or list of values once a key has several.
        self._recent: dict[int, int | list[int]] = {}
        self._recent_entries = 0
        self._recent_marks = np.zeros(_RECENT_BITS + 1, dtype=bool)

    def __len__(self) -> int:
        return len(self._keys) + self._recent_entries

    def add(self, keys: np.ndarray, values: np.ndarray) -> None:
        """List ``values[i]`` under ``keys[i]``."""
        recent = self._recent
        for key, value in zip(keys.tolist(), values.tolist(), strict=True):
            held = recent.get(key)
            if held is None:
                recent[key] = value
            elif isinstance(held, int):
                recent[key] = [held, value]
            else:
                held.append(value)
        self._recent_entries += len(keys)
        self._recent_marks[keys & _RECENT_BITS] = True
        if self._recent_entries >= max(_MIN_MERGE, len(self._keys) >> 4):
            self._merge()

    def rebuild(self, keys: np.ndarray, values: np.ndarray) -> None:
        """Replace the whole content by ``keys[i] -> values[i]``."""
        self._recent = {}
        self._recent_entries = 0
        self._recent_marks[:] = False
        order = np.argsort(keys, kind="stable")
        self._set_arrays(keys[order], values.astype(np.int64)[order])

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(values, query): every value listed under any of ``keys``, and which key listed it."""
        recent_values, recent_for = self.lookup_recent(keys)
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

    def lookup_recent(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``lookup`` over the recent entries only (not yet merged into the sorted arrays)."""
        found: list[int] = []
        found_for: list[int] = []
        recent = self._recent
        if recent:
            marked = np.flatnonzero(self._recent_marks[keys & _RECENT_BITS])
            for i, key in zip(marked.tolist(), keys[marked].tolist(), strict=True):
                held = recent.get(key)
                if held is not None:
                    if isinstance(held, int):
                        found.append(held)
                        found_for.append(i)
                    else:
                        found += held
                        found_for += [i] * len(held)
        return np.array(found, dtype=np.int64), np.array(found_for, dtype=np.int64)

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
        keys = np.fromiter(self._recent.keys(), dtype=np.int64, count=len(self._recent))
        held = list(self._recent.values())
        counts = np.fromiter((1 if isinstance(h, int) else len(h) for h in held), dtype=np.int64, count=len(held))
        values = np.fromiter(
            (v for h in held for v in ((h,) if isinstance(h, int) else h)), dtype=np.int64, count=int(counts.sum())
        )
        keys = np.repeat(keys, counts)
        order = np.argsort(keys, kind="stable")
        keys, values = keys[order], values[order]
        # Linear merge: insert the sorted new entries into the sorted old ones.
        at = np.searchsorted(self._keys, keys, side="right")
        old_values = (self._entries & _LOW).astype(np.int64)
        self._set_arrays(np.insert(self._keys, at, keys), np.insert(old_values, at, values))
        self._recent = {}
        self._recent_entries = 0
        self._recent_marks[:] = False

    def _set_arrays(self, keys: np.ndarray, values: np.ndarray) -> None:
        if len(values) and (values.min() < 0 or values.max() > _LOW):
            raise ValueError("SignatureIndex values must lie in [0, 2**32)")
        self._keys = keys
        self._entries = ((keys.view(np.uint64) & _LOW) << np.uint64(32)) | values.astype(np.uint64)
        # About two entries per directory slot.
        bits = max(1, len(keys).bit_length() - 1)
        self._shift = 64 - bits
        self._slot_offset = 1 << (bits - 1)
        per_slot = np.bincount(self._slots(keys), minlength=1 << bits)
        self._directory = np.concatenate(([0], np.cumsum(per_slot))).astype(np.int32)
