"""Train / validation / test splits with no near-duplicate across them.

Near-duplicates are grouped first (union-find over MinHash LSH candidates, each confirmed by the
exact Jaccard similarity of word 3-shingles; identical responses are grouped too), then whole
groups are dealt to the splits. A paraphrase of a test example therefore never sits in train.
The order of groups comes from a seeded shuffle of groups sorted by their smallest id, so the
same rows give the same splits on every run and machine, whatever order they arrive in.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from datasketch import MinHash, MinHashLSH

from instruct_global.lib.common.text_tokens import unicode_word_tokenize

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class SplitConfig:
    validation_share: float = 0.1
    test_share: float = 0.1
    seed: int = 42
    near_duplicate_threshold: float = 0.7
    shingle_size: int = 3
    num_perm: int = 128

    def __post_init__(self) -> None:
        if not (0 <= self.validation_share < 1 and 0 <= self.test_share < 1):
            raise ValueError("validation_share and test_share must be in [0, 1)")
        if self.validation_share + self.test_share >= 1:
            raise ValueError("validation_share + test_share must leave rows for train")
        if not 0 < self.near_duplicate_threshold <= 1:
            raise ValueError("near_duplicate_threshold must be in (0, 1]")


def shingles(text: str, size: int) -> set[str]:
    words = unicode_word_tokenize(text)
    if len(words) <= size:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def near_duplicate_groups(
    texts: Sequence[str], responses: Sequence[str], config: SplitConfig = SplitConfig()
) -> list[int]:
    """A group number per text; near-duplicates (and equal responses) share one."""
    n = len(texts)
    groups = _UnionFind(n)
    sets = [shingles(t, config.shingle_size) for t in texts]
    # LSH tuned below the threshold finds more candidates; the exact Jaccard decides
    lsh = MinHashLSH(threshold=max(0.05, config.near_duplicate_threshold * 0.7), num_perm=config.num_perm)
    for i, items in enumerate(sets):
        sketch = MinHash(num_perm=config.num_perm, seed=1)
        for item in items:
            sketch.update(item.encode("utf-8"))
        for j in lsh.query(sketch):
            if jaccard(items, sets[int(j)]) >= config.near_duplicate_threshold:
                groups.union(i, int(j))
        lsh.insert(str(i), sketch)
    first_with_response: dict[str, int] = {}
    for i, response in enumerate(responses):
        key = " ".join(response.split()).casefold()
        if key:
            groups.union(i, first_with_response.setdefault(key, i))
    return [groups.find(i) for i in range(n)]


def assign_splits(
    ids: Sequence[str], groups: Sequence[int], config: SplitConfig = SplitConfig()
) -> list[str]:
    """The split of every row; whole groups go to one split, sizes close to the shares."""
    members: dict[int, list[int]] = {}
    for index, group in enumerate(groups):
        members.setdefault(group, []).append(index)
    ordered = sorted(members.values(), key=lambda rows: min(ids[i] for i in rows))
    random.Random(config.seed).shuffle(ordered)
    total = len(ids)
    targets = {
        "test": config.test_share * total,
        "validation": config.validation_share * total,
    }
    targets["train"] = total - targets["test"] - targets["validation"]
    filled = dict.fromkeys(SPLITS, 0)
    result = [""] * total
    for rows in ordered:
        # the split furthest below its target takes the group; ties go to the rarer splits first
        split = max(
            ("test", "validation", "train"), key=lambda s: (targets[s] - filled[s]) / max(targets[s], 1e-9)
        )
        if targets[split] <= 0 or filled["train"] == 0:
            split = "train"  # the first group trains: a tiny dataset must never leave train empty
        for i in rows:
            result[i] = split
        filled[split] += len(rows)
    return result


def leaking_pairs(
    texts: Sequence[str], splits: Sequence[str], config: SplitConfig = SplitConfig()
) -> list[tuple[int, int]]:
    """Pairs of rows in different splits whose Jaccard reaches the threshold (exhaustive; for checks)."""
    sets = [shingles(t, config.shingle_size) for t in texts]
    pairs = []
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            if splits[i] != splits[j] and jaccard(sets[i], sets[j]) >= config.near_duplicate_threshold:
                pairs.append((i, j))
    return pairs
