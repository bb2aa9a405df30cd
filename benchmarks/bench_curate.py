"""Benchmark: near-duplicate removal of instruction rows, and the clustering step of diversification.

Run from the repository root:

    python benchmarks/bench_curate.py          # full run: 10k / 50k / 100k rows, naive at 2k / 5k / 10k
    python benchmarks/bench_curate.py --quick  # smoke run: 2k / 10k rows, naive at 2k

One deterministic stream of Yoruba-like rows (words from a 20,000-word vocabulary with tone-marked
letters and Zipf-like frequencies, 8-60 words per row; ~10% of rows are an earlier row with a few
words changed, ~3% an exact copy with other casing) feeds both sides at threshold 0.8 on word
3-shingles of the Unicode tokenizer:

(a) ``RowDeduplicator`` (batched numpy MinHash, LSH banding, exact Jaccard confirmation);
(b) the naive reference: every row against every kept row, exact Jaccard (quadratic).

Both must make the same decisions (agreement is printed). Then k-means (scikit-learn, as the
``diversified_pairs`` asset runs it) clusters 20,000 and 100,000 384-d unit vectors (all-MiniLM-L6-v2's
size, scattered around 500 topic centres) into k = sqrt(n) clusters: ``kmeans_labels`` (full k-means up to
20,000 vectors, mini-batch k-means above) against full-batch k-means, with the inertia of each.
Single-threaded (OMP/BLAS threads = 1); CPU seconds of this process.

Targets: 100k rows de-duplicated in under 60 s on one core, growing about linearly.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from instruct_global.lib.curate.diversify import FULL_KMEANS_MAX_ROWS, kmeans_labels  # noqa: E402
from instruct_global.lib.curate.near_duplicates import RowDeduplicator, naive_near_duplicates  # noqa: E402

SEED = 20241201
THRESHOLD = 0.8
_LETTERS = "abdeẹfghijklmnoọprsṣtuwy"
_TONES = ("", "\u0300", "\u0301")


def vocabulary(size: int, rng: random.Random) -> list[str]:
    words = set()
    while len(words) < size:
        length = rng.randint(2, 8)
        words.add("".join(rng.choice(_LETTERS) + rng.choice(_TONES) for _ in range(length)))
    return sorted(words)


def rows(n: int, seed: int = SEED) -> list[str]:
    rng = random.Random(seed)
    vocab = vocabulary(20_000, rng)
    weights = [1.0 / (rank + 10) for rank in range(len(vocab))]
    out: list[str] = []
    for _ in range(n):
        roll = rng.random()
        if out and roll < 0.10:
            words = rng.choice(out).split()
            for _ in range(rng.randint(1, 2)):
                words[rng.randrange(len(words))] = rng.choice(vocab)
            out.append(" ".join(words))
        elif out and roll < 0.13:
            out.append(rng.choice(out).upper())
        else:
            out.append(" ".join(rng.choices(vocab, weights, k=rng.randint(8, 60))))
    return out


def cpu() -> float:
    return time.process_time()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sizes = [2_000, 10_000] if args.quick else [10_000, 50_000, 100_000]
    naive_sizes = {2_000} if args.quick else {2_000, 5_000, 10_000}
    print(f"near-duplicate removal, threshold {THRESHOLD}, word 3-shingles, single thread")
    print(f"{'rows':>8} | {'RowDeduplicator s':>17} | {'µs/row':>7} | {'dropped':>7} | {'naive all-pairs s':>17} "
          f"| {'speed-up':>8} | agree")
    print("-" * 92)
    for n in sorted(set(sizes) | naive_sizes):
        data = rows(n)
        start = cpu()
        fast = RowDeduplicator(threshold=THRESHOLD).deduplicate(data)
        fast_s = cpu() - start
        naive_cell, speed, agree = "-", "-", "-"
        if n in naive_sizes:
            start = cpu()
            reference = naive_near_duplicates(data, threshold=THRESHOLD)
            naive_s = cpu() - start
            naive_cell, speed = f"{naive_s:.2f}", f"{naive_s / fast_s:.0f}x"
            agree = f"{int((reference == fast.keep).sum())}/{n}"
        print(f"{n:>8} | {fast_s:>17.2f} | {fast_s / n * 1e6:>7.1f} | {int((~fast.keep).sum()):>7} | "
              f"{naive_cell:>17} | {speed:>8} | {agree}")
    print("\nclustering (the diversified_pairs step): 384-d unit vectors (all-MiniLM-L6-v2's size), k = sqrt(n)")
    print(f"{'vectors':>8} | {'k':>4} | {'method':<36} | {'CPU s':>7} | {'wall s':>7} | {'inertia':>10}")
    print("-" * 88)
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(SEED)
    for n_vectors in ([10_000] if args.quick else [20_000, 100_000]):
        # topic-like data: points scattered around 500 random centres
        centres = rng.standard_normal((500, 384), dtype=np.float32)
        vectors = centres[rng.integers(0, 500, n_vectors)] + 0.6 * rng.standard_normal((n_vectors, 384), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        k = round(math.sqrt(n_vectors))
        methods = [("kmeans_labels (as the asset runs it)", None)]
        if n_vectors <= FULL_KMEANS_MAX_ROWS:
            methods.append(("reference: full KMeans n_init=3", "full"))
        else:
            methods.append(("reference: full KMeans n_init=1", "full1"))
        for name, which in methods:
            start, wall = cpu(), time.perf_counter()
            if which is None:
                labels = kmeans_labels(vectors, k)
            else:
                model = KMeans(n_clusters=k, n_init=3 if which == "full" else 1, random_state=0, max_iter=100)
                labels = model.fit_predict(vectors)
            spent, elapsed = cpu() - start, time.perf_counter() - wall
            centroids = np.stack([vectors[labels == c].mean(axis=0) for c in np.unique(labels)])
            remap = {c: i for i, c in enumerate(np.unique(labels))}
            inertia = float(((vectors - centroids[[remap[c] for c in labels]]) ** 2).sum())
            print(f"{n_vectors:>8} | {k:>4} | {name:<36} | {spent:>7.1f} | {elapsed:>7.1f} | {inertia:>10.1f}")


if __name__ == "__main__":
    main()
