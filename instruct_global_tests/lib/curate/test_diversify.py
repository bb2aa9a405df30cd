"""Diversification: k-means over embeddings, even sampling across clusters, the packaged model."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from instruct_global.lib.curate.diversify import default_k, diversify, even_sample, kmeans_labels


def _topic_embed(texts: list[str]) -> np.ndarray:
    """Vectors near one of three topic centres (by the text's first word), plus small noise."""
    centres = {"market": [1, 0, 0], "farm": [0, 1, 0], "school": [0, 0, 1]}
    out = []
    for text in texts:
        noise = np.frombuffer(hashlib.sha256(text.encode()).digest()[:3], dtype=np.uint8) / 2550.0
        out.append(np.asarray(centres[text.split()[0]], dtype=float) + noise)
    return np.asarray(out)


def _pairs() -> pd.DataFrame:
    texts = [f"market question {i}" for i in range(30)] + [f"farm question {i}" for i in range(6)] + [
        f"school question {i}" for i in range(3)]
    return pd.DataFrame({"id": [f"p{i}" for i in range(len(texts))], "instruction_en": texts,
                         "curation_score": [4.0 + (i % 2) for i in range(len(texts))]})


def test_even_sampling_thins_the_big_cluster() -> None:
    result = diversify(_pairs(), _topic_embed, target_size=12, k=3)
    assert len(result.rows) == 12 and result.dropped == 39 - 12 and result.k == 3
    first_words = result.rows["instruction_en"].str.split().str[0].value_counts().to_dict()
    assert first_words == {"market": 5, "farm": 4, "school": 3}
    assert list(result.clusters["size"]) == [30, 6, 3]
    assert result.clusters["sampled"].sum() == 12


def test_best_scored_first_inside_a_cluster_and_all_when_no_size() -> None:
    labels = np.array([0, 0, 0, 1])
    assert list(even_sample(labels, [4, 5, 3, 4], 2)) == [1, 3]
    assert len(diversify(_pairs(), _topic_embed).rows) == 39


def test_default_k_and_small_inputs() -> None:
    assert default_k(100) == 10 and default_k(1) == 1 and default_k(2) == 1
    assert list(kmeans_labels(np.zeros((1, 4)), 5)) == [0]
    empty = diversify(_pairs().iloc[0:0], _topic_embed)
    assert empty.rows.empty and empty.k == 0


@pytest.mark.slow
def test_packaged_minilm_embeds_and_clusters_by_meaning(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("INSTRUCT_GLOBAL_MODEL_CACHE", str(tmp_path / "models"))
    from instruct_global.lib.curate.diversify import sentence_embedder
    from instruct_global.lib.curate.embedding_model import DEFAULT_EMBEDDING_MODEL, load_sentence_model

    load_sentence_model.cache_clear()  # loaded once per process: an earlier test may hold it
    model = load_sentence_model(DEFAULT_EMBEDDING_MODEL)
    assert list((tmp_path / "models").glob("all-MiniLM-L6-v2-*/modules.json"))  # unpacked from the wheel
    texts = ["How do I cook jollof rice?", "Give me a recipe for jollof rice.", "Who won the football match?",
             "Which team won the league final?"]
    vectors = sentence_embedder(model)(texts)
    assert vectors.shape == (4, 384)
    labels = kmeans_labels(vectors, 2)
    assert labels[0] == labels[1] and labels[2] == labels[3] and labels[0] != labels[2]
