"""Diversification (X-Instruction): embed instructions, cluster with k-means, sample evenly.

Sampling takes rows round-robin over the clusters (largest first), best curation score first
inside each cluster, until the requested size is reached: small clusters are kept whole and big
clusters of near-identical instructions are thinned. k defaults to about the square root of n.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

Embed = Callable[[list[str]], np.ndarray]


@dataclass
class Diversified:
    rows: pd.DataFrame  # the sample, with a "cluster" column
    clusters: pd.DataFrame  # cluster, size, sampled, examples
    k: int
    dropped: int


def default_k(n: int) -> int:
    return max(1, min(n, round(math.sqrt(n))))


# Above this many vectors full-batch Lloyd iterations cost minutes on one core; mini-batch k-means
# (Sculley 2010) gives clusters of nearly the same inertia in seconds.
FULL_KMEANS_MAX_ROWS = 20_000


def kmeans_labels(vectors: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """k-means cluster of each vector (scikit-learn; k-means++ start, fixed seed; mini-batch when large)."""
    if len(vectors) == 0:
        return np.empty(0, dtype=np.int64)
    k = max(1, min(k, len(vectors)))
    if k == 1:
        return np.zeros(len(vectors), dtype=np.int64)
    from sklearn.cluster import KMeans, MiniBatchKMeans

    data = np.asarray(vectors, dtype=np.float32)
    if len(data) > FULL_KMEANS_MAX_ROWS:
        model = MiniBatchKMeans(n_clusters=k, n_init=3, random_state=seed, batch_size=4096, max_iter=100)
    else:
        model = KMeans(n_clusters=k, n_init=3, random_state=seed, max_iter=100)
    return model.fit_predict(data).astype(np.int64)


def even_sample(labels: np.ndarray, order_key: Sequence[float], size: int) -> np.ndarray:
    """Indexes of a round-robin sample over clusters; inside a cluster by ``order_key`` descending."""
    if size >= len(labels):
        return np.arange(len(labels))
    members: dict[int, list[int]] = {}
    for index in sorted(range(len(labels)), key=lambda i: (-order_key[i], i)):
        members.setdefault(int(labels[index]), []).append(index)
    queues = sorted(members.values(), key=lambda m: (-len(m), m[0]))
    chosen: list[int] = []
    depth = 0
    while len(chosen) < size:
        for queue in queues:
            if depth < len(queue):
                chosen.append(queue[depth])
                if len(chosen) == size:
                    break
        depth += 1
    return np.asarray(sorted(chosen), dtype=np.int64)


def diversify(
    rows: pd.DataFrame,
    embed: Embed,
    *,
    text_column: str = "instruction_en",
    target_size: int | None = None,
    k: int | None = None,
    seed: int = 0,
    examples_per_cluster: int = 3,
) -> Diversified:
    """Cluster ``rows`` on ``text_column`` and keep an even sample of ``target_size`` (None: all)."""
    n = len(rows)
    if n == 0:
        return Diversified(rows.assign(cluster=pd.Series(dtype="int64")), pd.DataFrame(
            columns=["cluster", "size", "sampled", "examples"]), 0, 0)
    texts = [str(t) for t in rows[text_column].fillna("")]
    vectors = embed(texts)
    chosen_k = default_k(n) if not k else max(1, min(k, n))
    labels = kmeans_labels(vectors, chosen_k, seed)
    scores = rows["curation_score"].fillna(0).astype(float).tolist() if "curation_score" in rows else [0.0] * n
    size = n if target_size is None or target_size <= 0 else target_size
    picked = even_sample(labels, scores, size)
    sample = rows.assign(cluster=labels).iloc[picked].reset_index(drop=True)
    summary = []
    for cluster in sorted(set(labels.tolist())):
        index = np.flatnonzero(labels == cluster)
        summary.append({
            "cluster": int(cluster), "size": len(index), "sampled": int(np.isin(index, picked).sum()),
            "examples": " | ".join(texts[i][:80] for i in index[:examples_per_cluster]),
        })
    clusters = pd.DataFrame(summary).sort_values(["size", "cluster"], ascending=[False, True]).reset_index(drop=True)
    return Diversified(sample, clusters, chosen_k, n - len(sample))


def sentence_embedder(model) -> Embed:
    """An ``Embed`` from a SentenceTransformer (normalised vectors, so k-means works on cosine)."""

    def embed(texts: list[str]) -> np.ndarray:
        return np.asarray(model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False))

    return embed
