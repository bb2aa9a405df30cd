"""Candidate segments: token bounds, a cap per document, shares per source, provenance and licence ids."""

from __future__ import annotations

import pandas as pd

from instruct_global.lib.corpus.bbc import LICENSE as BBC_LICENSE
from instruct_global.lib.corpus.wikipedia import LICENSE as WIKI_LICENSE
from instruct_global.lib.curate.licenses import BBC_COPYRIGHT, CC_BY_SA_4, UNSPECIFIED, is_allowed, license_id
from instruct_global.lib.curate.segments import SegmentSettings, select_segments


def _chunks() -> pd.DataFrame:
    rows = []
    for d in range(10):
        source = "wikipedia" if d < 6 else "bbc"
        for c in range(3):
            rows.append({"doc_id": f"d{d}", "chunk_id": f"d{d}-c{c}", "lang": "yor", "source": source,
                         "url": f"https://example.org/{d}", "title": f"T{d}", "text": f"ọ̀rọ̀ {d} {c}",
                         "license": WIKI_LICENSE if source == "wikipedia" else BBC_LICENSE,
                         "n_tokens": [5, 50, 500][c] if d == 0 else 40})
    return pd.DataFrame(rows)


def test_bounds_and_cap_per_document() -> None:
    chosen = select_segments(_chunks(), SegmentSettings(min_tokens=10, max_tokens=400, max_per_document=2,
                                                        max_segments=100))
    assert chosen.reasons["too_few_tokens"] == 1 and chosen.reasons["too_many_tokens"] == 1
    assert chosen.segments.groupby("doc_id").size().max() <= 2
    assert chosen.reasons["document_cap"] == 9  # docs 1-9 keep 2 of 3 chunks
    assert len(chosen.segments) == 1 + 9 * 2
    row = chosen.segments[chosen.segments["chunk_id"] == "d0-c1"].iloc[0]
    assert (row["doc_id"], row["source_url"], row["license"]) == ("d0", "https://example.org/0", CC_BY_SA_4)
    assert set(chosen.segments.loc[chosen.segments["source"] == "bbc", "license"]) == {BBC_COPYRIGHT}


def test_shares_per_source_and_total() -> None:
    settings = SegmentSettings(min_tokens=10, max_per_document=3, max_segments=10,
                               source_shares={"wikipedia": 0.7, "bbc": 0.3})
    chosen = select_segments(_chunks(), settings)
    assert chosen.quotas == {"bbc": 3, "wikipedia": 7}
    assert chosen.per_source == {"bbc": 3, "wikipedia": 7}
    again = select_segments(_chunks(), settings)
    assert list(again.segments["chunk_id"]) == list(chosen.segments["chunk_id"])  # same choice every run


def test_empty_input() -> None:
    chosen = select_segments(_chunks().iloc[0:0], SegmentSettings())
    assert chosen.segments.empty and "chunk_id" in chosen.segments.columns


def test_license_ids_and_filter() -> None:
    assert license_id("CC BY-SA 4.0") == CC_BY_SA_4
    assert license_id(BBC_LICENSE) == BBC_COPYRIGHT
    assert license_id("") == license_id(None) == UNSPECIFIED
    assert license_id("cc0-1.0") == "CC0-1.0"
    assert license_id("Yoruba Proverbs Licence v1") == "Yoruba Proverbs Licence v1"
    assert is_allowed(CC_BY_SA_4, ["cc-by-sa-4.0"]) == (True, None)
    assert is_allowed(BBC_COPYRIGHT, [CC_BY_SA_4]) == (False, "license_not_allowed:BBC-copyright")
