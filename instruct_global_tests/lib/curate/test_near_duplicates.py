"""Near-duplicate removal agrees with the exact all-pairs reference and reads any script."""

from __future__ import annotations

import random
import unicodedata

import numpy as np
import pytest

from instruct_global.lib.curate.near_duplicates import RowDeduplicator, naive_near_duplicates

WORDS = ["ọjà", "àgbẹ̀", "òjò", "ilé", "ìwé", "olùkọ́", "ọmọ", "ìtàn", "òwe", "orin", "ሰላም", "ቤት", "ትምህርት",
         "soko", "mvua", "shule", "kasuwa", "ruwa", *[f"w{i}" for i in range(400)]]


def _rows(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    rows: list[str] = []
    for _ in range(n):
        if rows and rng.random() < 0.3:
            words = rng.choice(rows).split()
            for _ in range(rng.randint(0, 3)):  # a few words changed: some stay above 0.8, some fall below
                words[rng.randrange(len(words))] = rng.choice(WORDS)
            rows.append(" ".join(words))
        else:
            rows.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 40))))
    return rows


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("threshold", [0.5, 0.8])
def test_same_decisions_as_exact_all_pairs(seed: int, threshold: float) -> None:
    rows = _rows(600, seed)
    fast = RowDeduplicator(threshold=threshold).deduplicate(rows)
    reference = naive_near_duplicates(rows, threshold=threshold)
    # LSH is tuned for >= 99.5% recall at the threshold and every candidate is confirmed exactly
    disagreements = int((fast.keep != reference).sum())
    assert disagreements <= 2, disagreements
    assert 0 < int((~fast.keep).sum()) < len(rows)


def test_nfd_case_and_punctuation_do_not_hide_a_duplicate() -> None:
    text = "Ọjà Ọba jẹ́ ọ̀kan lára àwọn ọjà tó gbajúmọ̀ jùlọ ní ìlú Ìbàdàn."
    variant = unicodedata.normalize("NFD", text).upper().replace(".", " !")
    result = RowDeduplicator().deduplicate([text, variant, "Ọmọ náà lọ sí ilé ìwé ní àárọ̀ ọjọ́ Ajé."])
    assert list(result.keep) == [True, False, True]
    assert result.reason[1] == "exact_duplicate" and result.duplicate_of[1] == 0


def test_near_duplicate_points_to_the_kept_row_and_empty_rows_drop() -> None:
    base = " ".join(f"ọ̀rọ̀{i}" for i in range(40))
    near = base.replace("ọ̀rọ̀39", "ìyípadà")
    result = RowDeduplicator(threshold=0.8).deduplicate(["", base, near, "ሰላም ለዓለም"])
    assert list(result.keep) == [False, True, False, True]
    assert result.reason[0] == "empty_text"
    assert result.reason[2] == "near_duplicate" and result.duplicate_of[2] == 1
    assert result.similarity[2] is not None and 0.8 <= result.similarity[2] < 1.0


def test_deterministic_and_seeded() -> None:
    rows = _rows(300, 5)
    a = RowDeduplicator().deduplicate(rows).keep
    b = RowDeduplicator().deduplicate(rows).keep
    assert np.array_equal(a, b)


def test_bad_threshold_is_refused() -> None:
    with pytest.raises(ValueError, match="threshold"):
        RowDeduplicator(threshold=0)
