"""NoveltyFilter must decide exactly like the naive self-instruct loop over rouge-score."""

from __future__ import annotations

import functools
import itertools
import random
import unicodedata
from fractions import Fraction

import numpy as np
import pytest
from rouge_score import rouge_scorer
from rouge_score.tokenize import tokenize as rouge_score_tokenize

from instruct_global.lib.common.text_tokens import rouge_tokenize, unicode_word_tokenize
from instruct_global.lib.generate import novelty, novelty_kernel, signature_index
from instruct_global.lib.generate.novelty import NoveltyFilter, lcs_length, lcs_masks
from instruct_global.lib.generate.novelty_kernel import overlap_bound, popcount
from instruct_global.lib.generate.signature_index import SignatureIndex
from instruct_global_tests.fixtures.instruction_streams import TEMPLATED_SEED, templated_stream

_SCORER = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)

_VERBS = ["write", "explain", "describe", "list", "summarize", "translate", "compare", "give", "create"]
_OBJECTS = ["a poem", "a short story", "three reasons", "the main idea", "an email", "a recipe", "a list"]
_TOPICS = [
    "the ocean", "climate change", "a rainy day", "the history of rome", "machine learning",
    "healthy breakfast", "your favourite book", "the solar system", "a job interview", "city life",
    "the water cycle", "friendship", "the stock market", "ancient egypt", "a busy market",
]  # fmt: skip
_EXTRAS = ["in simple words", "for a child", "in 50 words", "step by step", "with examples", "briefly"]
_ODD = ["", "   ", "?!...", "--", "123", "Café naïve résumé", "K° İstanbul", "very very very very good"]


def _instruction(rng: random.Random) -> str:
    parts = [rng.choice(_VERBS), rng.choice(_OBJECTS), "about", rng.choice(_TOPICS)]
    for _ in range(rng.randrange(3)):
        parts.append(rng.choice(_EXTRAS))
    if rng.random() < 0.2:
        parts.append(" and ".join(rng.sample(_TOPICS, 2)))
    text = " ".join(parts)
    return text[0].upper() + text[1:] + rng.choice([".", "?", "!", ""])


def _mutate(rng: random.Random, text: str) -> str:
    """A near-duplicate: one or two word edits, a repeated word, or changed punctuation/case."""
    words = text.split() or ["empty"]
    for _ in range(rng.randint(1, 2)):
        i = rng.randrange(len(words))
        op = rng.randrange(5)
        if op == 0 and len(words) > 1:
            del words[i]
        elif op == 1:
            words.insert(i, rng.choice(_VERBS + _EXTRAS))
        elif op == 2:
            words[i] = rng.choice(_TOPICS)
        elif op == 3:
            words.insert(i, words[i])
        else:
            words[i] = words[i].upper() + ","
    return " ".join(words)


def _stream(seed: int, size: int) -> list[str]:
    rng = random.Random(seed)
    texts: list[str] = []
    for _ in range(size):
        roll = rng.random()
        if roll < 0.03:
            texts.append(rng.choice(_ODD))
        elif roll < 0.35 and texts:
            texts.append(_mutate(rng, rng.choice(texts[-50:])))
        else:
            texts.append(_instruction(rng))
    return texts


def _multiset_stream(seed: int, size: int) -> list[str]:
    """Texts over a tiny vocabulary: many repeated tokens, lengths from 0 to 40."""
    rng = random.Random(seed)
    texts: list[str] = []
    for _ in range(size):
        if texts and rng.random() < 0.3:
            texts.append(_mutate(rng, rng.choice(texts)))
        else:
            texts.append(" ".join(rng.choices("aabbbcdeefg", k=int(rng.expovariate(1 / 8)) % 41)))
    return texts


@functools.cache
def _scored(kind: str, seed: int) -> tuple[list[str], list[list[float]]]:
    """A stream and rouge-score's F of each text against every earlier one.

    Scores do not depend on the threshold, so all thresholds share one quadratic pass.
    """
    if kind == "instructions":
        texts = _stream(seed, 300)
    elif kind == "templated":
        texts = list(itertools.islice(templated_stream(seed), 300))
    else:
        texts = _multiset_stream(seed, 150)
    tokens = [rouge_tokenize(t) for t in texts]
    scores = [
        [rouge_scorer._score_lcs(tokens[i], tokens[j]).fmeasure for j in range(i)] for i in range(len(texts))
    ]
    return texts, scores


def _replay(novelty: NoveltyFilter, texts: list[str], scores: list[list[float]], seeds: int = 0) -> int:
    """Run ``texts`` through ``novelty`` and the naive loop side by side; return rejections."""
    kept = list(range(seeds))
    for text in texts[:seeds]:
        novelty.add(text)
    rejected = 0
    for i in range(seeds, len(texts)):
        # The Alpaca loop: max over every kept instruction, reject when above the threshold.
        expected = max((scores[i][j] for j in kept), default=0.0)
        result = novelty.submit(texts[i])
        assert result.novel == (not expected > novelty.threshold), texts[i]
        if result.exact:
            assert result.max_score == expected, texts[i]
        else:
            assert result.max_score <= expected <= novelty.exact_above, texts[i]
        if result.novel:
            kept.append(i)
        else:
            rejected += 1
    assert len(novelty) == len(kept)
    return rejected


@pytest.mark.parametrize("threshold", [0.5, 0.7, 0.9])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_stream_matches_naive_loop(threshold: float, seed: int) -> None:
    texts, scores = _scored("instructions", seed)
    rejected = _replay(NoveltyFilter(threshold), texts, scores, seeds=20)
    assert 0 < rejected < len(texts) - 20  # the stream exercises both outcomes


@pytest.mark.slow
@pytest.mark.parametrize(("threshold", "exact_above"), [(0.7, None), (0.5, None), (0.9, None), (0.7, 0.3)])
@pytest.mark.parametrize("seed", [TEMPLATED_SEED, 5])
def test_templated_stream_with_near_copies_matches_naive_loop(
    threshold: float, exact_above: float | None, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four frames over ~200 word types, 30 % near-copies: every token is common."""
    # Merge the index's recent entries often, so that merging is exercised on a short stream.
    monkeypatch.setattr(signature_index, "_MIN_MERGE", 200)
    texts, scores = _scored("templated", seed)
    rejected = _replay(NoveltyFilter(threshold, exact_above=exact_above), texts, scores, seeds=10)
    assert 0 < rejected < len(texts) - 10


@pytest.mark.parametrize(
    ("kind", "seed", "threshold"),
    [pytest.param("templated", 5, 0.7, marks=pytest.mark.slow), ("instructions", 2, 0.5), ("multiset", 4, 0.7)],
)
def test_bit_set_bounds_path_matches_naive_loop(
    kind: str, seed: int, threshold: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bits for only the 64 most frequent elements, so that the count of the other elements
    matters to the overlap bound too."""
    monkeypatch.setattr(novelty, "_BIT_WORDS", 1)
    texts, scores = _scored(kind, seed)
    _replay(NoveltyFilter(threshold), texts, scores)


def test_probe_stamps_wrap_around(monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-text stamps that mark a text scored by the current probe restart (all cleared)
    when they run out; decisions stay the naive loop's."""
    monkeypatch.setattr(novelty, "STAMP_LIMIT", 7)
    texts, scores = _scored("templated", 5)
    _replay(NoveltyFilter(0.7), texts, scores)


def test_a_text_too_long_to_keep_is_refused_with_its_length(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(novelty, "MAX_FIELD", 5)
    filt = NoveltyFilter(0.7)
    filt.add("one two three four five")
    with pytest.raises(ValueError, match="at most 5 tokens, got 6"):
        filt.add("one two three four five six")
    # Nothing of the refused text stays: "six" is still unknown, the kept set unchanged.
    assert len(filt) == 1 and ("six", 1) not in filt._element_ids
    assert filt.check("one two three four five six").max_score == rouge_scorer._score_lcs(
        ["one", "two", "three", "four", "five", "six"], ["one", "two", "three", "four", "five"]
    ).fmeasure


def test_scores_match_rouge_score_for_every_probe_length() -> None:
    """Probes of 1 to 140 tokens (the one-word bit-parallel LCS up to 64, the DP table past
    it) against kept texts of 1 to 150 tokens: with every score exact, the highest F equals
    rouge-score's, bit for bit."""
    rng = random.Random(13)
    filt = NoveltyFilter(0.7, exact_above=0.0)
    kept = [rng.choices("abcdefgh", k=rng.randint(1, 150)) for _ in range(60)]
    for tokens in kept:
        filt.add(" ".join(tokens))
    for m in [1, 2, 7, 15, 16, 31, 32, 50, 63, 64, 65, 127, 128, 140]:
        for _ in range(3):
            probe = rng.choices("abcdefghij", k=m)  # i and j are never kept: they match nothing
            result = filt.check(" ".join(probe))
            assert result.exact
            assert result.max_score == max(rouge_scorer._score_lcs(probe, k).fmeasure for k in kept), m
    assert filt.check("unseen words").max_score == 0.0


@pytest.mark.parametrize("bit_words", [1, 8])
def test_overlap_bound_bounds_the_exact_overlap(bit_words: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(novelty, "_BIT_WORDS", bit_words)
    texts = _stream(6, 300) + _multiset_stream(6, 100)
    filt = NoveltyFilter(0.7)
    for text in texts[::2]:
        filt.add(text)  # 200 kept: re-indexed at 32, 64 and 128, then fresh elements on top
    probes = []
    for text in texts[1::2]:
        elements = novelty._multiset_elements(rouge_tokenize(text))
        probes.append([e for e in map(filt._element_ids.get, elements) if e is not None])
    kept = np.flatnonzero(filt._length_array[: len(filt)])

    def exact_and_bounds(known: list[int]) -> tuple[np.ndarray, np.ndarray]:
        exact = filt._overlaps(known, kept, filt._length_array[kept])
        probe_bits, probe_others = filt._bit_set(known)
        bounds = np.array([overlap_bound(filt._rows, j, probe_bits, probe_others) for j in kept])
        others = (filt._rows[kept, -1] >> np.uint64(novelty_kernel.FIELD_BITS)) & np.uint64(novelty_kernel.MAX_FIELD)
        exactly = (others == 0) | (probe_others == 0)
        assert (bounds[exactly] == exact[exactly]).all()
        return exact, bounds

    loose = 0
    for known in filter(None, probes):
        exact, bounds = exact_and_bounds(known)
        assert (bounds >= exact).all()
        loose += int((bounds > exact).any())
    assert loose > 0  # elements without a bit (64 bits, or first seen after the last re-indexing)
    filt._reindex()  # now every element has its bit where 512 bits hold them all
    for known in filter(None, probes):
        exact, bounds = exact_and_bounds(known)
        assert (bounds >= exact).all()
        if bit_words == 8:
            assert (bounds == exact).all()


def test_kernel_popcount_matches_int_bit_count() -> None:
    rng = random.Random(5)
    values = [0, 1, 2**63, 2**64 - 1, *(rng.getrandbits(64) for _ in range(200))]
    assert [popcount(np.uint64(v)) for v in values] == [v.bit_count() for v in values]


# 50: the recent entries are merged every dozen additions; 5000: never, so that the recent
# table grows (and re-chains) while it holds entries.
@pytest.mark.parametrize("min_merge", [50, 5000])
def test_signature_index_matches_a_dict_of_lists(min_merge: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signature_index, "_MIN_MERGE", min_merge)
    rng = random.Random(3)
    pool = [rng.randrange(-(1 << 63), 1 << 63) for _ in range(300)] + [-(1 << 63), (1 << 63) - 1, 0, -2]
    index = SignatureIndex()
    reference: dict[int, list[int]] = {}
    for step in range(400):
        if step == 200:  # a rebuild replaces everything, then additions continue on top of it
            keys = [k for k, values in reference.items() for _ in values]
            values = [v for values in reference.values() for v in values]
            index.rebuild(np.array(keys, dtype=np.int64), np.array(values, dtype=np.int64))
        keys = rng.sample(pool, rng.randrange(1, 16))
        index.add(np.array(keys, dtype=np.int64), np.full(len(keys), step, dtype=np.int64))
        for key in keys:
            reference.setdefault(key, []).append(step)
        query = [*rng.sample(pool, 20), rng.randrange(-(1 << 63), 1 << 63)]
        values, which = index.lookup(np.array(query, dtype=np.int64))
        expected = sorted((v, i) for i, key in enumerate(query) for v in reference.get(key, []))
        assert sorted(zip(values.tolist(), which.tolist(), strict=True)) == expected
    assert len(index) == sum(map(len, reference.values()))
    with pytest.raises(ValueError, match="values must lie in"):
        index.add(np.array([1], dtype=np.int64), np.array([1 << 32], dtype=np.int64))


@pytest.mark.parametrize(
    ("threshold", "exact_above"), [(0.0, 0.0), (0.2, 0.05), (0.5, None), (0.7, None), (0.9, 0.4), (1.0, None)]
)
def test_repeated_tokens_and_extreme_thresholds(threshold: float, exact_above: float | None) -> None:
    texts, scores = _scored("multiset", 4)
    _replay(NoveltyFilter(threshold, exact_above=exact_above), texts, scores)


def test_exact_above_makes_lower_scores_exact() -> None:
    texts, scores = _scored("instructions", 2)
    novelty = NoveltyFilter(0.7, exact_above=0.3)
    kept: list[int] = []
    for i, text in enumerate(texts):
        expected = max((scores[i][j] for j in kept), default=0.0)
        result = novelty.submit(text)
        assert result.exact == (expected > 0.3 or not rouge_tokenize(text) or not kept)
        if result.novel:
            kept.append(i)


def test_max_score_is_exact_below_threshold() -> None:
    texts, scores = _scored("instructions", 1)
    novelty = NoveltyFilter(0.7)
    kept = [i for i in range(220) if novelty.add_if_novel(texts[i])]
    for i in range(220, len(texts)):
        assert novelty.max_score(texts[i]) == max(scores[i][j] for j in kept), texts[i]


def test_rouge_tokenize_matches_rouge_score() -> None:
    rng = random.Random(7)
    alphabet = "aZ09 .,-_'é\u0130\u212a\u00df\u0301\u1ecd\n\t"
    texts = _stream(3, 200) + ["".join(rng.choices(alphabet, k=rng.randrange(30))) for _ in range(300)]
    for text in texts:
        assert rouge_tokenize(text) == rouge_score_tokenize(text, None), repr(text)


def test_scores_match_rouge_scorer_score() -> None:
    """The public RougeScorer.score (its own tokenization, both argument orders) agrees."""
    texts = _stream(8, 200) + _multiset_stream(8, 100)
    for kept_text, candidate in zip(texts[::2], texts[1::2], strict=True):
        novelty = NoveltyFilter(0.7)
        novelty.add(kept_text)
        expected = _SCORER.score(candidate, kept_text)["rougeL"].fmeasure
        assert _SCORER.score(kept_text, candidate)["rougeL"].fmeasure == expected
        assert novelty.max_score(candidate) == expected
        assert novelty.check(candidate).novel == (not expected > 0.7)


def test_bit_parallel_lcs_matches_dp_table() -> None:
    rng = random.Random(11)
    for _ in range(400):
        a = rng.choices("abcde", k=rng.randrange(0, 25))
        b = rng.choices("abcdef", k=rng.randrange(0, 25))
        expected = rouge_scorer._lcs_table(a, b)[-1][-1]
        assert lcs_length(lcs_masks(a), len(a), b) == expected


def _pair_with_lcs(m: int, n: int, lcs: int) -> tuple[str, str]:
    """Texts of m and n tokens whose LCS is exactly ``lcs`` (shared words, then distinct ones)."""
    shared = [f"w{i}" for i in range(lcs)]
    first = shared + [f"a{i}" for i in range(m - lcs)]
    second = [f"b{i}" for i in range(n - lcs)] + shared
    return " ".join(first), " ".join(second)


@pytest.mark.parametrize("threshold", [0.5, 0.7, 0.9])
def test_decisions_at_and_around_the_threshold(threshold: float) -> None:
    """Every (m, n, L) with 2L/(m+n) within one token of the threshold, float-exact."""
    target = Fraction(threshold).limit_denominator(100)
    on_boundary_rejected = 0
    for m in range(1, 31):
        for n in range(1, 31):
            for lcs in range(1, min(m, n) + 1):
                if abs(Fraction(2 * lcs, m + n) - target) > Fraction(2, m + n):
                    continue
                kept_text, candidate = _pair_with_lcs(m, n, lcs)
                expected = _SCORER.score(candidate, kept_text)["rougeL"].fmeasure
                novelty = NoveltyFilter(threshold)
                novelty.add(kept_text)
                result = novelty.check(candidate)
                assert result.novel == (not expected > threshold), (m, n, lcs)
                assert novelty.max_score(candidate) == expected
                if Fraction(2 * lcs, m + n) == target and expected > threshold:
                    on_boundary_rejected += 1
    if threshold == 0.7:
        # True F of exactly 0.7 that rounds above it (e.g. m=8, n=12, L=7) must be rejected.
        assert on_boundary_rejected > 0


def test_empty_and_punctuation_only_texts_are_always_novel() -> None:
    novelty = NoveltyFilter()
    assert novelty.check("anything").max_score == 0.0
    for text in ["", "?!", "", "Write a poem."]:
        assert novelty.add_if_novel(text)
    assert not novelty.add_if_novel("write a POEM!")
    assert novelty.add_if_novel("...")
    assert len(novelty) == 5


def test_custom_tokenizer_and_validation() -> None:
    novelty = NoveltyFilter(0.7, tokenizer=unicode_word_tokenize)
    novelty.add("Ṣe àlàyé ìtàn ọjà ńlá náà")
    assert not novelty.add_if_novel("ṣe àlàyé ìtàn ọjà ńlá náà")
    assert novelty.add_if_novel("Kọ ewì kan nípa òkun")
    with pytest.raises(ValueError):
        NoveltyFilter(1.5)
    with pytest.raises(ValueError):
        NoveltyFilter(0.5, exact_above=0.6)


def test_unicode_word_tokenize_amharic() -> None:
    assert unicode_word_tokenize("ስለ ውቅያኖስ አጭር ግጥም ጻፍ።") == ["ስለ", "ውቅያኖስ", "አጭር", "ግጥም", "ጻፍ"]


def test_unicode_word_tokenize_yoruba_nfc_and_nfd_agree() -> None:
    text = "Ṣàlàyé ìdí tí ọ̀rọ̀ ẹ̀kọ́ fi ṣe pàtàkì, ní ṣókí."
    nfc = unicode_word_tokenize(unicodedata.normalize("NFC", text))
    nfd = unicode_word_tokenize(unicodedata.normalize("NFD", text))
    assert nfc == nfd
    assert nfc == ["ṣàlàyé", "ìdí", "tí", "ọ̀rọ̀", "ẹ̀kọ́", "fi", "ṣe", "pàtàkì", "ní", "ṣókí"]
    assert all(unicodedata.is_normalized("NFC", tok) for tok in nfc)


def test_unicode_word_tokenize_hausa_and_digits() -> None:
    assert unicode_word_tokenize("Ɗan ƙasa ya ɓata kuɗi 250 a Kano!") == [
        "ɗan", "ƙasa", "ya", "ɓata", "kuɗi", "250", "a", "kano",
    ]  # fmt: skip
    assert unicode_word_tokenize("  ...  ") == []


def test_popcount_with_and_without_numpy_bitwise_count(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    words = rng.integers(0, 1 << 64, size=(40, 3), dtype=np.uint64, endpoint=False)
    words[0] = [0, (1 << 64) - 1, 1 << 63]
    expected = [[bin(w).count("1") for w in row] for row in words.tolist()]
    assert novelty._popcount(words).tolist() == expected
    narrow = words.astype(np.uint32)  # lanes of 32 and 16 bits, as in _batched_max
    narrow_expected = [[bin(w).count("1") for w in row] for row in narrow.tolist()]
    assert novelty._popcount(narrow).tolist() == narrow_expected
    assert novelty._popcount(narrow.astype(np.uint16)).tolist() == [
        [bin(w).count("1") for w in row] for row in narrow.astype(np.uint16).tolist()
    ]
    monkeypatch.delattr(np, "bitwise_count", raising=False)  # numpy < 2 has none
    assert novelty._popcount(words).tolist() == expected
    assert novelty._popcount(narrow).tolist() == narrow_expected
