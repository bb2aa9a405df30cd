"""Polite HTTP fetching for the corpus stages: one place for User-Agent, robots.txt, rate limits,
retries, size limits and decoding, so every scraper behaves the same towards the sites it reads.

Pure Python (httpx + urllib.robotparser); no dagster import.
"""

from __future__ import annotations

import codecs
import hashlib
import random
import re
import threading
import time
import urllib.robotparser
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from instruct_global.lib.common.retry import TRANSIENT_STATUSES

# one Retry-After parser for the project; exported under its old name here too
from instruct_global.lib.common.retry import retry_after_seconds as parse_retry_after

DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024
# RFC 9309 asks crawlers to parse at least 500 KiB of robots.txt; more than that is ignored.
ROBOTS_MAX_BYTES = 512 * 1024
# the project's one list of statuses worth another try: 429, 5xx gateways and CDNs send (520-524), 529
RETRYABLE_STATUS = TRANSIENT_STATUSES


class FetchError(RuntimeError):
    """A fetch that failed for good. ``reason`` is a short stable label for drop counters."""

    reason = "fetch_error"

    def __init__(self, url: str, message: str) -> None:
        super().__init__(f"{message} (url: {url})")
        self.url = url


class HttpStatusError(FetchError):
    def __init__(self, url: str, status_code: int, attempts: int) -> None:
        hint = "" if attempts <= 1 else f" after {attempts} attempts"
        super().__init__(url, f"HTTP {status_code}{hint}")
        self.status_code = status_code
        self.attempts = attempts
        self.reason = f"http_{status_code}"


class TransportFailure(FetchError):
    """Timeouts and connection errors that outlived every retry."""

    def __init__(self, url: str, kind: str, detail: str, attempts: int) -> None:
        super().__init__(url, f"{kind} after {attempts} attempts: {detail}")
        self.attempts = attempts
        self.reason = kind


class TooManyRedirects(FetchError):
    """A redirect loop or a chain longer than httpx's limit (20): a site bug or a trap, not retried."""

    reason = "too_many_redirects"


class ResponseTooLarge(FetchError):
    reason = "too_large"

    def __init__(self, url: str, limit: int, seen: int) -> None:
        super().__init__(url, f"response exceeds max_response_bytes={limit} (got at least {seen} bytes)")
        self.limit = limit


class DisallowedByRobots(FetchError):
    reason = "robots_disallowed"

    def __init__(self, url: str, detail: str = "disallowed by robots.txt") -> None:
        super().__init__(url, detail)


class RobotsUnreachable(DisallowedByRobots):
    """robots.txt could not be read (5xx, network error): RFC 9309 says assume disallow.

    Still a skip for the fetcher's counters, but a caller can tell an unreachable host (a failure
    of the source) from a page the site really disallows.
    """

    reason = "robots_unreachable"


_ROBOTS_UNREACHABLE = "robots.txt unreachable (5xx or network error); RFC 9309 says assume disallow"


@dataclass
class FetchStats:
    """Counters for asset metadata. ``requests`` counts every HTTP attempt, robots.txt included."""

    requests: int = 0
    retries: int = 0
    bytes: int = 0  # body bytes after Content-Encoding decoding
    failures: int = 0  # get() calls that ended in a FetchError (robots skips are not failures)
    throttled: int = 0  # 429 answers and API-level rate limits
    robots_fetches: int = 0
    robots_disallowed: int = 0
    decode_errors: int = 0
    waited_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["waited_seconds"] = round(self.waited_seconds, 3)
        return out


@dataclass
class FetchResult:
    url: str  # final URL after redirects
    status_code: int
    headers: Mapping[str, str]
    content: bytes
    encoding: str
    decode_errors: int  # bytes sequences replaced with U+FFFD while decoding
    _text: str | None = field(default=None, repr=False)

    @property
    def text(self) -> str:
        if self._text is None:
            self._text, _ = decode_bytes(self.content, self.encoding)
        return self._text


def build_user_agent(
    contact: str = "",
    name: str = "instruct-global",
    version: str = "0.1",
    project_url: str = "https://github.com/instruct-global",
) -> str:
    """User-Agent in the form the Wikimedia User-Agent policy asks for: tool/version (url; contact) lib."""
    info = f"{project_url}; {contact}" if contact else project_url
    return f"{name}/{version} ({info}) python-httpx/{httpx.__version__}"


def make_doc_id(source: str, url: str) -> str:
    """Stable document id: the same source and URL give the same id on every run."""
    return hashlib.sha256(f"{source}\n{url}".encode()).hexdigest()[:20]


def utc_now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


# Decoding: a per-thread counter behind a registered codec error handler, so invalid bytes are replaced
# (never raised) and counted without re-decoding.
_decode_state = threading.local()


def _count_and_replace(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    _decode_state.errors = getattr(_decode_state, "errors", 0) + 1
    return "\ufffd", exc.end


_ERROR_HANDLER = "instruct_global.count_replace"
codecs.register_error(_ERROR_HANDLER, _count_and_replace)

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9._:-]+)""")


def _known_codec(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name.strip().strip("\"'")).name
    except LookupError:
        return None


def detect_encoding(content_type: str | None, content: bytes) -> str:
    """Charset from the Content-Type header, else a BOM, <?xml encoding?> or <meta charset>, else UTF-8."""
    if content_type:
        match = re.search(r"charset\s*=\s*([^;\s]+)", content_type, re.IGNORECASE)
        found = _known_codec(match.group(1)) if match else None
        if found:
            return found
    if content.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if content.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    head = content[:4096]
    for pattern in (_XML_ENCODING, _META_CHARSET):
        match = pattern.search(head)
        found = _known_codec(match.group(1).decode("ascii", "replace")) if match else None
        if found:
            return found
    return "utf-8"


def decode_bytes(content: bytes, encoding: str) -> tuple[str, int]:
    """Decode without ever raising: invalid sequences become U+FFFD; returns (text, replacements)."""
    _decode_state.errors = 0
    try:
        text = content.decode(encoding, errors=_ERROR_HANDLER)
    except LookupError:
        text = content.decode("utf-8", errors=_ERROR_HANDLER)
    return text, _decode_state.errors


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class PoliteFetcher:
    """A rate-limited, robots-respecting, retrying HTTP GET client over one ``httpx.Client``.

    Thread-safe for the counters and per-host pacing; the corpus stages call it in series.
    ``sleep`` and ``clock`` are injectable so tests can record waits instead of sleeping.
    """

    def __init__(
        self,
        user_agent: str | None = None,
        *,
        min_interval_seconds: float = 1.0,
        timeout_seconds: float = 30.0,
        max_retries: int = 4,
        backoff_base_seconds: float = 1.0,
        max_backoff_seconds: float = 60.0,
        max_retry_after_seconds: float = 120.0,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        respect_robots: bool = True,
        follow_redirects: bool = True,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.user_agent = user_agent or build_user_agent()
        self.min_interval_seconds = min_interval_seconds
        self.timeout_seconds = timeout_seconds
        self.max_retries = max_retries
        self.backoff_base_seconds = backoff_base_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.max_retry_after_seconds = max_retry_after_seconds
        self.max_response_bytes = max_response_bytes
        self.respect_robots = respect_robots
        self.stats = FetchStats()
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._last_request: dict[str, float] = {}
        self._crawl_delay: dict[str, float] = {}
        self._robots: dict[str, urllib.robotparser.RobotFileParser | None] = {}
        self._robots_locks: dict[str, threading.Lock] = {}
        self._client = httpx.Client(
            headers={"User-Agent": self.user_agent, "Accept-Encoding": "gzip, deflate"},
            timeout=httpx.Timeout(timeout_seconds),
            follow_redirects=follow_redirects,
            transport=transport,
        )

    # -- lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> PoliteFetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public API --------------------------------------------------------------------------------
    def get(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        check_robots: bool = True,
    ) -> FetchResult:
        """GET with robots check, pacing, retries and size limit; raises a ``FetchError`` subclass.

        ``check_robots=False`` is for endpoints governed by their own usage policy rather than
        robots.txt (the MediaWiki API); pacing, retries and limits still apply.
        """
        if check_robots and self.respect_robots:
            verdict = self._robots_verdict(url)
            if verdict is not None:  # a skip, not a failure: counted apart
                with self._lock:
                    self.stats.robots_disallowed += 1
                if verdict == _ROBOTS_UNREACHABLE:
                    raise RobotsUnreachable(url, verdict)
                raise DisallowedByRobots(url, verdict)
        try:
            result = self._get_with_retries(url, params, headers, max_bytes=self.max_response_bytes)
        except FetchError:
            with self._lock:
                self.stats.failures += 1
            raise
        with self._lock:
            self.stats.decode_errors += result.decode_errors
        return result

    def get_text(self, url: str, params: Mapping[str, Any] | None = None) -> str:
        return self.get(url, params).text

    def allowed(self, url: str) -> bool:
        """Whether robots.txt of the URL's host lets our User-Agent fetch it (fetched once per host)."""
        return self._robots_verdict(url) is None

    def robots_sitemaps(self, url: str) -> list[str]:
        """``Sitemap:`` lines of the host's robots.txt (empty if none or robots not respected)."""
        if not self.respect_robots:
            return []
        parser = self._robots_for(_origin(url))
        return list(parser.site_maps() or []) if parser is not None else []

    def backoff_delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based).

        Retry-After from the server wins (capped by ``max_retry_after_seconds``); otherwise
        exponential backoff with equal jitter, capped by ``max_backoff_seconds``.
        """
        if retry_after is not None:
            return min(retry_after, self.max_retry_after_seconds)
        ceiling = min(self.max_backoff_seconds, self.backoff_base_seconds * (2 ** (attempt - 1)))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def wait(self, seconds: float) -> None:
        """Sleep and account for it; used for retries and by API clients answering maxlag."""
        if seconds <= 0:
            return
        with self._lock:
            self.stats.waited_seconds += seconds
        self._sleep(seconds)

    def note_retry(self, throttled: bool = False) -> None:
        with self._lock:
            self.stats.retries += 1
            if throttled:
                self.stats.throttled += 1

    # -- internals ----------------------------------------------------------------------------------
    def _robots_verdict(self, url: str) -> str | None:
        """None when allowed, else why not."""
        parser = self._robots_for(_origin(url))
        if parser is None:
            return _ROBOTS_UNREACHABLE
        if not parser.can_fetch(self.user_agent, url):
            return "disallowed by robots.txt"
        return None

    def _robots_for(self, origin: str) -> urllib.robotparser.RobotFileParser | None:
        with self._lock:
            if origin in self._robots:
                return self._robots[origin]
            host_lock = self._robots_locks.setdefault(origin, threading.Lock())
        with host_lock:
            with self._lock:
                if origin in self._robots:
                    return self._robots[origin]
            parser = self._load_robots(origin)
            with self._lock:
                self._robots[origin] = parser
            return parser

    def _load_robots(self, origin: str) -> urllib.robotparser.RobotFileParser | None:
        robots_url = f"{origin}/robots.txt"
        parser = urllib.robotparser.RobotFileParser(robots_url)
        with self._lock:
            self.stats.robots_fetches += 1
        try:
            result = self._get_with_retries(robots_url, None, None, max_bytes=ROBOTS_MAX_BYTES, truncate=True)
        except HttpStatusError as err:
            if 400 <= err.status_code < 500 and err.status_code != 429:
                parser.parse([])  # RFC 9309: robots.txt unavailable (4xx) means allow all
                return parser
            return None
        except FetchError:
            return None
        parser.parse(result.text.splitlines())
        delay = parser.crawl_delay(self.user_agent)
        if delay:
            # Crawl-delay slows us down for that host, within the same ceiling as backoff.
            with self._lock:
                self._crawl_delay[urlsplit(origin).netloc] = min(float(delay), self.max_backoff_seconds)
        return parser

    def _pace(self, host: str) -> None:
        # Reserve the next slot for this host under the lock, then sleep outside it.
        with self._lock:
            now = self._clock()
            interval = max(self.min_interval_seconds, self._crawl_delay.get(host, 0.0))
            earliest = self._last_request.get(host, float("-inf")) + interval
            slot = max(now, earliest)
            self._last_request[host] = slot
        self.wait(slot - now)

    def _get_with_retries(
        self,
        url: str,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        *,
        max_bytes: int,
        truncate: bool = False,
    ) -> FetchResult:
        host = urlsplit(url).netloc
        attempt = 0
        while True:
            attempt += 1
            self._pace(host)
            retry_after: float | None = None
            try:
                result = self._get_once(url, params, headers, max_bytes=max_bytes, truncate=truncate)
            except httpx.TimeoutException as err:
                failure: FetchError = TransportFailure(
                    url, "timeout", str(err) or type(err).__name__, attempt
                )
                throttled = False
            except httpx.TransportError as err:
                failure = TransportFailure(url, "connection_error", str(err) or type(err).__name__, attempt)
                throttled = False
            except httpx.TooManyRedirects as err:
                raise TooManyRedirects(url, f"too many redirects: {err}") from err
            except httpx.HTTPError as err:  # e.g. a body that fails Content-Encoding decoding: not transient
                raise FetchError(url, f"{type(err).__name__}: {err}") from err
            else:
                if result.status_code < 400:
                    return result
                failure = HttpStatusError(url, result.status_code, attempt)
                if result.status_code not in RETRYABLE_STATUS:
                    raise failure
                throttled = result.status_code == 429
                retry_after = parse_retry_after(result.headers.get("retry-after"))
            if attempt > self.max_retries:
                raise failure
            self.note_retry(throttled)
            self.wait(self.backoff_delay(attempt, retry_after))

    def _get_once(
        self,
        url: str,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        *,
        max_bytes: int,
        truncate: bool,
    ) -> FetchResult:
        with self._lock:
            self.stats.requests += 1
        with self._client.stream("GET", url, params=params, headers=headers) as response:
            declared = response.headers.get("content-length")
            if not truncate and declared and declared.isdigit() and int(declared) > max_bytes:
                raise ResponseTooLarge(url, max_bytes, int(declared))
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                with self._lock:
                    self.stats.bytes += len(chunk)
                if size > max_bytes:
                    if truncate:
                        chunks.append(chunk[: len(chunk) - (size - max_bytes)])
                        break
                    raise ResponseTooLarge(url, max_bytes, size)
                chunks.append(chunk)
            content = b"".join(chunks)
            encoding = detect_encoding(response.headers.get("content-type"), content)
            # Error bodies are never read, so only successful ones are decoded (and counted).
            text, errors = decode_bytes(content, encoding) if response.status_code < 400 else (None, 0)
            return FetchResult(
                url=str(response.url),
                status_code=response.status_code,
                headers=response.headers,
                content=content,
                encoding=encoding,
                decode_errors=errors,
                _text=text,
            )
