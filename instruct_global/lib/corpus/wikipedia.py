"""Wikipedia articles as document rows: the MediaWiki Action API for small pulls, the XML dump for large.

Rows follow the documents contract (DESIGN.md 1b): doc_id, lang, source, url, title, text, license,
retrieved_at, plus page_id and wiki. ``lang`` is the partition key (ISO 639-3), ``wiki`` the
Wikipedia code ("yo"); the same article gets the same doc_id in API and dump mode.

Pure Python; no dagster import.
"""

from __future__ import annotations

import bz2
import contextlib
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import mwparserfromhell
from lxml import etree
from mwparserfromhell.nodes import Tag, Template, Text, Wikilink

from instruct_global.lib.common.http_fetch import (
    FetchError,
    PoliteFetcher,
    make_doc_id,
    parse_retry_after,
    utc_now_iso,
)
from instruct_global.lib.corpus.source_status import SourceUnavailableError

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
            except ValueError as err:
                raise WikipediaApiError(result.url, "invalid_json", str(err)) from None
            if not isinstance(data, dict):
                raise WikipediaApiError(result.url, "invalid_json", "top level is not an object")
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

# Tags whose content is never article prose.
_DROP_TAGS = frozenset(
    {
        "ref", "references", "table", "gallery", "imagemap", "timeline", "graph", "math", "chem",
        "score", "syntaxhighlight", "source", "templatestyles", "mapframe", "maplink", "noinclude",
    }
)  # fmt: skip
# Canonical names of the File (6), Media (-2) and Category (14) namespaces; localised names come from
# the dump's <siteinfo>.
_DEFAULT_DROP_PREFIXES = frozenset({"file", "image", "media", "category"})
_DROP_NAMESPACES = frozenset({-2, 6, 14})
_LANG_PREFIX = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")
_MAGIC_WORD = re.compile(r"__[A-Z]+__")
_HEADING_MARK = "\x00H"
_READ_CHUNK = 1 << 16


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
    """Plain prose from wikitext: no templates, refs, tables, files, categories or interlanguage links."""
    prefixes = {_norm_prefix(p) for p in drop_link_prefixes}
    code = mwparserfromhell.parse(wikitext)
    doomed = [node for node in code.filter(recursive=True) if _is_non_prose(node, prefixes)]
    for node in doomed:
        with contextlib.suppress(ValueError):  # already gone with an enclosing node
            code.remove(node)
    for heading in code.filter_headings(recursive=True):
        title = heading.title.strip_code().strip()
        with contextlib.suppress(ValueError):
            code.replace(heading, Text(f"\n{_HEADING_MARK}{title}\n"))
    text = code.strip_code(normalize=True, collapse=True)
    return _tidy_text(text)


def _is_non_prose(node: Any, prefixes: set[str]) -> bool:
    if isinstance(node, Template):
        return True
    if isinstance(node, Tag):
        return str(node.tag).strip().lower() in _DROP_TAGS
    return isinstance(node, Wikilink) and _is_non_prose_link(node, prefixes)


def _is_non_prose_link(link: Wikilink, prefixes: set[str]) -> bool:
    title = str(link.title).strip()
    if title.startswith(":"):  # [[:Category:X]] is a visible link
        return False
    prefix, sep, _ = title.partition(":")
    if not sep:
        return False
    prefix = _norm_prefix(prefix)
    if prefix in prefixes:
        return True
    # Interlanguage links ([[en:Ibadan]]) render nowhere in the article body.
    return link.text is None and bool(_LANG_PREFIX.match(prefix))


def _norm_prefix(prefix: str) -> str:
    # Dumps and editors may mix composed and decomposed diacritics (Ẹ̀ka); compare one form.
    return unicodedata.normalize("NFC", prefix.strip().replace("_", " ")).casefold()


def _tidy_text(text: str) -> str:
    """Collapse whitespace, drop magic words and headings of sections that ended up empty."""
    lines: list[str] = []
    for raw in _MAGIC_WORD.sub("", text).splitlines():
        line = re.sub(r"[ \t\u00a0]+", " ", raw).strip()
        line = re.sub(r" +([.,;:!?])", r"\1", line)
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


def iter_dump_articles(
    path: str | Path,
    lang: str,
    max_articles: int | None = None,
    *,
    wiki: str | None = None,
    stats: DumpStats | None = None,
) -> Iterator[dict[str, Any]]:
    """Stream articles from a ``pages-articles.xml.bz2`` dump with flat memory.

    Skips redirects, pages outside namespace 0 and pages whose text is empty after cleaning.
    The article URL base comes from the dump's <siteinfo><base> (``wiki`` overrides it).

    A truncated or corrupt dump yields every complete article before the damage and then raises
    ``DumpError`` naming the file and the count read, so a consumer can never mistake a partial
    dump for a whole one.
    """
    path = Path(path)
    stats = stats if stats is not None else DumpStats()
    if max_articles is not None and max_articles <= 0:
        return
    url_base: str | None = f"https://{wiki}.wikipedia.org/wiki/" if wiki else None
    wiki_code = wiki
    drop_prefixes = set(_DEFAULT_DROP_PREFIXES)
    try:
        with bz2.open(path, "rb") as stream:
            # A pull parser fed with read1() chunks sees every byte that decompressed before any
            # damage, so all complete pages are yielded before the error. huge_tree: single
            # revisions can exceed libxml2's 10 MB text-node default.
            parser = etree.XMLPullParser(events=("end",), huge_tree=True, resolve_entities=False)
            while True:
                chunk = stream.read1(_READ_CHUNK)
                if chunk:
                    parser.feed(chunk)
                else:
                    parser.close()  # raises if the XML stopped mid-document
                for _, elem in parser.read_events():
                    local = etree.QName(elem).localname
                    if local == "siteinfo":
                        site_base, dbname, names = _read_siteinfo(elem)
                        drop_prefixes |= names
                        if url_base is None and site_base:
                            url_base = site_base
                        if wiki_code is None:
                            wiki_code = _wiki_from(site_base, dbname, path)
                        _release(elem)
                    elif local == "page":
                        row = _page_to_row(elem, lang, wiki_code or "", url_base, drop_prefixes, stats)
                        _release(elem)
                        if row is not None:
                            yield row
                            stats.yielded += 1
                            if max_articles is not None and stats.yielded >= max_articles:
                                return
                if not chunk:
                    return
    except (EOFError, OSError, etree.XMLSyntaxError) as err:
        raise DumpError(path, stats.yielded, f"{type(err).__name__}: {err}") from err


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


def _page_to_row(
    page: etree._Element,
    lang: str,
    wiki: str,
    url_base: str | None,
    drop_prefixes: set[str],
    stats: DumpStats,
) -> dict[str, Any] | None:
    stats.pages_seen += 1
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
    if ns not in (None, "0"):
        stats.other_namespace += 1
        return None
    if redirect:
        stats.redirects += 1
        return None
    text = wikitext_to_text(wikitext, drop_prefixes)
    if not text:
        stats.empty_text += 1
        return None
    url = article_url(wiki, title, url_base)
    return _row(lang, wiki, url, title, text, page_id)
