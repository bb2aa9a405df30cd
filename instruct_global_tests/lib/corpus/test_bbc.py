"""BBC services: sitemap/front-page discovery, polite fetching and main-text extraction."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import pytest

from instruct_global.lib.common.http_fetch import PoliteFetcher, build_user_agent, make_doc_id
from instruct_global.lib.corpus.bbc import (
    LICENSE,
    BbcScraper,
    article_path_pattern,
    extract_article,
    parse_sitemap,
)
from instruct_global_tests.fixtures.corpus_server import (
    BBC_ARTICLES,
    BOILERPLATE,
    LATIN1_ARTICLE,
    MISSING_ARTICLE,
    ROBOTS_BLOCKED_ARTICLE,
    CorpusServer,
    render_article,
)

DOC_KEYS = {"doc_id", "lang", "source", "url", "title", "published", "text", "license", "retrieved_at"}


@pytest.fixture
def server() -> Iterator[CorpusServer]:
    with CorpusServer() as srv:
        yield srv


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make_fetcher(sleeps: list[float], **overrides: object) -> PoliteFetcher:
    options: dict[str, object] = {
        "min_interval_seconds": 0.0,
        "timeout_seconds": 2.0,
        "max_retries": 2,
        "backoff_base_seconds": 0.5,
        "max_backoff_seconds": 2.0,
        "sleep": sleeps.append,
    }
    options.update(overrides)
    return PoliteFetcher(build_user_agent("tests@example.org"), **options)  # type: ignore[arg-type]


@pytest.fixture
def fetcher(sleeps: list[float]) -> Iterator[PoliteFetcher]:
    with make_fetcher(sleeps) as f:
        yield f


def scraper(fetcher: PoliteFetcher, server: CorpusServer, service: str, lang: str) -> BbcScraper:
    return BbcScraper(fetcher, service, lang, base_url=server.base_url)


def article_path(service: str, index: int) -> str:
    return f"/{service}/articles/{BBC_ARTICLES[service][index].article_id}"


# -- discovery ----------------------------------------------------------------------------------------


def test_sitemap_index_nested_gzip_and_robots_sitemaps(server: CorpusServer, fetcher: PoliteFetcher) -> None:
    bbc = scraper(fetcher, server, "yoruba", "yor")
    urls = list(bbc.iter_article_urls())
    expected_paths = [
        article_path("yoruba", 0),
        ROBOTS_BLOCKED_ARTICLE,  # listed; the fetch step skips it
        article_path("yoruba", 1),
        article_path("yoruba", 2),
        MISSING_ARTICLE,
    ]
    assert urls == [server.url(p) for p in expected_paths]  # topics page filtered, duplicates dropped
    # index, urlset, nested index, gzipped urlset, and the sitemap announced in robots.txt
    assert bbc.stats.sitemaps_fetched == 5 and not bbc.stats.used_front_page
    assert server.count("/yoruba/sitemaps/news.xml") == 1


def test_front_page_fallback_when_there_is_no_sitemap(server: CorpusServer, fetcher: PoliteFetcher) -> None:
    bbc = scraper(fetcher, server, "hausa", "hau")
    urls = list(bbc.iter_article_urls())
    assert bbc.stats.used_front_page
    assert bbc.stats.sitemap_errors == {"http_404": 1}
    assert urls == [server.url(article_path("hausa", i)) for i in range(2)] + [server.url(LATIN1_ARTICLE)]
    assert not any("example.org" in u or "/topics/" in u for u in urls)


@pytest.mark.parametrize(
    ("path", "ok"),
    [
        ("/yoruba/articles/c4n3x1x2x5eo", True),
        ("/yoruba/articles/c4n3x1x2x5eo/", True),
        ("/yoruba/afrika-55283940", True),
        ("/yoruba/topics/c0sport00t", False),
        ("/hausa/articles/c4n3x1x2x5eo", False),
        ("/yoruba/articles/", False),
        ("/yoruba", False),
    ],
)
def test_article_path_pattern(path: str, ok: bool) -> None:
    assert bool(article_path_pattern("yoruba").match(path)) is ok


# -- articles --------------------------------------------------------------------------------------------


def test_yoruba_articles_are_main_text_only(server: CorpusServer, fetcher: PoliteFetcher) -> None:
    bbc = scraper(fetcher, server, "yoruba", "yor")
    rows = list(bbc.iter_articles())
    assert len(rows) == 3
    for row, article in zip(rows, BBC_ARTICLES["yoruba"], strict=True):
        assert set(row) >= DOC_KEYS
        assert row["source"] == "bbc" and row["lang"] == "yor" and row["license"] == LICENSE
        assert row["url"] == server.url(f"/yoruba/articles/{article.article_id}")
        assert row["doc_id"] == make_doc_id("bbc", row["url"])
        assert row["title"] == article.title
        assert row["published"] == article.published
        assert row["text"] == "\n".join(article.paragraphs)
        for name, chrome in BOILERPLATE.items():
            assert chrome not in row["text"], name
    # robots-disallowed: counted as skipped, never requested; a missing page: counted as an error
    assert bbc.stats.skipped == {"robots_disallowed": 1}
    assert server.count(ROBOTS_BLOCKED_ARTICLE) == 0
    assert bbc.stats.errors == {"http_404": 1}
    assert bbc.stats.as_dict()["yielded"] == 3


def test_hausa_articles_survive_latin1_bytes(server: CorpusServer, fetcher: PoliteFetcher) -> None:
    rows = list(scraper(fetcher, server, "hausa", "hau").iter_articles())
    assert len(rows) == 3
    latin1 = next(r for r in rows if r["url"].endswith(LATIN1_ARTICLE))
    assert "shagon caf\ufffd da ke kusa" in latin1["text"]
    assert fetcher.stats.decode_errors == 1
    assert all(r["lang"] == "hau" for r in rows)


def test_service_without_documents_gives_zero_rows(server: CorpusServer, fetcher: PoliteFetcher) -> None:
    bbc = scraper(fetcher, server, "igbo", "ibo")
    assert list(bbc.iter_articles()) == []
    assert bbc.stats.used_front_page and not bbc.stats.errors and not bbc.stats.skipped


def test_unknown_service_gives_zero_rows(server: CorpusServer, fetcher: PoliteFetcher) -> None:
    bbc = scraper(fetcher, server, "pidgin", "pcm")
    assert list(bbc.iter_articles()) == []
    assert bbc.stats.errors == {"front_page_http_404": 1}


def test_max_articles_stops_fetching(server: CorpusServer, fetcher: PoliteFetcher) -> None:
    rows = list(scraper(fetcher, server, "yoruba", "yor").iter_articles(max_articles=1))
    assert len(rows) == 1
    assert server.count(article_path("yoruba", 1)) == 0
    assert server.count("/yoruba/sitemaps/archive.xml") == 0  # discovery is lazy too


def test_failures_per_article_are_counted_not_fatal(server: CorpusServer, sleeps: list[float]) -> None:
    server.inject(article_path("yoruba", 0), times=100, status=500)
    server.inject(article_path("yoruba", 1), times=100, delay=0.5)
    with make_fetcher(sleeps, timeout_seconds=0.15, max_retries=1) as fetcher:
        bbc = scraper(fetcher, server, "yoruba", "yor")
        rows = list(bbc.iter_articles())
    assert [r["title"] for r in rows] == [BBC_ARTICLES["yoruba"][2].title]
    assert bbc.stats.errors == {"http_500": 1, "timeout": 1, "http_404": 1}
    assert server.count(article_path("yoruba", 0)) == 2  # retried once, then given up


def test_429_on_an_article_honours_retry_after(
    server: CorpusServer, fetcher: PoliteFetcher, sleeps: list[float]
) -> None:
    server.inject(article_path("hausa", 0), times=1, status=429, headers={"Retry-After": "7"})
    rows = list(scraper(fetcher, server, "hausa", "hau").iter_articles())
    assert len(rows) == 3 and sleeps == [7.0]
    assert fetcher.stats.throttled == 1


def test_oversized_and_non_html_articles_are_counted(server: CorpusServer, sleeps: list[float]) -> None:
    server.add_page("/yoruba/articles/c0pdffile0o", b"%PDF-1.4", content_type="application/pdf")
    with make_fetcher(sleeps, max_response_bytes=1500) as fetcher:
        bbc = scraper(fetcher, server, "yoruba", "yor")
        assert bbc.fetch_article(server.url("/yoruba/articles/c0pdffile0o")) is None
        assert bbc.fetch_article(server.url(article_path("yoruba", 0))) is None
    assert bbc.stats.errors == {"not_html": 1, "too_large": 1}


# -- pure pieces ------------------------------------------------------------------------------------------


def test_extract_article_drops_page_chrome() -> None:
    article = BBC_ARTICLES["hausa"][1]
    html = render_article("hausa", article, "https://www.bbc.com")
    extracted = extract_article(html, "https://www.bbc.com/hausa/articles/x")
    assert extracted is not None
    assert extracted.title == article.title and extracted.published == article.published
    assert extracted.text.splitlines() == list(article.paragraphs)
    for chrome in [*BOILERPLATE.values(), "Terms of Use", "Skip", "Fo lọ sí àkóónú", "Bẹ́ẹ̀ni, mo gbà"]:
        assert chrome not in extracted.text


def test_extract_article_accepts_xhtml_with_xml_declaration() -> None:
    article = BBC_ARTICLES["yoruba"][0]
    html = '<?xml version="1.0" encoding="utf-8"?>\n' + render_article(
        "yoruba", article, "https://www.bbc.com"
    )
    extracted = extract_article(html)
    assert extracted is not None and extracted.text.splitlines() == list(article.paragraphs)


def test_extract_article_repairs_mojibake_before_trafilatura_drops_its_invisible_characters() -> None:
    # UTF-8 read as Windows-1252: "í" becomes "Ã" + soft hyphen, "à" "Ã" + no-break space, the
    # combining acute of "ẹ́" "Ì" + U+0081, "ọ" "á»" + U+008D. trafilatura drops those invisible
    # characters, after which ftfy can no longer undo the mojibake; so it runs first.
    import ftfy.bad_codecs  # noqa: F401  (registers "sloppy-windows-1252")

    title = "Ìkíni jẹ́ apá pàtàkì"
    paragraphs = [
        "Ìkíni jẹ́ apá pàtàkì nínú àṣà Yorùbá. Ọmọdé gbọ́dọ̀ kí àgbà ní àárọ̀, ní ọ̀sán àti ní alẹ́.",
        "Orísìírísìí ìkíni ló wà fún gbogbo ipò ayé, láti ìbí ọmọ dé ọjọ́ ìgbéyàwó.",
    ]

    def garble(text: str) -> str:
        return text.encode("utf-8").decode("sloppy-windows-1252")

    assert all(ch in garble("".join(paragraphs)) for ch in "\u00ad\u00a0\u0081\u008d")
    body = "".join(f"<p>{garble(p)}</p>" for p in paragraphs)
    html = f"<html><body><main><article><h1>{garble(title)}</h1>{body}</article></main></body></html>"
    extracted = extract_article(html, "https://www.bbc.com/yoruba/articles/c0sample0")
    assert extracted is not None
    assert extracted.title == title
    assert extracted.text.splitlines() == paragraphs


def test_extract_article_leaves_correct_text_alone() -> None:
    # Text ftfy does not call bad ("Ã" in a name, a Windows-1252 lookalike pair) is not "repaired".
    paragraphs = ["São Tomé da Ânsia é uma vila.", "O rio passa por lá, e a ponte cruza-o."]
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    extracted = extract_article(f"<html><body><article><h1>Vila</h1>{body}</article></body></html>")
    assert extracted is not None and extracted.text.splitlines() == paragraphs


@pytest.mark.parametrize(
    "html",
    ["", "   ", "<html><body><header><nav><a href='/'>Home</a></nav></header></body></html>"],
)
def test_extract_article_without_text_is_none(html: str) -> None:
    assert extract_article(html, "https://www.bbc.com/yoruba/articles/x") is None


def test_parse_sitemap_variants() -> None:
    urlset = (
        b'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        b"<url><loc> https://www.bbc.com/yoruba/articles/c1 </loc></url></urlset>"
    )
    assert parse_sitemap(urlset, 10_000) == ("urlset", ["https://www.bbc.com/yoruba/articles/c1"])
    assert parse_sitemap(gzip.compress(urlset), 10_000)[1] == ["https://www.bbc.com/yoruba/articles/c1"]
    with pytest.raises(ValueError):
        parse_sitemap(b"<html>not a sitemap", 10_000)
    with pytest.raises(ValueError, match="not a sitemap"):
        parse_sitemap(b"<rss><channel/></rss>", 10_000)
    with pytest.raises(ValueError, match="size limit"):  # a gzip bomb stops at the limit
        parse_sitemap(gzip.compress(b" " * 50_000 + urlset), 10_000)


def test_parse_sitemap_does_not_resolve_external_entities() -> None:
    hostile = (
        b'<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>&x;</loc></url></urlset>'
    )
    kind, locs = parse_sitemap(hostile, 10_000)
    assert kind == "urlset" and not any("root:" in loc for loc in locs)
