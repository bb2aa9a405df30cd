"""The linear wikitext converter on constructs the reader meets, and the process pools of both
corpus stages (same output for any number of workers)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from instruct_global.languages import LANGUAGES
from instruct_global.lib.corpus import wikipedia
from instruct_global.lib.corpus.cleaning import CleaningConfig, clean_corpus
from instruct_global.lib.corpus.parallel import resolve_workers
from instruct_global.lib.corpus.wikipedia import DumpError, DumpStats, iter_dump_articles, wikitext_to_text
from instruct_global_tests.conftest import REPO_ROOT
from instruct_global_tests.fixtures.corpus_server import dump_article_count, write_wiki_dump

PREFIXES = {"file", "category", "fáìlì", "ẹ̀ka"}


@pytest.mark.parametrize(
    ("wikitext", "expected"),
    [
        ("A {{outer|{{inner|x}}|y=[[Z]]}} B.", "A B."),
        ("A {{{1|default}}} B.", "A B."),
        ("A {{{{nested}}}} B.", "A B."),
        ("A {{unclosed B.", "A {{unclosed B."),
        ("Ọ̀rọ̀ <nowiki>{{kò}} [[ṣe]]</nowiki> ni.", "Ọ̀rọ̀ {{kò}} [[ṣe]] ni."),
        ("[[Fáìlì:a.jpg|thumb|Àwòrán [[Ìbàdàn]] kan]]Ìlú.", "Ìlú."),
        ("[[Ìbàdàn (ìlú)|Ìbàdàn]]s ni.", "Ìbàdàns ni."),
        ("[[:Ẹ̀ka:Ìlú]] wà.", ":Ẹ̀ka:Ìlú wà."),
        ("Wo [https://example.org ojú òpó] àti [https://example.org/x].", "Wo ojú òpó àti."),
        ("Ọdún&nbsp;1900 &amp; 1901.", "Ọdún 1900 & 1901."),
        ("'''''Gidi''''' ni.", "Gidi ni."),
        ("A<!-- hidden --> B.<!-- unclosed", "A B."),
        ("* Kìíní\n# Kejì\n: Kẹta\n----\nÌparí.", "Kìíní\nKejì\nKẹta\nÌparí."),
        ('A<ref group="n">x</ref><references group="n" /> B<math>x^2</math>.', "A B."),
        ("{|\n|\n{|\n| inner\n|}\n|}\nLẹ́yìn.", "Lẹ́yìn."),
        ("== [[Ìtàn]] àkọ́kọ́ ==\nỌ̀rọ̀.", "Ìtàn àkọ́kọ́\nỌ̀rọ̀."),
        ("<span style=\"x\">Pupa</span> <small>kékeré</small>.", "Pupa kékeré."),
    ],
)
def test_wikitext_constructs(wikitext: str, expected: str) -> None:
    assert wikitext_to_text(wikitext, PREFIXES) == expected


def test_long_page_converts(tmp_path: Path) -> None:
    # 300 KB of wikitext with deep template nesting and many links: one linear pass
    unit = "Ọ̀rọ̀ [[Ìbàdàn|ìlú]] {{a|{{b|{{c}}}}}}<ref>{{cite|x}}</ref> ni. "
    text = wikitext_to_text(unit * 5000, PREFIXES)
    assert text.startswith("Ọ̀rọ̀ ìlú ni. Ọ̀rọ̀ ìlú ni.") and "{{" not in text and "<ref" not in text


def test_resolve_workers() -> None:
    assert resolve_workers(3) == 3 and resolve_workers(0) >= 1
    with pytest.raises(ValueError):
        resolve_workers(-1)


@pytest.mark.slow
def test_dump_reader_pool_gives_the_same_rows_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_wiki_dump(tmp_path / "yowiki-latest-pages-articles.xml.bz2")
    monkeypatch.setattr(wikipedia, "_BATCH_BYTES", 200)  # many small batches: the pool really runs
    serial_stats, pool_stats = DumpStats(), DumpStats()
    serial = list(iter_dump_articles(path, "yor", stats=serial_stats))
    pooled = list(iter_dump_articles(path, "yor", stats=pool_stats, workers=2))
    key = ["doc_id", "title", "text", "url", "page_id"]
    assert [[r[k] for k in key] for r in pooled] == [[r[k] for k in key] for r in serial]
    assert pool_stats.as_dict() == serial_stats.as_dict()
    assert len(list(iter_dump_articles(path, "yor", max_articles=2, workers=2))) == 2

    cut = write_wiki_dump(tmp_path / "cut.xml.bz2", truncate="bz2")
    rows: list[dict[str, object]] = []
    with pytest.raises(DumpError) as caught:
        for row in iter_dump_articles(cut, "yor", workers=2):
            rows.append(row)
    assert len(rows) == dump_article_count("yo") - 1 == caught.value.articles_read


@pytest.mark.slow
def test_cleaning_pool_gives_the_same_result() -> None:
    raw = [json.loads(line) for line in (REPO_ROOT / "data" / "samples" / "documents_hau.jsonl").read_text("utf-8").splitlines()]
    docs = pd.DataFrame(raw)
    serial = clean_corpus(docs, LANGUAGES["hau"], CleaningConfig(max_tokens=128))
    pooled = clean_corpus(docs, LANGUAGES["hau"], CleaningConfig(max_tokens=128, workers=2, batch_size=3))
    assert pooled.stats["workers"] == 2
    pd.testing.assert_frame_equal(pooled.clean, serial.clean)
    pd.testing.assert_frame_equal(pooled.rejects, serial.rejects)
    assert pooled.drop_counts == serial.drop_counts


def test_unpicklable_counter_runs_in_process() -> None:
    raw = [json.loads(line) for line in (REPO_ROOT / "data" / "samples" / "documents_hau.jsonl").read_text("utf-8").splitlines()]
    result = clean_corpus(pd.DataFrame(raw), LANGUAGES["hau"],
                          CleaningConfig(token_counter=lambda s: len(s.split()), workers=2, batch_size=3))
    assert result.stats["workers"] == 1 and len(result.clean) > 0
