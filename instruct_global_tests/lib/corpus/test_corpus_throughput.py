"""The shortcuts that make cleaning fast give the same results as the plain computations they
replace (word counts, per-line boilerplate tests, NFC, furniture by hash, chunk counts, the
near-duplicate index), and language ID reads a bounded sample."""

from __future__ import annotations

import random
import unicodedata
from collections import Counter

import numpy as np
import pytest
from datasketch import MinHashLSH

from instruct_global.languages import LANGUAGES
from instruct_global.lib.common.text_tokens import WORD_RE
from instruct_global.lib.corpus import normalise
from instruct_global.lib.corpus.chunking import chunk_text_with_counts, make_approx_counter
from instruct_global.lib.corpus.dedupe import NearDeduplicator
from instruct_global.lib.corpus.furniture import (
    FurnitureConfig,
    RecurringCounter,
    document_keys,
    learn_recurring,
    line_keys,
    recurring_report,
    remove_furniture,
    remove_furniture_hashed,
)
from instruct_global.lib.corpus.furniture import _key as furniture_key
from instruct_global.lib.corpus.langid import identify
from instruct_global_tests.fixtures.bbc_furniture_pages import SERVICES, build_pages

PIECES = [
    "àgbàdo", "jẹ́", "ọ̀gbìn", "Ìbàdàn", "e\u0301", "\u0301", "2024", "kò", "a-b", "—", "|", "•", ",", ".", ":",
    " ", " ", " ", "  ", "\t", "\n", "\n", "\n\n\n", "\u00a0", "\u200b", "<b>", "</b>", "<ref>x</ref>", "{{t}}",
    "[[Ọ̀yọ́|ọ̀yọ́]]", "''", "&amp;", "&#769;", "[1]", "https://x.org/a", "www.b.org", "a@b.ng", "©", "(c) 2020",
    "Copyright", "read more", "Share this", "we use cookies", "soma zaidi", "ìròyìn mìíràn", "Home | News | Sport",
    "ÃƒÂ©", "\r\n", "\x01", "’",
]  # fmt: skip


def _random_text(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, n)))


def test_has_words_counts_like_word_re() -> None:
    rng = random.Random(3)
    for _ in range(3000):
        line = _random_text(rng, 30)
        n = len(WORD_RE.findall(line))
        for k in (1, 4, 9, 46):
            assert normalise.has_words(line, k) == (n >= k), (line, k)


def _reference_remove_boilerplate(text: str) -> tuple[str, int]:
    """Every line test on every line, words counted in full: what remove_boilerplate shortcuts."""
    lines = text.split("\n")
    counts = [len(WORD_RE.findall(line)) for line in lines]
    drop = [normalise.is_boilerplate_line(line, n) for line, n in zip(lines, counts, strict=True)]
    run: list[int] = []
    for i, line in enumerate(lines):
        if line.strip() and not drop[i] and 1 <= counts[i] <= 3 and not normalise._SENTENCE_END.search(line):
            run.append(i)
            continue
        if len(run) >= 4:
            for j in run:
                drop[j] = True
        run = []
    if len(run) >= 4:
        for j in run:
            drop[j] = True
    kept = [line for line, d in zip(lines, drop, strict=True) if not d]
    removed = sum(1 for line, d in zip(lines, drop, strict=True) if d and line.strip())
    return normalise.clean_whitespace("\n".join(kept)), removed


def test_boilerplate_shortcuts_decide_as_every_test_on_every_line() -> None:
    rng = random.Random(5)
    for _ in range(1500):
        text = normalise.clean_whitespace(_random_text(rng, 60))
        assert normalise.remove_boilerplate(text) == _reference_remove_boilerplate(text), text


def test_normalised_text_is_nfc_even_where_markup_joined_a_mark_to_a_letter() -> None:
    assert normalise.normalise_text("e<b></b>\u0301 ọ{{t}}\u0301 kò ńkan").text == unicodedata.normalize(
        "NFC", "e\u0301 ọ\u0301 kò ńkan"
    )
    rng = random.Random(7)
    for _ in range(2000):
        out = normalise.normalise_text(_random_text(rng, 60)).text
        assert unicodedata.is_normalized("NFC", out), out


def test_line_keys_fold_a_tidy_text_as_key_folds_each_line() -> None:
    rng = random.Random(11)
    for _ in range(1500):
        raw = _random_text(rng, 40)
        for text in (raw, normalise.normalise_text(raw, drop_boilerplate=False).text):
            assert line_keys(text) == [furniture_key(line) for line in text.split("\n")], text


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_furniture_by_hash_removes_what_furniture_by_string_removes(service: str) -> None:
    pages = build_pages(service, 40)
    texts = [normalise.normalise_text("\n".join(p.naive_lines)).text for p in pages]
    texts += texts[:3]  # exact duplicates count once in both
    for config in (FurnitureConfig(), FurnitureConfig(min_docs=3, min_share=0.01)):
        learnt = learn_recurring(texts, config)
        counter = RecurringCounter()
        for text in texts:
            counter.add(document_keys(text, config))
        hashed = counter.result(config)
        assert hashed.documents == learnt.documents
        assert len(hashed.lines) == len(learnt.lines) and len(hashed.prefixes) == len(learnt.prefixes)
        by_string: Counter[str] = Counter()
        by_hash: Counter[str] = Counter()
        names: dict[int, str] = {}
        for text in texts:
            assert remove_furniture_hashed(text, hashed, None, config, by_hash, names) == remove_furniture(
                text, learnt, None, config, by_string
            )
        assert by_hash == by_string and sum(by_hash.values()) > 0
        assert recurring_report(hashed, names) == learnt.as_dict()


def test_chunks_from_known_line_counts_match_counting_again() -> None:
    rng = random.Random(13)
    count = make_approx_counter()
    words = ["àgbàdo", "jẹ́", "ọ̀gbìn", "tí", "àwọn", "2024", "a-b", "ní", "Ìbàdàn"]
    for _ in range(100):
        paragraphs = [
            " ".join(rng.choice(words) + rng.choice(["", "", ",", "."]) for _ in range(rng.randint(1, 120)))
            for _ in range(rng.randint(1, 12))
        ]
        text = "".join(p + rng.choice(["\n", "\n\n"]) for p in paragraphs).strip()
        lines = text.split("\n")
        line_pieces = [len(normalise.regex.findall(r"[\p{L}\p{M}\p{N}]+|[^\p{L}\p{M}\p{N}\s]", ln)) for ln in lines]
        budget = rng.choice([16, 64, 512])
        assert chunk_text_with_counts(
            text, budget, count, LANGUAGES["yor"], n_pieces=sum(line_pieces), line_pieces=line_pieces
        ) == chunk_text_with_counts(text, budget, count, LANGUAGES["yor"])


def test_near_duplicate_index_decides_as_datasketch_lsh() -> None:
    """Same signatures, same banding: the compact index finds what datasketch's MinHashLSH finds."""
    rng = random.Random(17)
    vocab = [f"w{i}" for i in range(400)]
    docs: list[list[str]] = []
    for _ in range(300):
        if docs and rng.random() < 0.5:  # a variant of an earlier document: some words changed
            words = list(rng.choice(docs))
            for _ in range(rng.randint(0, len(words) // 12)):
                words[rng.randrange(len(words))] = rng.choice(vocab)
        else:
            words = [rng.choice(vocab) for _ in range(rng.randint(20, 80))]
        docs.append(words)
    ours = NearDeduplicator(threshold=0.8)
    lsh = MinHashLSH(threshold=0.8 * 0.7, num_perm=128)
    assert (lsh.b, lsh.r) == (ours.bands, ours.rows)
    kept: dict[str, object] = {}
    order: dict[str, int] = {}
    found = 0
    for i, words in enumerate(docs):
        doc_id = f"d{i}"
        signature = ours.signature(words)
        m = ours.minhash_of_signature(signature)
        best = None
        for other in lsh.query(m):
            jaccard = float(m.jaccard(kept[other]))
            if jaccard >= 0.8 and (best is None or (jaccard, -order[other]) > (best[1], -order[best[0]])):
                best = (other, jaccard)
        if best is None:
            lsh.insert(doc_id, m)
            kept[doc_id], order[doc_id] = m, i
        assert ours.duplicate_of_signature(doc_id, signature) == best, doc_id
        found += best is not None
    assert found > 40  # the planted variants are found, so the comparison means something


def test_index_memory_is_a_signature_row_and_band_keys_per_kept_document() -> None:
    near = NearDeduplicator()
    rng = np.random.default_rng(1)
    for i in range(1000):
        near.duplicate_of_signature(f"d{i}", rng.integers(0, 2**32, 128, dtype=np.uint32))
    assert len(near._ids) == 1000 and len(near._buckets) == 1000 * near.bands
    assert near._sigs.dtype == np.uint32 and near._sigs.shape[1] == 128


def test_language_id_reads_a_bounded_sample_from_the_start() -> None:
    yoruba = "Ìlú Èkó jẹ́ ìlú tó tóbi jùlọ ní orílẹ̀-èdè Nàìjíríà. Ọ̀pọ̀ èèyàn ló ń gbé ibẹ̀. " * 8
    english = "The federal government said it will build new schools in Kano State next year. " * 200
    assert identify(yoruba + english, LANGUAGES["yor"]).lang == "yor"
    assert identify(english[:700] + yoruba, LANGUAGES["yor"]).lang == "eng"
