"""Every kind of fault, once, against every client: the first try fails, the retry gets the real answer.

Fast (a few seconds, mostly the timeouts), so it runs in the default suite; the whole-job version is
test_fault_injection.py (marker ``reliability``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from instruct_global.lib.common.http_fetch import PoliteFetcher, build_user_agent
from instruct_global.lib.common.llm_types import ChatRequest
from instruct_global.lib.corpus.wikipedia import WikipediaApiClient
from instruct_global.resources.call_cache import CallCacheResource
from instruct_global.resources.llm_anthropic import AnthropicLLM
from instruct_global.resources.llm_openai import OpenAICompatibleLLM
from instruct_global.resources.translation_google import GoogleTranslator
from instruct_global_tests.fixtures.anthropic_server import AnthropicServer
from instruct_global_tests.fixtures.corpus_server import WIKI_ARTICLES, CorpusServer
from instruct_global_tests.fixtures.google_translate_server import GoogleTranslateServer
from instruct_global_tests.fixtures.openai_server import OpenAIServer
from instruct_global_tests.reliability.fault_proxy import FAULT_KINDS, FaultProxy

pytestmark = pytest.mark.slow  # about 5 s in all, the timeouts

TIMEOUT_S = 0.5
RETRY = {"max_retries": 2, "backoff_base_seconds": 0.001, "max_backoff_seconds": 0.01, "timeout_seconds": TIMEOUT_S}


def _proxy(upstream: str, protocol: str, kind: str) -> FaultProxy:
    # rate 1 and one fault per payload: exactly the first try of each request fails, with this kind
    return FaultProxy(upstream, protocol=protocol, seed=1, rate=1.0, kinds=(kind,), max_faults_per_payload=1,  # type: ignore[arg-type]
                      timeout_s=TIMEOUT_S, retry_after_choices=("0",))  # fmt: skip


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_llm_backends_survive_each_fault(kind: str, tmp_path: Path) -> None:
    cache = CallCacheResource(url=str(tmp_path / "calls.sqlite"))
    request = ChatRequest.from_prompt(f"Say hello ({kind})")
    with OpenAIServer() as openai, _proxy(openai.root_url, "openai", kind) as proxy:
        llm = OpenAICompatibleLLM(model="m", cache=cache, base_url=f"{proxy.url}/v1", **RETRY)
        [result] = llm.complete([request])
        assert result.ok and result.texts == [f"echo: Say hello ({kind})"], result.error
        assert proxy.injected[kind] == 1 and proxy.survived()[kind] == 1 and llm.stats().retries == 1
    with AnthropicServer() as anthropic, _proxy(anthropic.root_url, "anthropic", kind) as proxy:
        llm = AnthropicLLM(model="claude-haiku-4-5", cache=cache, base_url=proxy.url, api_key="sk-ant-test-0123456789",
                           **RETRY)  # fmt: skip
        [result] = llm.complete([request])
        assert result.ok and result.texts == [f"echo: Say hello ({kind})"], result.error
        assert proxy.injected[kind] == 1 and proxy.survived()[kind] == 1 and llm.stats().retries == 1


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_google_translator_survives_each_fault(kind: str, tmp_path: Path) -> None:
    from instruct_global.languages import get_language

    with GoogleTranslateServer() as google, _proxy(google.url, "google", kind) as proxy:
        translator = GoogleTranslator(
            cache=CallCacheResource(url=str(tmp_path / "calls.sqlite")), project_id="p", api_endpoint=proxy.url,
            anonymous_credentials_for_testing=True, timeout_s=TIMEOUT_S, max_retries=2, backoff_initial_s=0.001,
            backoff_max_s=0.01,
        )  # fmt: skip
        [result] = translator.translate([f"Hello ({kind})."], target=get_language("yor"))
        assert result.text == f"[yo] Hello ({kind}).", result.error
        assert proxy.injected[kind] == 1 and proxy.survived()[kind] == 1


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_corpus_fetcher_and_mediawiki_client_survive_each_fault(kind: str) -> None:
    with CorpusServer() as corpus, _proxy(corpus.base_url, "corpus", kind) as proxy:
        fetcher = PoliteFetcher(build_user_agent("tests@example.org"), min_interval_seconds=0.0,
                                timeout_seconds=TIMEOUT_S, max_retries=2, backoff_base_seconds=0.001,
                                max_backoff_seconds=0.01, respect_robots=False)  # fmt: skip
        with fetcher:
            page = fetcher.get(f"{proxy.url}/pages/ok")
            assert "Ìdánwò ni èyí" in page.text
            api = WikipediaApiClient(fetcher, "yo", "yor", api_url=proxy.url + "/{wiki}/w/api.php")
            titles = {row["title"] for row in api.iter_articles()}
        assert titles == {title for title, _ in WIKI_ARTICLES["yo"]}
        assert proxy.injected[kind] >= 2 and proxy.survived()[kind] == proxy.injected[kind]
