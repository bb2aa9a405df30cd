"""Wikipedia articles as document rows: the MediaWiki Action API for small pulls, the XML dump for large.

Rows follow the documents contract (docs/ARCHITECTURE.md, "Data contracts"): doc_id, lang, source, url, title, text, license,
retrieved_at, plus page_id and wiki. ``lang`` is the partition key (ISO 639-3), ``wiki`` the
Wikipedia code ("yo"); the same article gets the same doc_id in API and dump mode.

Pure Python; no dagster import.
"""

from __future__ import annotations

import bz2
import itertools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pyarrow as pa
from lxml import etree

from instruct_global.lib.common.http_fetch import (
    FetchError,
    PoliteFetcher,
    make_doc_id,
    parse_retry_after,
    utc_now_iso,
)
from instruct_global.lib.corpus.parallel import new_pool, ordered_map, resolve_workers
from instruct_global.lib.corpus.source_status import SourceUnavailableError
from instruct_global.lib.corpus.wikitext import (
    DEFAULT_DROP_PREFIXES,
    HEADING_MARK,
    norm_prefix,
    wikitext_to_text_raw,
)

# Columns this source's rows add to the documents contract, as Parquet types.
WIKIPEDIA_EXTRA_COLUMNS = {"page_id": pa.int64(), "wiki": pa.string()}

SOURCE = "wikipedia"
LICENSE = "CC BY-SA 4.0"
DEFAULT_API_URL = "https://{wiki}.wikipedia.org/w/api.php"
# TextExtracts hands out at most 20 plain-text extracts per request; a larger generator batch only
# means more excontinue round trips for the same pages.
DEFAULT_BATCH_SIZE = 20
THROTTLE_CODES = frozenset({"maxlag", "ratelimited"})


class WikipediaApiError(RuntimeError):
    def __init__(self, url: str, code: str, info: str) -> None:
        super().__init__(f"MediaWiki API error '{code}': {info} (url: {url})")
        self.url = url
        self.code = code


class DumpError(RuntimeError):
    """The dump could not be read to its end; ``articles_read`` rows were yielded before the failure."""

    def __init__(self, path: Path, articles_read: int, detail: str) -> None:
        super().__init__(
            f"dump {path} is truncated or corrupt after {articles_read} articles: {detail}. "
            "The rows read so far are incomplete; download the dump again."
        )
        self.path = path
        self.articles_read = articles_read


def article_url(wiki: str, title: str, base: str | None = None) -> str:
    """Canonical article URL, percent-encoded the way MediaWiki's wfUrlencode does it."""
    base = base or f"https://{wiki}.wikipedia.org/wiki/"
    return base + quote(title.replace(" ", "_"), safe=";@$!*(),/~:")


def _row(lang: str, wiki: str, url: str, title: str, text: str, page_id: int | None) -> dict[str, Any]:
    return {
        "doc_id": make_doc_id(SOURCE, url),
        "lang": lang,
        "source": SOURCE,
        "url": url,
        "title": title,
        "text": text,
        "license": LICENSE,
        "retrieved_at": utc_now_iso(),
        "page_id": page_id,
        "wiki": wiki,
    }


# ---------------------------------------------------------------------------------------------
# (a) MediaWiki Action API
# ---------------------------------------------------------------------------------------------


@dataclass
class ApiStats:
    api_requests: int = 0
    pages_seen: int = 0
    empty_text: int = 0
    throttle_waits: int = 0  # maxlag / ratelimited answers we waited out
    warnings: list[str] = field(default_factory=list)
    yielded: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class WikipediaApiClient:
    """Lists main-namespace, non-redirect articles with plain-text extracts, in series.

    Follows MediaWiki continuation exactly: every request is the original parameters plus the last
    ``continue`` object. Pages of one generator batch are merged by pageid until ``batchcomplete``,
    because extracts of a batch may arrive over several ``excontinue`` responses.
    """

    def __init__(
        self,
        fetcher: PoliteFetcher,
        wiki: str,
        lang: str,
        *,
        api_url: str = DEFAULT_API_URL,
        batch_size: int = DEFAULT_BATCH_SIZE,
        maxlag: int = 5,
        max_api_retries: int = 5,
    ) -> None:
        self.fetcher = fetcher
        self.wiki = wiki
        self.lang = lang
        self.api_url = api_url.format(wiki=wiki)
        self.batch_size = batch_size
        self.maxlag = maxlag
        self.max_api_retries = max_api_retries
        self.stats = ApiStats()

    def base_params(self, limit: int) -> dict[str, Any]:
        return {
            "action": "query",
            "generator": "allpages",
            "gapnamespace": 0,
            "gapfilterredir": "nonredirects",
            "gaplimit": limit,
            "prop": "extracts|info",
            "explaintext": 1,
            "exsectionformat": "plain",
            "exlimit": "max",
            "inprop": "url",
            "format": "json",
            "formatversion": 2,
            "maxlag": self.maxlag,
        }

    def iter_articles(self, max_articles: int | None = None) -> Iterator[dict[str, Any]]:
        if max_articles is not None and max_articles <= 0:
            return
        base = self.base_params(self._batch_limit(max_articles))
        cont: dict[str, Any] = {}
        batch: dict[int, dict[str, Any]] = {}
        while True:
            data = self._query({**base, **cont})
            for page in data.get("query", {}).get("pages", []):
                if "missing" in page or "invalid" in page or "pageid" not in page:
                    continue
                merged = batch.setdefault(page["pageid"], {})
                merged.update({k: v for k, v in page.items() if v is not None})
            complete = bool(data.get("batchcomplete")) or "continue" not in data
            if complete:
                for page in batch.values():
                    row = self._page_row(page)
                    if row is None:
                        continue
                    yield row
                    self.stats.yielded += 1
                    if max_articles is not None and self.stats.yielded >= max_articles:
                        return
                batch.clear()
            if "continue" not in data:
                return
            cont = dict(data["continue"])
            if complete:  # a new generator batch may be smaller when few articles are still wanted
                base["gaplimit"] = self._batch_limit(max_articles)

    def _batch_limit(self, max_articles: int | None) -> int:
        if max_articles is None:
            return self.batch_size
        return max(1, min(self.batch_size, max_articles - self.stats.yielded))

    def _page_row(self, page: Mapping[str, Any]) -> dict[str, Any] | None:
        self.stats.pages_seen += 1
        text = _tidy_text(page.get("extract") or "")
        if not text:
            self.stats.empty_text += 1
            return None
        title = page.get("title", "")
        url = page.get("canonicalurl") or page.get("fullurl") or article_url(self.wiki, title)
        return _row(self.lang, self.wiki, url, title, text, page.get("pageid"))

    def _query(self, params: dict[str, Any]) -> dict[str, Any]:
        attempt = 0
        while True:
            self.stats.api_requests += 1
            # API:Etiquette, not robots.txt, governs api.php (Wikipedia's robots.txt disallows /w/
            # for crawlers); we follow it: identified User-Agent, maxlag, requests in series.
            try:
                result = self.fetcher.get(self.api_url, params=params, check_robots=False)
            except FetchError as err:
                # Fail the step (never an empty or partial success), saying what failed and why.
                attempts = getattr(err, "attempts", 1)
                why = (
                    f"API request {self.stats.api_requests} failed for good after {self.stats.yielded} "
                    f"articles ({attempts} attempt{'s' if attempts != 1 else ''})"
                )
                raise SourceUnavailableError(
                    f"Wikipedia API {self.api_url}", why, {err.reason: attempts}, str(err)
                ) from err
            try:
                data = json.loads(result.text)
                if not isinstance(data, dict):
                    raise ValueError("top level is not an object")
            except ValueError as err:
                # a 200 that is not the API's JSON (a cache's "Wikimedia Error" page, a body cut short
                # by a proxy) is usually gone on the next try; only a lasting one fails the step
                if attempt >= self.max_api_retries:
                    raise WikipediaApiError(result.url, "invalid_json", str(err)) from None
                attempt += 1
                self.fetcher.note_retry()
                self.fetcher.wait(self.fetcher.backoff_delay(attempt))
                continue
            error = data.get("error")
            if not error:
                self._note_warnings(data.get("warnings"))
                return data
            code = str(error.get("code", "unknown"))
            if code not in THROTTLE_CODES or attempt >= self.max_api_retries:
                raise WikipediaApiError(result.url, code, str(error.get("info", "")))
            attempt += 1
            self.stats.throttle_waits += 1
            self.fetcher.note_retry(throttled=True)
            retry_after = _retry_after(result.headers, error)
            self.fetcher.wait(self.fetcher.backoff_delay(attempt, retry_after))

    def _note_warnings(self, warnings: Any) -> None:
        if isinstance(warnings, dict):
            for module, body in warnings.items():
                msg = body.get("warnings") if isinstance(body, dict) else body
                note = f"{module}: {msg}"
                if note not in self.stats.warnings and len(self.stats.warnings) < 20:
                    self.stats.warnings.append(note)


def _retry_after(headers: Mapping[str, str], error: Mapping[str, Any]) -> float | None:
    seconds = parse_retry_after(headers.get("retry-after"))
    if seconds is None and error.get("code") == "maxlag":
        seconds = 5.0  # Manual:Maxlag_parameter: wait at least 5 seconds when no header says more
    return seconds


def iter_api_articles(
    fetcher: PoliteFetcher,
    wiki: str,
    lang: str,
    max_articles: int | None = None,
    *,
    api_url: str = DEFAULT_API_URL,
) -> Iterator[dict[str, Any]]:
    """Convenience wrapper around ``WikipediaApiClient(...).iter_articles``."""
    return WikipediaApiClient(fetcher, wiki, lang, api_url=api_url).iter_articles(max_articles)


# ---------------------------------------------------------------------------------------------
# (b) XML dump (<wiki>-pages-articles.xml.bz2, single- or multistream)
# ---------------------------------------------------------------------------------------------

# Canonical names of the File (6), Media (-2) and Category (14) namespaces; localised names come from
# the dump's <siteinfo>.
_DEFAULT_DROP_PREFIXES = DEFAULT_DROP_PREFIXES
_DROP_NAMESPACES = frozenset({-2, 6, 14})
_MAGIC_WORD = re.compile(r"__[A-Z]+__")
_HEADING_MARK = HEADING_MARK
_HSPACE = re.compile(r"[ \t\u00a0]+")
_SPACE_BEFORE_PUNCT = re.compile(r" +([.,;:!?])")
_READ_CHUNK = 1 << 16
# Pages are handed to worker processes in batches of about this much wikitext, a bounded number
# per worker at a time (lib/corpus/parallel.py), so memory stays flat over the dump.
_BATCH_BYTES = 1 << 20


@dataclass
class DumpStats:
    pages_seen: int = 0
    redirects: int = 0
    other_namespace: int = 0
    empty_text: int = 0
    yielded: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def wikitext_to_text(wikitext: str, drop_link_prefixes: Iterable[str] = _DEFAULT_DROP_PREFIXES) -> str:
    """Plain prose from wikitext: no templates, refs, tables, files, categories or interlanguage links.

    Linear in the length of the page (see ``lib/corpus/wikitext.py``).
    """
    return _tidy_text(wikitext_to_text_raw(wikitext, drop_link_prefixes))


def _norm_prefix(prefix: str) -> str:
    return norm_prefix(prefix)


def _tidy_text(text: str) -> str:
    """Collapse whitespace, drop magic words and headings of sections that ended up empty."""
    lines: list[str] = []
    for raw in _MAGIC_WORD.sub("", text).splitlines():
        line = _HSPACE.sub(" ", raw).strip()
        if " " in line:
            line = _SPACE_BEFORE_PUNCT.sub(r"\1", line)
        if line:
            lines.append(line)
    kept: list[str] = []
    for i, line in enumerate(lines):
        if line.startswith(_HEADING_MARK):
            following = lines[i + 1] if i + 1 < len(lines) else None
            if following is None or following.startswith(_HEADING_MARK):
                continue
            line = line[len(_HEADING_MARK) :]
        kept.append(line)
    return "\n".join(kept).strip()


@dataclass(frozen=True)
class _DumpPage:
    title: str
    ns: str | None
    page_id: int | None
    redirect: bool
    wikitext: str


@dataclass(frozen=True)
class _SiteContext:
    lang: str
    wiki: str
    url_base: str | None
    drop_prefixes: frozenset[str]


def iter_dump_articles(
    path: str | Path,
    lang: str,
    max_articles: int | None = None,
    *,
    wiki: str | None = None,
    stats: DumpStats | None = None,
    workers: int = 1,
) -> Iterator[dict[str, Any]]:
    """Stream articles from a ``pages-articles.xml.bz2`` dump with flat memory.

    Skips redirects, pages outside namespace 0 and pages whose text is empty after cleaning.
    The article URL base comes from the dump's <siteinfo><base> (``wiki`` overrides it).

    ``workers`` > 1 converts wikitext in that many processes (0: one per CPU) while this process
    decompresses and parses the XML; rows come out in dump order either way, and at most a few
    batches of pages per worker are in flight, so memory does not grow with the dump.

    A truncated or corrupt dump yields every complete article before the damage and then raises
    ``DumpError`` naming the file and the count read, so a consumer can never mistake a partial
    dump for a whole one.
    """
    path = Path(path)
    stats = stats if stats is not None else DumpStats()
    if max_articles is not None and max_articles <= 0:
        return
    workers = resolve_workers(workers)
    pages = _iter_dump_pages(path, wiki, lang)
    if workers == 1:
        results: Iterator[tuple[str, dict[str, Any] | None]] = (
            _convert_page(page, site) for site, page in pages
        )
    else:
        results = _convert_in_pool(pages, workers)
    try:
        for outcome, row in results:
            stats.pages_seen += 1
            if row is None:
                setattr(stats, outcome, getattr(stats, outcome) + 1)
                continue
            yield row
            stats.yielded += 1
            if max_articles is not None and stats.yielded >= max_articles:
                return
    except _DumpReadError as err:
        raise DumpError(path, stats.yielded, err.detail) from err.__cause__
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()


class _DumpReadError(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _iter_dump_pages(path: Path, wiki: str | None, lang: str) -> Iterator[tuple[_SiteContext, _DumpPage]]:
    """(site, page) for every <page> of the dump, in order; read errors as ``_DumpReadError``."""
    url_base: str | None = f"https://{wiki}.wikipedia.org/wiki/" if wiki else None
    wiki_code = wiki
    drop_prefixes = set(_DEFAULT_DROP_PREFIXES)
    site: _SiteContext | None = None
    try:
        with bz2.open(path, "rb") as stream:
            # A pull parser fed with read1() chunks sees every byte that decompressed before any
            # damage, so all complete pages are yielded before the error. huge_tree: single
            # revisions can exceed libxml2's 10 MB text-node default. Only <siteinfo> and <page>
            # end events are reported; their children are read from the finished element.
            parser = etree.XMLPullParser(
                events=("end",), tag=("{*}siteinfo", "{*}page"), huge_tree=True, resolve_entities=False
            )
            seen_any = False
            while True:
                chunk = stream.read1(_READ_CHUNK)
                root = None
                if chunk:
                    parser.feed(chunk)
                else:
                    root = parser.close()  # raises if the XML stopped mid-document
                for _, elem in parser.read_events():
                    seen_any = True
                    if etree.QName(elem).localname == "siteinfo":
                        site_base, dbname, names = _read_siteinfo(elem)
                        drop_prefixes |= names
                        if url_base is None and site_base:
                            url_base = site_base
                        if wiki_code is None:
                            wiki_code = _wiki_from(site_base, dbname, path)
                        site = None
                    else:
                        if site is None:
                            site = _SiteContext(
                                lang, wiki_code or _wiki_from(None, None, path), url_base, frozenset(drop_prefixes)
                            )
                        yield site, _read_page(elem)
                    _release(elem)
                if not chunk:
                    if not seen_any and root is not None and etree.QName(root).localname != "mediawiki":
                        # well-formed XML of another kind (an RSS feed, an HTML error page saved as .bz2)
                        raise _DumpReadError(
                            f"not a MediaWiki XML dump: the root element is <{etree.QName(root).localname}>, "
                            "a pages-articles dump starts with <mediawiki>"
                        )
                    return
    except (EOFError, OSError, etree.XMLSyntaxError) as err:
        raise _DumpReadError(f"{type(err).__name__}: {err}") from err


def _release(elem: etree._Element) -> None:
    # Free the finished subtree and the siblings before it so memory stays flat over the dump.
    elem.clear()
    parent = elem.getparent()
    if parent is not None:
        while elem.getprevious() is not None:
            del parent[0]


def _child_text(elem: etree._Element, name: str) -> str | None:
    for child in elem:
        if etree.QName(child).localname == name:
            return child.text
    return None


def _read_siteinfo(elem: etree._Element) -> tuple[str | None, str | None, set[str]]:
    base_url = _child_text(elem, "base")
    dbname = _child_text(elem, "dbname")
    site_base = None
    if base_url:
        parts = urlsplit(base_url)
        site_base = f"{parts.scheme}://{parts.netloc}/wiki/"
    names: set[str] = set()
    for child in elem.iter():
        key = child.get("key")
        if etree.QName(child).localname != "namespace" or not key or not child.text:
            continue
        if key.lstrip("-").isdigit() and int(key) in _DROP_NAMESPACES:
            names.add(_norm_prefix(child.text))
    return site_base, dbname, names


def _wiki_from(site_base: str | None, dbname: str | None, path: Path) -> str:
    if site_base:
        host = urlsplit(site_base).netloc
        if host.endswith(".wikipedia.org"):
            return host.split(".", 1)[0]
    name = dbname or path.name.split("-", 1)[0]
    return name.removesuffix("wiki").replace("_", "-")


def _read_page(page: etree._Element) -> _DumpPage:
    title = ""
    ns = None
    page_id: int | None = None
    redirect = False
    wikitext = ""
    for child in page:
        local = etree.QName(child).localname
        if local == "title":
            title = child.text or ""
        elif local == "ns":
            ns = (child.text or "").strip()
        elif local == "id":
            page_id = int(child.text) if child.text and child.text.strip().isdigit() else None
        elif local == "redirect":
            redirect = True
        elif local == "revision":
            # pages-articles holds one revision per page; the last one wins if there are more
            wikitext = _child_text(child, "text") or ""
    return _DumpPage(title, ns, page_id, redirect, wikitext)


def _convert_page(page: _DumpPage, site: _SiteContext) -> tuple[str, dict[str, Any] | None]:
    """("yielded", row) or (the DumpStats counter that explains why not, None)."""
    if page.ns not in (None, "0"):
        return "other_namespace", None
    if page.redirect:
        return "redirects", None
    text = wikitext_to_text(page.wikitext, site.drop_prefixes)
    if not text:
        return "empty_text", None
    url = article_url(site.wiki, page.title, site.url_base)
    return "yielded", _row(site.lang, site.wiki, url, page.title, text, page.page_id)


def _convert_batch(site: _SiteContext, batch: list[_DumpPage]) -> list[tuple[str, dict[str, Any] | None]]:
    return [_convert_page(page, site) for page in batch]


def _page_batches(
    pages: Iterator[tuple[_SiteContext, _DumpPage]],
) -> Iterator[tuple[_SiteContext, list[_DumpPage]]]:
    """Consecutive pages of one site context, about ``_BATCH_BYTES`` of wikitext per batch."""
    batch: list[_DumpPage] = []
    size = 0
    site: _SiteContext | None = None
    try:
        for page_site, page in pages:
            if site is not None and page_site is not site and batch:
                yield site, batch
                batch, size = [], 0
            site = page_site
            batch.append(page)
            size += len(page.wikitext) + 256
            if size >= _BATCH_BYTES:
                yield site, batch
                batch, size = [], 0
    except _DumpReadError:
        if batch and site is not None:  # the complete pages before the damage still count
            yield site, batch
        raise
    if batch and site is not None:
        yield site, batch


def _convert_in_pool(
    pages: Iterator[tuple[_SiteContext, _DumpPage]], workers: int
) -> Iterator[tuple[str, dict[str, Any] | None]]:
    """Convert batches in ``workers`` processes; results in dump order, a bounded number in flight.

    A dump that fits in one batch is converted here: starting processes would cost more.
    """
    batches = _page_batches(pages)
    first = next(batches, None)
    if first is None:
        return
    second = next(batches, None)
    if second is None:
        yield from _convert_site_batch(first)
        return
    pool = new_pool(workers)
    try:
        yield from ordered_map(pool, _convert_site_batch, itertools.chain((first, second), batches), workers)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _convert_site_batch(item: tuple[_SiteContext, list[_DumpPage]]) -> list[tuple[str, dict[str, Any] | None]]:
    site, batch = item
    return _convert_batch(site, batch)
