"""BBC News language services (bbc.com/yoruba, /hausa, ...) as document rows.

Article URLs come from the service's sitemaps (an index, nested indexes, plain or gzipped urlsets,
plus ``Sitemap:`` lines of robots.txt under the service); when they give nothing, from the links of
the service front page. Each article is fetched politely and reduced to its main text with
trafilatura after the page chrome (header, nav, related/top-stories blocks, cookie banner, footer)
is cut away. A failing article is counted by reason and skipped, never fatal.

Rows: doc_id, lang, source="bbc", url, title, published, text, license, retrieved_at, service.
Pure Python; no dagster import.
"""

from __future__ import annotations

import gzip
import io
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import ftfy
import lxml.html
import pyarrow as pa
import trafilatura
from lxml import etree

from instruct_global.lib.common.http_fetch import (
    DisallowedByRobots,
    FetchError,
    PoliteFetcher,
    RobotsUnreachable,
    make_doc_id,
    utc_now_iso,
)
from instruct_global.lib.corpus.bbc_labels import label_matcher
from instruct_global.lib.corpus.normalise import looks_bad
from instruct_global.lib.corpus.source_status import SourceUnavailableError

# Columns this source's rows add to the documents contract, as Parquet types.
BBC_EXTRA_COLUMNS = {"published": pa.string(), "service": pa.string()}

SOURCE = "bbc"
LICENSE = "© BBC; copyrighted news text collected for non-commercial research use, not for redistribution"
DEFAULT_BASE_URL = "https://www.bbc.com"
DEFAULT_SITEMAP_PATHS = ("/{service}/sitemap.xml",)
MAX_SITEMAP_DEPTH = 3
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")

# Page chrome that is never article text; removed before extraction so trafilatura cannot keep it.
_CHROME_XPATH = " | ".join(
    (
        "//header", "//nav", "//footer", "//aside", "//script", "//style", "//noscript", "//form",
        "//*[@role='banner' or @role='navigation' or @role='complementary' or @role='contentinfo']",
        "//*[contains(@data-e2e, 'related') or contains(@data-e2e, 'top-stories')"
        " or contains(@data-e2e, 'most-read') or contains(@data-e2e, 'consent')"
        " or contains(@data-e2e, 'header') or contains(@data-e2e, 'footer')]",
        "//section[contains(@aria-labelledby, 'related') or contains(@aria-labelledby, 'top-stories')"
        " or contains(@aria-labelledby, 'Most-Read') or contains(@aria-labelledby, 'most-read')]",
        "//*[contains(translate(@id, 'COKIESNT', 'cokiesnt'), 'cookie')"
        " or contains(translate(@id, 'COKIESNT', 'cokiesnt'), 'consent')"
        " or contains(translate(@class, 'COKIESNT', 'cokiesnt'), 'cookie')"
        " or contains(translate(@class, 'COKIESNT', 'cokiesnt'), 'consent')]",
    )
)  # fmt: skip


@dataclass
class BbcStats:
    sitemaps_fetched: int = 0
    sitemap_errors: Counter[str] = field(default_factory=Counter)
    urls_discovered: int = 0
    used_front_page: bool = False
    articles_attempted: int = 0
    yielded: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # robots_disallowed, ...
    errors: Counter[str] = field(default_factory=Counter)  # http_404, timeout, no_text, ...
    # Every request (sitemap, front page, article) that got an answer / failed for good, so a run
    # where nothing could be fetched is told apart from a service that has no articles.
    responses_ok: int = 0
    request_failures: Counter[str] = field(default_factory=Counter)
    article_fetch_failures: int = 0
    article_fetch_ok: int = 0
    furniture_removed: Counter[str] = field(default_factory=Counter)  # figure, byline, link_list ...
    last_error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "sitemaps_fetched": self.sitemaps_fetched,
            "sitemap_errors": dict(self.sitemap_errors),
            "urls_discovered": self.urls_discovered,
            "used_front_page": self.used_front_page,
            "articles_attempted": self.articles_attempted,
            "yielded": self.yielded,
            "skipped": dict(self.skipped),
            "errors": dict(self.errors),
            "responses_ok": self.responses_ok,
            "request_failures": dict(self.request_failures),
            "furniture_removed": dict(self.furniture_removed),
        }

    def note_failure(self, err: FetchError) -> None:
        self.request_failures[err.reason] += 1
        self.last_error = str(err)

    def unavailable_reason(self) -> str | None:
        """Why the source yielded nothing because requests failed; None when it did not fail.

        Nothing answered at all, or every article page that was tried failed to fetch. A service
        whose sitemaps answer but list no articles is not a failure (it is empty).
        """
        if self.yielded:
            return None
        failed = sum(self.request_failures.values())
        if failed and self.responses_ok == 0:
            return "no request got an answer"
        if self.article_fetch_failures and not self.article_fetch_ok:  # robots skips are not tries
            return f"all {self.article_fetch_failures} article pages failed to fetch"
        return None


# Page furniture inside the article: removed by structure before extraction, counted by kind.
_FURNITURE_XPATHS = {
    "figure": "//figure | //*[@role='figure'] | //figcaption | //picture",
    "byline": (
        "//*[contains(@aria-labelledby, 'byline') or contains(@data-testid, 'byline')"
        " or contains(@data-component, 'byline') or contains(@class, 'byline')]"
    ),
    "media_player": (
        "//video | //audio | //iframe | //*[contains(@data-e2e, 'media-player')"
        " or contains(@data-testid, 'media-player') or contains(@data-e2e, 'media-loader')"
        " or contains(@class, 'media-player') or contains(@data-e2e, 'social-embed')"
        " or contains(@data-testid, 'social-embed')]"
    ),
    "visually_hidden": (
        "//*[contains(@class, 'visually-hidden') or contains(@class, 'VisuallyHidden')"
        " or contains(@class, 'visuallyHidden') or contains(@class, 'sr-only')]"
    ),
    "related_block": (
        "//*[contains(@data-e2e, 'related') or contains(@aria-labelledby, 'related')"
        " or contains(@data-testid, 'related')]"
    ),
    "skip_link": "//a[starts-with(@href, '#end-of')] | //*[starts-with(@id, 'end-of')]",
}
_TIMESTAMP_MAX_WORDS = 10
_LEAD_IN_MAX_WORDS = 12


@dataclass
class ExtractedArticle:
    title: str
    published: str | None
    text: str
    furniture: dict[str, int] = field(default_factory=dict)  # removed blocks/lines by kind


def article_path_pattern(service: str) -> re.Pattern[str]:
    """Article paths of a service: /<service>/articles/<id> and the older /<service>/<slug>-<number>."""
    s = re.escape(service)
    return re.compile(rf"^/{s}/(?:articles/[a-z0-9]{{6,}}|[a-z0-9-]+-\d{{6,}})/?$")


class BbcScraper:
    def __init__(
        self,
        fetcher: PoliteFetcher,
        service: str,
        lang: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        sitemap_paths: tuple[str, ...] = DEFAULT_SITEMAP_PATHS,
        max_sitemaps: int = 200,
    ) -> None:
        self.fetcher = fetcher
        self.service = service
        self.lang = lang
        self.base_url = base_url.rstrip("/")
        self.sitemap_paths = sitemap_paths
        self.max_sitemaps = max_sitemaps
        self.host = urlsplit(self.base_url).netloc
        self.pattern = article_path_pattern(service)
        self.stats = BbcStats()

    # -- discovery ---------------------------------------------------------------------------------
    def iter_article_urls(self) -> Iterator[str]:
        """Article URLs, sitemap order, de-duplicated; front-page links only if sitemaps give none."""
        seen: set[str] = set()
        for url in self._sitemap_article_urls():
            if url not in seen:
                seen.add(url)
                self.stats.urls_discovered += 1
                yield url
        if seen:
            return
        self.stats.used_front_page = True
        for url in self._front_page_urls():
            if url not in seen:
                seen.add(url)
                self.stats.urls_discovered += 1
                yield url

    def _sitemap_roots(self) -> list[str]:
        roots = [self.base_url + p.format(service=self.service) for p in self.sitemap_paths]
        prefix = f"/{self.service}/"
        for url in self.fetcher.robots_sitemaps(self.base_url):
            if urlsplit(url).netloc == self.host and urlsplit(url).path.startswith(prefix):
                roots.append(url)
        return list(dict.fromkeys(roots))

    def _sitemap_article_urls(self) -> Iterator[str]:
        visited: set[str] = set()
        stack: list[tuple[str, int]] = [(u, 0) for u in reversed(self._sitemap_roots())]
        while stack:
            sitemap_url, depth = stack.pop()
            if sitemap_url in visited or len(visited) >= self.max_sitemaps:
                continue
            visited.add(sitemap_url)
            parsed = self._fetch_sitemap(sitemap_url)
            if parsed is None:
                continue
            kind, locs = parsed
            if kind == "sitemapindex":
                if depth + 1 > MAX_SITEMAP_DEPTH:
                    self.stats.sitemap_errors["too_deep"] += 1
                    continue
                # depth-first, in listed order
                stack.extend((loc, depth + 1) for loc in reversed(locs) if self._same_host(loc))
            else:
                for loc in locs:
                    article = self._article_url(loc)
                    if article is not None:
                        yield article

    def _fetch_sitemap(self, url: str) -> tuple[str, list[str]] | None:
        try:
            result = self.fetcher.get(url)
        except RobotsUnreachable as err:
            self.stats.sitemap_errors[err.reason] += 1
            self.stats.note_failure(err)
            return None
        except DisallowedByRobots:
            self.stats.sitemap_errors["robots_disallowed"] += 1
            return None
        except FetchError as err:
            self.stats.sitemap_errors[err.reason] += 1
            self.stats.note_failure(err)
            return None
        self.stats.responses_ok += 1
        self.stats.sitemaps_fetched += 1
        try:
            return parse_sitemap(result.content, self.fetcher.max_response_bytes)
        except ValueError:
            self.stats.sitemap_errors["invalid_xml"] += 1
            return None

    def _front_page_urls(self) -> list[str]:
        front = f"{self.base_url}/{self.service}"
        try:
            result = self.fetcher.get(front)
        except RobotsUnreachable as err:
            self.stats.errors[f"front_page_{err.reason}"] += 1
            self.stats.note_failure(err)
            return []
        except DisallowedByRobots:
            self.stats.skipped["robots_disallowed"] += 1
            return []
        except FetchError as err:
            self.stats.errors[f"front_page_{err.reason}"] += 1
            self.stats.note_failure(err)
            return []
        self.stats.responses_ok += 1
        try:
            tree = lxml.html.fromstring(result.text)
        except (etree.ParserError, ValueError):
            return []
        out = []
        for _, _, link, _ in tree.iterlinks():
            article = self._article_url(urljoin(result.url, link))
            if article is not None:
                out.append(article)
        return list(dict.fromkeys(out))

    def _same_host(self, url: str) -> bool:
        return urlsplit(url).netloc == self.host

    def _article_url(self, url: str) -> str | None:
        parts = urlsplit(url.strip())
        if parts.netloc != self.host or not self.pattern.match(parts.path):
            return None
        return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))

    # -- articles ---------------------------------------------------------------------------------
    def iter_articles(self, max_articles: int | None = None) -> Iterator[dict[str, Any]]:
        if max_articles is not None and max_articles <= 0:
            return
        for url in self.iter_article_urls():
            row = self.fetch_article(url)
            if row is None:
                continue
            yield row
            self.stats.yielded += 1
            if max_articles is not None and self.stats.yielded >= max_articles:
                return

    def raise_if_unavailable(self) -> None:
        """Raise ``SourceUnavailableError`` when nothing was yielded because requests failed."""
        why = self.stats.unavailable_reason()
        if why is not None:
            raise SourceUnavailableError(
                f"BBC {self.service} ({self.base_url})", why, self.stats.request_failures, self.stats.last_error
            )

    def fetch_article(self, url: str) -> dict[str, Any] | None:
        """One article row, or None with the reason counted in ``stats``."""
        self.stats.articles_attempted += 1
        try:
            result = self.fetcher.get(url)
        except RobotsUnreachable as err:
            self.stats.errors[err.reason] += 1
            self.stats.article_fetch_failures += 1
            self.stats.note_failure(err)
            return None
        except DisallowedByRobots:
            self.stats.skipped["robots_disallowed"] += 1
            return None
        except FetchError as err:
            self.stats.errors[err.reason] += 1
            self.stats.article_fetch_failures += 1
            self.stats.note_failure(err)
            return None
        self.stats.responses_ok += 1
        self.stats.article_fetch_ok += 1
        content_type = result.headers.get("content-type", "")
        if content_type and "html" not in content_type.lower():
            self.stats.errors["not_html"] += 1
            return None
        if _mostly_undecodable(result.text, result.decode_errors):
            self.stats.errors["undecodable"] += 1  # binary served as HTML, or a wrong charset
            return None
        try:
            article = extract_article(result.text, url, service=self.service)
        except Exception:  # a hostile page must not stop the run; counted instead
            self.stats.errors["extract_error"] += 1
            return None
        if article is None:
            self.stats.errors["no_text"] += 1
            return None
        self.stats.furniture_removed.update(article.furniture)
        # The listed URL, not a redirect target, so doc_id stays stable across runs.
        return article_row(url, article, self.service, self.lang)


def _mostly_undecodable(text: str, decode_errors: int, share: float = 0.05) -> bool:
    """Whether more than ``share`` of the characters are U+FFFD from bytes that did not decode."""
    return decode_errors > 0 and text.count("\ufffd") > share * max(len(text), 1)


def article_row(url: str, article: ExtractedArticle, service: str, lang: str) -> dict[str, Any]:
    """One row of the documents contract for an extracted article."""
    return {
        "doc_id": make_doc_id(SOURCE, url),
        "lang": lang,
        "source": SOURCE,
        "url": url,
        "title": article.title,
        "published": article.published,
        "text": article.text,
        "license": LICENSE,
        "retrieved_at": utc_now_iso(),
        "service": service,
    }


def parse_sitemap(content: bytes, max_bytes: int) -> tuple[str, list[str]]:
    """('sitemapindex' | 'urlset', locs) from sitemap XML, gzipped or not. ValueError if unreadable."""
    if content[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(content)) as gz:
                content = gz.read(max_bytes + 1)  # bounded: a gzip bomb stops at the size limit
        except (OSError, EOFError) as err:
            raise ValueError(f"bad gzip: {err}") from None
        if len(content) > max_bytes:
            raise ValueError("sitemap larger than the response size limit")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, recover=False)
    try:
        root = etree.fromstring(content, parser=parser)
    except etree.XMLSyntaxError as err:
        raise ValueError(str(err)) from None
    kind = etree.QName(root).localname
    if kind not in ("sitemapindex", "urlset"):
        raise ValueError(f"not a sitemap: <{kind}>")
    locs = [
        (el.text or "").strip()
        for el in root.iter()
        if isinstance(el.tag, str)
        and etree.QName(el).localname == "loc"
        and el.getparent() is not None
        and etree.QName(el.getparent()).localname in ("sitemap", "url")
    ]
    return kind, [loc for loc in locs if loc]


def repair_mojibake(tree: Any) -> int:
    """Repair mojibake in the page's text nodes in place; return how many nodes changed.

    It has to happen before trafilatura: its text normalisation drops soft hyphens, C1 controls
    and no-break spaces, which are exactly the characters UTF-8 read as Windows-1252 turns the
    bytes 0xAD, 0x81/0x8D/0x8F/0x90/0x9D and 0xA0 into, and without them ftfy can no longer undo
    the mojibake in clean_documents. Only ftfy's encoding steps run here; the rest of its
    fixes (entities, NFC ...) stay in the cleaner.
    """
    changed = 0
    for element in tree.iter():
        if not isinstance(element.tag, str):  # comments, processing instructions
            continue
        for attr in ("text", "tail"):
            value = getattr(element, attr)
            if value and looks_bad(value):
                fixed = ftfy.fix_encoding(value)
                if fixed != value:
                    setattr(element, attr, fixed)
                    changed += 1
    return changed


def _drop(element: Any) -> None:
    if element.getparent() is not None:
        element.drop_tree()


def _remove_structural_furniture(tree: Any, host: str | None, counts: Counter[str]) -> None:
    """Figures and captions, bylines, media players, hidden labels, related lists, timestamps."""
    root = tree.getroottree().getroot()
    for kind, xpath in _FURNITURE_XPATHS.items():
        for element in tree.xpath(xpath):
            if _attached(element, root):  # not inside a block that already went
                counts[kind] += 1
                _drop(element)
    for time_el in tree.xpath("//time"):
        # "Wanda aka sabunta 5 Yuni 2024": the date and the label around it
        if not _attached(time_el, root) or any(a.tag == "p" for a in time_el.iterancestors()):
            continue  # a date inside a paragraph is part of the prose
        parent = time_el.getparent()
        target = parent if parent is not None and len(parent.text_content().split()) <= _TIMESTAMP_MAX_WORDS else time_el
        counts["timestamp"] += 1
        _drop(target)
    # In-body "related stories" lists: every item is one link to another page of the site.
    for lst in tree.xpath("//ul | //ol"):
        if not _attached(lst, root) or not _is_link_list(lst, host):
            continue
        counts["link_list"] += 1
        block = lst  # the list's outermost wrapper that holds nothing else
        while (parent := block.getparent()) is not None and parent is not root and len(parent) == 1 \
                and not (parent.text or "").strip():
            block = parent
        lead_in = block.getprevious()
        if lead_in is not None and _is_lead_in(lead_in):
            counts["link_list_lead_in"] += 1
            _drop(lead_in)
        _drop(block)


def _attached(element: Any, root: Any) -> bool:
    """Whether ``element`` still hangs below ``root`` (not inside a block that was cut out)."""
    ancestors = list(element.iterancestors())
    return bool(ancestors) and ancestors[-1] is root


def _is_link_list(lst: Any, host: str | None) -> bool:
    items = [li for li in lst if isinstance(li.tag, str) and li.tag == "li"]
    if not items:
        return False
    for li in items:
        links = li.xpath(".//a[@href]")
        if len(links) != 1:
            return False
        text = " ".join(li.text_content().split())
        if not text or text != " ".join(links[0].text_content().split()):
            return False
        target = urlsplit(links[0].get("href", ""))
        if target.netloc and host and target.netloc != host:
            return False
    return True


def _is_lead_in(element: Any) -> bool:
    # "Karin bayani:" / "Àwọn iròyin tì ẹ leè ní ìfẹ̀ síí:" just before such a list
    text = " ".join(element.text_content().split())
    return bool(text) and text.endswith((":", "：")) and len(text.split()) <= _LEAD_IN_MAX_WORDS


def extract_article(
    html: str, url: str | None = None, *, service: str | None = None, remove_furniture: bool = True
) -> ExtractedArticle | None:
    """Title, publication date and main text of an article page; None when no text is left.

    With ``remove_furniture`` (the default) figures and their captions, bylines, media players,
    visually hidden labels, related-content blocks and in-body related lists are cut out before
    extraction, and lines that carry the ``service``'s page labels are dropped after it; both are
    counted in ``ExtractedArticle.furniture``.
    """
    # lxml refuses str input that carries an XML encoding declaration (XHTML pages)
    html = _XML_DECLARATION.sub("", html, count=1)
    if not html.strip():
        return None
    tree = lxml.html.fromstring(html)
    repair_mojibake(tree)
    title = _first_text(tree, ["//main//h1", "//article//h1", "//h1"])
    published = _first_attr(tree, ["//main//time[@datetime]", "//article//time[@datetime]"], "datetime")
    metadata = trafilatura.extract_metadata(tree, default_url=url)
    if not title and metadata is not None:
        title = metadata.title or ""
    if not published and metadata is not None:
        published = metadata.date
    for element in tree.xpath(_CHROME_XPATH):
        if element.getparent() is not None:
            element.drop_tree()
    furniture: Counter[str] = Counter()
    if remove_furniture:
        _remove_structural_furniture(tree, urlsplit(url).netloc if url else None, furniture)
    text = trafilatura.extract(
        tree,
        url=url,
        include_comments=False,
        include_tables=False,
        include_images=False,
        include_links=False,
        favor_precision=True,
        deduplicate=False,
        output_format="txt",
    )
    if not text:
        return None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines and title and lines[0] == title:  # the title is its own column
        lines = lines[1:]
    labels = label_matcher(service) if remove_furniture else None
    if labels is not None:
        kept = [line for line in lines if not labels.is_furniture(line)]
        if len(kept) != len(lines):
            furniture["service_label_lines"] += len(lines) - len(kept)
        lines = kept
    body = "\n".join(lines)
    if not body:
        return None
    return ExtractedArticle(title=title, published=published or None, text=body, furniture=dict(furniture))


def _first_text(tree: Any, xpaths: list[str]) -> str:
    for xp in xpaths:
        for el in tree.xpath(xp):
            text = " ".join(el.text_content().split())
            if text:
                return text
    return ""


def _first_attr(tree: Any, xpaths: list[str], attr: str) -> str | None:
    for xp in xpaths:
        for el in tree.xpath(xp):
            value = (el.get(attr) or "").strip()
            if value:
                return value
    return None
