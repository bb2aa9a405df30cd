"""PoliteFetcher against a real local HTTP server: robots, pacing, retries, limits, decoding."""

from __future__ import annotations

import email.utils
import itertools
import re
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from instruct_global.lib.common.http_fetch import (
    DEFAULT_MAX_RESPONSE_BYTES,
    DisallowedByRobots,
    HttpStatusError,
    PoliteFetcher,
    ResponseTooLarge,
    TransportFailure,
    build_user_agent,
    decode_bytes,
    make_doc_id,
    parse_retry_after,
)
from instruct_global.resources.http import HttpFetcherResource
from instruct_global_tests.fixtures.corpus_server import BIG_PAGE_BYTES, CorpusServer

UA = build_user_agent("tests@example.org")


class FakeTime:
    """Clock and sleep in one: sleeping advances the clock, nothing really waits."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def server() -> Iterator[CorpusServer]:
    with CorpusServer() as srv:
        yield srv


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


def make_fetcher(fake_time: FakeTime, **overrides: object) -> PoliteFetcher:
    options: dict[str, object] = {
        "min_interval_seconds": 0.0,
        "timeout_seconds": 2.0,
        "max_retries": 3,
        "backoff_base_seconds": 0.5,
        "max_backoff_seconds": 4.0,
        "sleep": fake_time.sleep,
        "clock": fake_time.clock,
    }
    options.update(overrides)
    return PoliteFetcher(UA, **options)  # type: ignore[arg-type]


# -- identity and happy path ------------------------------------------------------------------------


def test_user_agent_follows_wikimedia_policy_and_is_sent(server: CorpusServer, fake_time: FakeTime) -> None:
    assert re.fullmatch(
        r"instruct-global/0\.1 \(https://github\.com/instruct-global; tests@example\.org\) python-httpx/[\d.]+",
        UA,
    )
    with make_fetcher(fake_time) as fetcher:
        fetcher.get(server.url("/pages/ok"))
    assert {r["headers"]["User-Agent"] for r in server.requests} == {UA}


def test_get_decodes_utf8_and_counts(server: CorpusServer, fake_time: FakeTime) -> None:
    with make_fetcher(fake_time) as fetcher:
        result = fetcher.get(server.url("/pages/ok"))
    assert "Ẹ kú àárọ̀! Ìdánwò ni èyí." in result.text
    assert result.status_code == 200
    assert result.decode_errors == 0
    stats = fetcher.stats.as_dict()
    assert stats["requests"] == 2  # robots.txt + the page
    assert stats["retries"] == 0 and stats["failures"] == 0
    assert stats["bytes"] == len(result.content) + len(
        server.robots_txt.replace("{base}", server.base_url).encode()
    )
    assert set(stats) >= {"requests", "retries", "bytes", "failures", "robots_disallowed", "decode_errors"}


def test_robots_fetched_once_per_host(server: CorpusServer, fake_time: FakeTime) -> None:
    with make_fetcher(fake_time) as fetcher:
        for _ in range(3):
            fetcher.get(server.url("/pages/ok"))
    assert server.count("/robots.txt") == 1
    assert server.count("/pages/ok") == 3
    assert fetcher.stats.robots_fetches == 1


# -- robots.txt ----------------------------------------------------------------------------------------


def test_robots_disallowed_url_is_refused_without_a_request(
    server: CorpusServer, fake_time: FakeTime
) -> None:
    url = server.url("/private/secret")
    with make_fetcher(fake_time) as fetcher:
        assert not fetcher.allowed(url)
        with pytest.raises(DisallowedByRobots) as caught:
            fetcher.get(url)
    assert url in str(caught.value)
    assert caught.value.reason == "robots_disallowed"
    assert server.count("/private/secret") == 0
    assert fetcher.stats.robots_disallowed == 1
    assert fetcher.stats.failures == 0  # a skip, not a failure


def test_robots_group_for_our_user_agent_applies(fake_time: FakeTime) -> None:
    robots = "User-agent: instruct-global\nDisallow: /pages/\n\nUser-agent: *\nDisallow:\n"
    with CorpusServer(robots_txt=robots) as srv, make_fetcher(fake_time) as ours:
        with pytest.raises(DisallowedByRobots):
            ours.get(srv.url("/pages/ok"))
        with PoliteFetcher("otherbot/2.0", min_interval_seconds=0) as other:
            assert other.get(srv.url("/pages/ok")).status_code == 200


def test_respect_robots_false_skips_robots(server: CorpusServer, fake_time: FakeTime) -> None:
    with make_fetcher(fake_time, respect_robots=False) as fetcher:
        assert fetcher.get(server.url("/private/secret")).status_code == 200
    assert server.count("/robots.txt") == 0


def test_robots_404_allows_everything(server: CorpusServer, fake_time: FakeTime) -> None:
    server.inject("/robots.txt", times=1, status=404)
    with make_fetcher(fake_time) as fetcher:
        assert fetcher.get(server.url("/private/secret")).status_code == 200


def test_robots_5xx_means_disallow_all(server: CorpusServer, fake_time: FakeTime) -> None:
    server.inject("/robots.txt", times=100, status=503)
    with make_fetcher(fake_time, max_retries=1) as fetcher, pytest.raises(DisallowedByRobots) as caught:
        fetcher.get(server.url("/pages/ok"))
    assert "unreachable" in str(caught.value)
    assert server.count("/pages/ok") == 0


def test_crawl_delay_slows_the_host(fake_time: FakeTime) -> None:
    with (
        CorpusServer(robots_txt="User-agent: *\nCrawl-delay: 3\n") as srv,
        make_fetcher(fake_time) as fetcher,
    ):
        fetcher.get(srv.url("/pages/ok"))
        fetcher.get(srv.url("/pages/ok"))
    assert fake_time.sleeps.count(3.0) == 2  # robots -> page 1 -> page 2


# -- pacing ----------------------------------------------------------------------------------------------


def test_min_interval_per_host() -> None:
    fake = FakeTime()
    seen: list[tuple[str, float]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, fake.now))
        return httpx.Response(200, text="ok")

    fetcher = make_fetcher(
        fake, min_interval_seconds=2.0, respect_robots=False, transport=httpx.MockTransport(handler)
    )
    with fetcher:
        fetcher.get("https://a.example/1")
        fetcher.get("https://b.example/1")  # another host: no wait
        fetcher.get("https://a.example/2")
        fetcher.get("https://a.example/3")
    times_a = [t for host, t in seen if host == "a.example"]
    assert [round(b - a, 6) for a, b in itertools.pairwise(times_a)] == [2.0, 2.0]
    assert next(t for host, t in seen if host == "b.example") == times_a[0]


# -- retries -----------------------------------------------------------------------------------------


def test_429_retry_after_seconds_is_honoured_and_counted(server: CorpusServer, fake_time: FakeTime) -> None:
    server.inject("/pages/ok", times=2, status=429, headers={"Retry-After": "3"})
    with make_fetcher(fake_time) as fetcher:
        result = fetcher.get(server.url("/pages/ok"))
    assert result.status_code == 200
    assert server.count("/pages/ok") == 3
    assert fake_time.sleeps == [3.0, 3.0]
    assert fetcher.stats.retries == 2 and fetcher.stats.throttled == 2
    assert fetcher.stats.waited_seconds == 6.0


def test_retry_after_http_date_and_cap(server: CorpusServer, fake_time: FakeTime) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    server.inject("/pages/ok", times=1, status=503, headers={"Retry-After": when})
    server.inject("/pages/ok", times=1, status=429, headers={"Retry-After": "3600"})
    with make_fetcher(fake_time, max_retry_after_seconds=60) as fetcher:
        fetcher.get(server.url("/pages/ok"))
    assert 27 <= fake_time.sleeps[0] <= 30.5
    assert fake_time.sleeps[1] == 60  # capped


def test_500_retried_with_exponential_backoff_then_success(server: CorpusServer, fake_time: FakeTime) -> None:
    server.inject("/pages/ok", times=3, status=500)
    with make_fetcher(fake_time) as fetcher:
        assert fetcher.get(server.url("/pages/ok")).status_code == 200
    assert server.count("/pages/ok") == 4
    low_high = [(0.25, 0.5), (0.5, 1.0), (1.0, 2.0)]  # equal jitter on 0.5 * 2**n
    assert all(lo <= s <= hi for s, (lo, hi) in zip(fake_time.sleeps, low_high, strict=True))
    assert fetcher.stats.retries == 3 and fetcher.stats.failures == 0


def test_backoff_ceiling(fake_time: FakeTime) -> None:
    fetcher = make_fetcher(fake_time, backoff_base_seconds=1.0, max_backoff_seconds=4.0)
    assert all(2.0 <= fetcher.backoff_delay(n) <= 4.0 for n in range(3, 30))
    assert fetcher.backoff_delay(1, retry_after=10) == 10
    fetcher.close()


def test_500_forever_gives_a_clear_error(server: CorpusServer, fake_time: FakeTime) -> None:
    server.inject("/pages/ok", times=100, status=500)
    url = server.url("/pages/ok")
    with make_fetcher(fake_time, max_retries=2) as fetcher, pytest.raises(HttpStatusError) as caught:
        fetcher.get(url)
    err = caught.value
    assert err.status_code == 500 and err.attempts == 3 and err.reason == "http_500"
    assert url in str(err) and "after 3 attempts" in str(err)
    assert server.count("/pages/ok") == 3
    assert fetcher.stats.failures == 1 and fetcher.stats.retries == 2


def test_other_4xx_is_not_retried(server: CorpusServer, fake_time: FakeTime) -> None:
    with make_fetcher(fake_time) as fetcher, pytest.raises(HttpStatusError) as caught:
        fetcher.get(server.url("/pages/not-found-here"))
    assert caught.value.status_code == 404
    assert server.count("/pages/not-found-here") == 1
    assert fetcher.stats.retries == 0 and fake_time.sleeps == []


def test_timeout_is_retried_then_succeeds(server: CorpusServer, fake_time: FakeTime) -> None:
    server.inject("/pages/ok", times=1, delay=1.0)  # slow once, then normal
    with make_fetcher(fake_time, timeout_seconds=0.2) as fetcher:
        assert "Ìdánwò" in fetcher.get(server.url("/pages/ok")).text
    assert fetcher.stats.retries == 1
    assert server.count("/pages/ok") == 2


def test_timeout_forever_gives_a_clear_error(server: CorpusServer, fake_time: FakeTime) -> None:
    server.inject("/pages/ok", times=100, delay=0.6)
    url = server.url("/pages/ok")
    fetcher = make_fetcher(fake_time, timeout_seconds=0.15, max_retries=1)
    with fetcher, pytest.raises(TransportFailure) as caught:
        fetcher.get(url)
    assert caught.value.reason == "timeout"
    assert url in str(caught.value) and "after 2 attempts" in str(caught.value)


def test_connection_refused_is_retried_then_reported(fake_time: FakeTime) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x"
    fetcher = make_fetcher(fake_time, respect_robots=False, max_retries=2)
    with fetcher, pytest.raises(TransportFailure) as caught:
        fetcher.get(url)
    assert caught.value.reason == "connection_error" and url in str(caught.value)
    assert fetcher.stats.requests == 3 and fetcher.stats.retries == 2


# -- size limit -------------------------------------------------------------------------------------------


def test_five_megabyte_page_fits_the_default_limit(server: CorpusServer, fake_time: FakeTime) -> None:
    with make_fetcher(fake_time) as fetcher:
        assert fetcher.max_response_bytes == DEFAULT_MAX_RESPONSE_BYTES
        result = fetcher.get(server.url("/pages/big"))
    assert len(result.content) >= BIG_PAGE_BYTES
    assert result.text.count("Àgbàdo ni oúnjẹ wa.") > 50_000
    assert result.decode_errors == 0


@pytest.mark.parametrize("path", ["/pages/big", "/pages/big-unsized"])
def test_oversized_page_fails_under_a_small_limit(
    server: CorpusServer, fake_time: FakeTime, path: str
) -> None:
    limit = 1024 * 1024
    url = server.url(path)
    fetcher = make_fetcher(fake_time, max_response_bytes=limit)
    with fetcher, pytest.raises(ResponseTooLarge) as caught:
        fetcher.get(url)
    assert url in str(caught.value) and "max_response_bytes=1048576" in str(caught.value)
    assert caught.value.reason == "too_large"
    assert server.count(path) == 1  # not retried
    assert fetcher.stats.bytes < limit + 256 * 1024  # aborted, not downloaded


# -- decoding -----------------------------------------------------------------------------------------


def test_invalid_utf8_is_replaced_and_counted(server: CorpusServer, fake_time: FakeTime) -> None:
    with make_fetcher(fake_time) as fetcher:
        result = fetcher.get(server.url("/pages/latin1-in-utf8"))
    assert result.encoding == "utf-8"
    assert "Caf\ufffd ni \ufffdb\ufffdd\ufffdn. Ok\ufffd \ufffd Oj\ufffd." in result.text
    assert result.decode_errors == 7
    assert fetcher.stats.decode_errors == 7


def test_declared_charsets_are_respected(server: CorpusServer, fake_time: FakeTime) -> None:
    with make_fetcher(fake_time) as fetcher:
        header = fetcher.get(server.url("/pages/latin1-declared"))
        meta = fetcher.get(server.url("/pages/meta-charset"))
    assert "Café à Ìbàdàn." in header.text and header.decode_errors == 0
    assert "Café “quoted”" in meta.text and meta.encoding == "cp1252"


@pytest.mark.parametrize(
    ("data", "encoding", "text", "errors"),
    [
        (b"ok", "utf-8", "ok", 0),
        (b"\xff\xfe\xfa", "utf-8", "\ufffd\ufffd\ufffd", 3),
        (b"caf\xc3", "utf-8", "caf\ufffd", 1),  # cut in the middle of a character
        ("àṣà".encode(), "no-such-codec", "àṣà", 0),
    ],
)
def test_decode_bytes_never_raises(data: bytes, encoding: str, text: str, errors: int) -> None:
    assert decode_bytes(data, encoding) == (text, errors)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5", 5.0),
        ("0", 0.0),
        ("-3", 0.0),
        ("soon", None),
        (None, None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_doc_id_is_stable() -> None:
    assert make_doc_id("bbc", "https://x/y") == make_doc_id("bbc", "https://x/y")
    assert make_doc_id("bbc", "https://x/y") != make_doc_id("wikipedia", "https://x/y")


# -- the Dagster resource ---------------------------------------------------------------------------------


def test_resource_builds_a_configured_fetcher(server: CorpusServer) -> None:
    resource = HttpFetcherResource(
        contact="ops@example.org",
        min_interval_seconds=0.0,
        timeout_seconds=5.0,
        max_retries=1,
        backoff_base_seconds=0.01,
        max_backoff_seconds=0.02,
        max_response_bytes=2048,
        respect_robots=True,
    )
    with resource.get_fetcher() as fetcher:
        assert "ops@example.org" in fetcher.user_agent
        assert fetcher.max_retries == 1 and fetcher.timeout_seconds == 5.0
        assert fetcher.get(server.url("/pages/ok")).status_code == 200
        with pytest.raises(ResponseTooLarge):
            fetcher.get(server.url("/pages/big"))
    with HttpFetcherResource(user_agent="custom/1.0").get_fetcher() as custom:
        assert custom.user_agent == "custom/1.0"
