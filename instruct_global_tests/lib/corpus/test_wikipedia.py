"""Wikipedia: the MediaWiki API client against a local API server, and the XML dump reader."""

from __future__ import annotations

import bz2
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from instruct_global.lib.common.http_fetch import PoliteFetcher, build_user_agent, make_doc_id
from instruct_global.lib.corpus.wikipedia import (
    DumpError,
    DumpStats,
    WikipediaApiClient,
    WikipediaApiError,
    article_url,
    iter_api_articles,
    iter_dump_articles,
    wikitext_to_text,
)
from instruct_global_tests.fixtures.corpus_server import (
    RICH_ARTICLE_FORBIDDEN,
    RICH_ARTICLE_TITLE,
    WIKI_ARTICLES,
    CorpusServer,
    dump_article_count,
    write_wiki_dump,
)

DOC_KEYS = {"doc_id", "lang", "source", "url", "title", "text", "license", "retrieved_at"}


@pytest.fixture
def server() -> Iterator[CorpusServer]:
    with CorpusServer(extract_limit=2) as srv:  # 2 extracts per request: every batch needs excontinue
        yield srv


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def fetcher(sleeps: list[float]) -> Iterator[PoliteFetcher]:
    with PoliteFetcher(
        build_user_agent("tests@example.org"),
        min_interval_seconds=0.0,
        timeout_seconds=2.0,
        max_retries=2,
        backoff_base_seconds=0.5,
        max_backoff_seconds=2.0,
        sleep=sleeps.append,
    ) as f:
        yield f


def client(
    fetcher: PoliteFetcher, server: CorpusServer, wiki: str, lang: str, **kw: object
) -> WikipediaApiClient:
    return WikipediaApiClient(fetcher, wiki, lang, api_url=server.api_url_template, **kw)  # type: ignore[arg-type]


def api_queries(server: CorpusServer, wiki: str) -> list[dict[str, str]]:
    return [
        {k: v[-1] for k, v in parse_qs(r["query"]).items()}
        for r in server.requests
        if r["path"] == f"/{wiki}/w/api.php"
    ]


# -- API mode -------------------------------------------------------------------------------------------


def test_api_lists_every_article_with_continuation(server: CorpusServer, fetcher: PoliteFetcher) -> None:
    api = client(fetcher, server, "yo", "yor", batch_size=3)
    rows = list(api.iter_articles())
    expected = dict(WIKI_ARTICLES["yo"])
    assert [r["title"] for r in rows] == ["Àgbàdo", "Èdè Yorùbá", "Ìbàdàn", "Òṣùmàrè", "Ọ̀sun"]
    for row in rows:
        assert set(row) >= DOC_KEYS
        assert row["lang"] == "yor" and row["source"] == "wikipedia" and row["license"] == "CC BY-SA 4.0"
        assert row["text"] == expected[row["title"]]
        # fullurl came with prop=info in the first response of the batch, even for pages whose
        # extract only arrived after excontinue
        assert row["url"] == article_url("yo", row["title"])
        assert row["doc_id"] == make_doc_id("wikipedia", row["url"])
        assert datetime.fromisoformat(row["retrieved_at"]).utcoffset().total_seconds() == 0
    # batch 1 (3 pages): 2 requests (extracts 2 + 1), batch 2 (2 pages): 1 request
    queries = api_queries(server, "yo")
    assert len(queries) == 3 == api.stats.api_requests
    assert "excontinue" not in queries[0] and queries[1]["excontinue"] == "2"
    assert queries[2]["gapcontinue"] == "Òṣùmàrè" and "excontinue" not in queries[2]
    for q in queries:  # the query the brief asks for, on every request
        assert q["maxlag"] == "5" and q["formatversion"] == "2" and q["exlimit"] == "max"
        assert q["prop"] == "extracts|info" and q["inprop"] == "url" and q["gapfilterredir"] == "nonredirects"
    assert api.stats.warnings  # the exlimit warning is kept for metadata


def test_api_other_languages_and_wrapper(server: CorpusServer, fetcher: PoliteFetcher) -> None:
    hausa = list(iter_api_articles(fetcher, "ha", "hau", api_url=server.api_url_template))
    swahili = list(iter_api_articles(fetcher, "sw", "swh", api_url=server.api_url_template))
    assert {r["title"] for r in hausa} == {t for t, _ in WIKI_ARTICLES["ha"]}
    assert {r["lang"] for r in hausa} == {"hau"} and {r["lang"] for r in swahili} == {"swh"}
    assert "Kilimanjaro" in " ".join(r["text"] for r in swahili)


def test_api_stops_at_max_articles(server: CorpusServer, fetcher: PoliteFetcher) -> None:
    rows = list(client(fetcher, server, "yo", "yor").iter_articles(max_articles=2))
    assert len(rows) == 2
    queries = api_queries(server, "yo")
    assert len(queries) == 1 and queries[0]["gaplimit"] == "2"


def test_api_empty_wiki_gives_zero_rows(server: CorpusServer, fetcher: PoliteFetcher) -> None:
    api = client(fetcher, server, "ig", "ibo")
    assert list(api.iter_articles()) == []
    assert api.stats.api_requests == 1


def test_api_maxlag_is_waited_out(server: CorpusServer, fetcher: PoliteFetcher, sleeps: list[float]) -> None:
    server.api_error("yo", "maxlag", times=2, retry_after="5")
    api = client(fetcher, server, "yo", "yor")
    assert len(list(api.iter_articles())) == 5
    assert sleeps == [5.0, 5.0]
    assert api.stats.throttle_waits == 2
    assert fetcher.stats.throttled == 2 and fetcher.stats.retries == 2


def test_api_ratelimited_without_header_uses_backoff(
    server: CorpusServer, fetcher: PoliteFetcher, sleeps: list[float]
) -> None:
    server.api_error("ha", "ratelimited", times=1, retry_after=None)
    assert len(list(client(fetcher, server, "ha", "hau").iter_articles())) == 3
    assert len(sleeps) == 1 and 0.25 <= sleeps[0] <= 0.5


def test_api_maxlag_forever_is_a_clear_error(server: CorpusServer, fetcher: PoliteFetcher) -> None:
    server.api_error("yo", "maxlag", times=100)
    api = client(fetcher, server, "yo", "yor", max_api_retries=3)
    with pytest.raises(WikipediaApiError) as caught:
        list(api.iter_articles())
    assert caught.value.code == "maxlag"
    assert server.api_url("yo") in str(caught.value)
    assert api.stats.api_requests == 4


def test_api_http_429_is_retried_by_the_fetcher(
    server: CorpusServer, fetcher: PoliteFetcher, sleeps: list[float]
) -> None:
    server.inject("/yo/w/api.php", times=1, status=429, headers={"Retry-After": "2"})
    assert len(list(client(fetcher, server, "yo", "yor").iter_articles())) == 5
    assert sleeps == [2.0]


def test_api_other_errors_raise(server: CorpusServer, fetcher: PoliteFetcher) -> None:
    class MissingExplaintext(WikipediaApiClient):
        def base_params(self, limit: int) -> dict[str, object]:
            params = super().base_params(limit)
            del params["explaintext"]
            return params

    api = MissingExplaintext(fetcher, "yo", "yor", api_url=server.api_url_template)
    with pytest.raises(WikipediaApiError, match="badvalue"):
        list(api.iter_articles())


def test_api_invalid_json_is_retried_then_a_clear_error(server: CorpusServer, fetcher: PoliteFetcher) -> None:
    # once: a cache's error page in a 200 is retried and the pull completes
    server.inject("/yo/w/api.php", times=1, status=200, body=b"<html>Wikimedia Error</html>")
    assert len(list(client(fetcher, server, "yo", "yor").iter_articles())) == len(WIKI_ARTICLES["yo"])
    # for good: a clear error after the retries
    server.inject("/yo/w/api.php", times=100, status=200, body=b"<html>Wikimedia Error</html>")
    api = WikipediaApiClient(fetcher, "yo", "yor", api_url=server.api_url_template, max_api_retries=2)
    with pytest.raises(WikipediaApiError, match="invalid_json"):
        list(api.iter_articles())


def test_api_is_not_blocked_by_robots_txt(fetcher: PoliteFetcher) -> None:
    # Wikipedia's robots.txt disallows /w/ for crawlers; the API is governed by API:Etiquette instead.
    with CorpusServer(robots_txt="User-agent: *\nDisallow: /yo/w/\n") as srv:
        rows = list(WikipediaApiClient(fetcher, "yo", "yor", api_url=srv.api_url_template).iter_articles())
    assert len(rows) == 5


# -- dump mode ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("export_version", ["0.10", "0.11"])
def test_dump_yields_articles_only(tmp_path: Path, export_version: str) -> None:
    path = write_wiki_dump(tmp_path / "yowiki-latest-pages-articles.xml.bz2", export_version=export_version)
    stats = DumpStats()
    rows = list(iter_dump_articles(path, "yor", stats=stats))
    titles = [r["title"] for r in rows]
    assert len(rows) == dump_article_count("yo") == 6
    assert "Ibadan" not in titles  # redirect
    assert not any(t.startswith("Ọ̀rọ̀:") for t in titles)  # Talk namespace
    assert "Àpótí òfìfo" not in titles  # nothing left after cleaning
    assert stats.as_dict() == {
        "pages_seen": 9,
        "redirects": 1,
        "other_namespace": 1,
        "empty_text": 1,
        "yielded": 6,
    }
    for row in rows:
        assert set(row) >= DOC_KEYS
        assert row["lang"] == "yor" and row["source"] == "wikipedia" and row["wiki"] == "yo"
        assert row["url"].startswith("https://yo.wikipedia.org/wiki/")
    plain = {r["title"]: r["text"] for r in rows}
    assert plain["Ìbàdàn"] == dict(WIKI_ARTICLES["yo"])["Ìbàdàn"]


def test_dump_rich_article_is_plain_text(tmp_path: Path) -> None:
    path = write_wiki_dump(tmp_path / "yowiki-latest-pages-articles.xml.bz2")
    rich = next(r for r in iter_dump_articles(path, "yor") if r["title"] == RICH_ARTICLE_TITLE)
    text = rich["text"]
    assert text.startswith("Ìbàdàn jẹ́ olú-ìlú ìpínlẹ̀ Ọ̀yọ́ ní orílẹ̀-èdè Nàìjíríà.")
    assert "Ìtàn\nWọ́n tẹ ìlú náà dó ní ọ̀rúndún kọkàndínlógún. Àwọn jagunjagun ló kọ́kọ́ gbé ibẹ̀." in text
    for forbidden in RICH_ARTICLE_FORBIDDEN:
        assert forbidden not in text, forbidden
    assert rich["url"] == "https://yo.wikipedia.org/wiki/%C3%8Cl%C3%BA_%C3%8Cb%C3%A0d%C3%A0n"


def test_dump_and_api_agree_on_doc_ids(tmp_path: Path, server: CorpusServer, fetcher: PoliteFetcher) -> None:
    path = write_wiki_dump(tmp_path / "yowiki-latest-pages-articles.xml.bz2")
    from_dump = {r["title"]: r["doc_id"] for r in iter_dump_articles(path, "yor")}
    from_api = {r["title"]: r["doc_id"] for r in client(fetcher, server, "yo", "yor").iter_articles()}
    assert from_api.items() <= from_dump.items()


def test_dump_max_articles(tmp_path: Path) -> None:
    path = write_wiki_dump(tmp_path / "hawiki-latest-pages-articles.xml.bz2", wiki="ha")
    rows = list(iter_dump_articles(path, "hau", max_articles=2))
    assert len(rows) == 2 and rows[0]["url"].startswith("https://ha.wikipedia.org/wiki/")


@pytest.mark.parametrize("how", ["bz2", "xml"])
def test_truncated_dump_yields_what_it_read_then_raises(tmp_path: Path, how: str) -> None:
    path = write_wiki_dump(tmp_path / "yowiki-latest-pages-articles.xml.bz2", truncate=how)  # type: ignore[arg-type]
    rows: list[dict[str, object]] = []
    with pytest.raises(DumpError) as caught:
        for row in iter_dump_articles(path, "yor"):
            rows.append(row)
    assert len(rows) == dump_article_count("yo") - 1  # every page before the cut
    assert caught.value.articles_read == len(rows)
    assert str(path) in str(caught.value) and f"after {len(rows)} articles" in str(caught.value)


def test_not_a_bz2_file_is_a_dump_error(tmp_path: Path) -> None:
    path = tmp_path / "yowiki-latest-pages-articles.xml.bz2"
    path.write_bytes(b"<mediawiki>not compressed</mediawiki>")
    with pytest.raises(DumpError, match="after 0 articles"):
        list(iter_dump_articles(path, "yor"))


def test_single_stream_dump_reads_too(tmp_path: Path) -> None:
    multi = write_wiki_dump(tmp_path / "multi.xml.bz2")
    single = tmp_path / "single.xml.bz2"
    single.write_bytes(bz2.compress(bz2.decompress(multi.read_bytes())))
    assert [r["doc_id"] for r in iter_dump_articles(single, "yor")] == [
        r["doc_id"] for r in iter_dump_articles(multi, "yor")
    ]


# -- wikitext ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wikitext", "expected"),
    [
        ("'''Kano''' birni ne.{{Citation needed}}", "Kano birni ne."),
        ("A<ref>{{cite book|title=X}}</ref> B<ref name=y/>.", "A B."),
        ("[[Fayil:Kano.jpg|thumb|Hoto]]Kano.", "Kano."),
        ("Text.\n[[Rukuni:Birane]]", "Text."),
        ("[[Nijar|Jamhuriyar Nijar]] ƙasa ce.", "Jamhuriyar Nijar ƙasa ce."),
        ("Bayani.\n[[en:Kano]]\n[[fr:Kano]]", "Bayani."),
        ("[[wikt:gari|gari]] babba.", "gari babba."),
        ("{| class=wikitable\n| 1 || 2\n|}\nBayan tebur.", "Bayan tebur."),
        ("== Tarihi ==\nAn kafa.\n== Manazarta ==\n{{Reflist}}", "Tarihi\nAn kafa."),
        ("<gallery>\nA.jpg|a\n</gallery>Kawai.", "Kawai."),
        ("", ""),
        ("{{Stub}}", ""),
    ],
)
def test_wikitext_to_text(wikitext: str, expected: str) -> None:
    assert wikitext_to_text(wikitext, {"fayil", "rukuni", "file", "category"}) == expected


def test_wikitext_localised_prefix_in_other_normal_form() -> None:
    decomposed = "[[E\u0323\u0300ka:Ìlú]]Ọ̀rọ̀."  # Ẹ̀ka typed with combining marks
    assert wikitext_to_text(decomposed, {"ẹ̀ka"}) == "Ọ̀rọ̀."
