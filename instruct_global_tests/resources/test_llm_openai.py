"""OpenAI and OpenAI-compatible backends through the real ``openai`` SDK against a local server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import EnvVar, MaterializeResult, asset, materialize

from instruct_global.lib.common.llm_types import ChatRequest
from instruct_global.lib.common.retry import MAX_RETRY_AFTER_SECONDS
from instruct_global.resources.call_cache import CallCacheResource
from instruct_global.resources.llm import LLMResource, ModelPriceConfig
from instruct_global.resources.llm_openai import OpenAIChatLLM
from instruct_global_tests.fixtures.llm_testing import FAKE_OPENAI_KEY, compatible_llm, openai_llm
from instruct_global_tests.fixtures.openai_server import Fault, OpenAIServer, Reply


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as running:
        yield running


@pytest.fixture
def cache_path(tmp_path: Path) -> Path:
    return tmp_path / "calls.db"


def prompts(*texts: str, **kwargs: Any) -> list[ChatRequest]:
    return [ChatRequest.from_prompt(t, **kwargs) for t in texts]


def test_answers_come_back_in_order_with_usage_and_cost(server: OpenAIServer, cache_path: Path) -> None:
    server.responder = lambda req: req["messages"][-1]["content"].upper()
    llm = openai_llm(server, cache_path, max_concurrency=4)
    texts = [f"question number {i}" for i in range(12)]
    results = llm.complete(prompts(*texts, system="You are terse.", temperature=0.0, max_tokens=50))

    assert [r.text for r in results] == [t.upper() for t in texts]
    assert all(r.ok and not r.cached and r.finish_reason == "stop" for r in results)
    assert results[0].input_tokens == 6 and results[0].output_tokens == 3  # the fake counts words
    # gpt-4o-mini: $0.15 in / $0.60 out per 1M tokens
    assert results[0].cost_usd == pytest.approx((6 * 0.15 + 3 * 0.60) / 1e6)
    body = server.requests[0][1]
    assert body["model"] == "gpt-4o-mini"
    assert body["messages"][0] == {"role": "system", "content": "You are terse."}
    assert body["max_completion_tokens"] == 50 and body["temperature"] == 0.0
    stats = llm.stats()
    assert stats.calls == 12 and stats.cache_hits == 0 and stats.failures == 0
    assert stats.input_tokens == 72 and stats.cost_usd == pytest.approx(sum(r.cost_usd for r in results))


def test_n_choices_and_request_settings_reach_the_server(server: OpenAIServer, cache_path: Path) -> None:
    server.responder = lambda req: [f"sample {i}" for i in range(req["n"])]
    schema = {"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object"}}}
    request = ChatRequest.from_prompt(
        "hi", n=3, stop=("\n\n",), seed=7, top_p=0.9, response_format=schema, model="gpt-4.1-mini"
    )
    [result] = openai_llm(server, cache_path).complete([request])
    assert result.texts == ["sample 0", "sample 1", "sample 2"]
    assert result.finish_reasons == ["stop"] * 3
    body = server.requests[0][1]
    assert body["n"] == 3 and body["stop"] == ["\n\n"] and body["seed"] == 7 and body["top_p"] == 0.9
    assert body["response_format"] == schema and body["model"] == "gpt-4.1-mini"


def test_repeating_requests_makes_zero_server_calls(server: OpenAIServer, cache_path: Path) -> None:
    requests = prompts("a", "b", "c", "a")  # a duplicate inside one call is sent once too
    first = openai_llm(server, cache_path).complete(requests)
    assert server.counts["chat"] == 3
    assert [r.cached for r in first] == [False, False, False, True]

    again = openai_llm(server, cache_path)  # a new run: new resource, same cache
    second = again.complete(requests)
    assert server.counts["chat"] == 3
    assert all(r.cached for r in second)
    assert [r.text for r in second] == [r.text for r in first]
    assert again.stats().cache_hits == 4 and again.stats().calls == 0 and again.stats().cost_usd == 0
    # a changed setting is a different call
    openai_llm(server, cache_path).complete(prompts("a", temperature=0.1))
    assert server.counts["chat"] == 4


def test_rate_limit_with_retry_after_is_honoured(server: OpenAIServer, cache_path: Path) -> None:
    server.fail_next(Fault.rate_limited(retry_after=0.3))
    llm = openai_llm(server, cache_path)
    started = time.monotonic()
    [result] = llm.complete(prompts("hello"))
    assert result.ok and result.text == "echo: hello"
    assert time.monotonic() - started >= 0.3  # backoff alone would be ~1 ms
    assert server.counts["chat"] == 2 and llm.stats().retries == 1


def test_retry_after_ms_is_preferred(server: OpenAIServer, cache_path: Path) -> None:
    server.fail_next(Fault.rate_limited(retry_after=30, retry_after_ms=150))
    started = time.monotonic()
    [result] = openai_llm(server, cache_path).complete(prompts("hello"))
    assert result.ok and 0.15 <= time.monotonic() - started < 5


def test_server_errors_are_retried(server: OpenAIServer, cache_path: Path) -> None:
    server.fail_next(Fault.server_error(500))
    server.fail_next(Fault.server_error(503))
    llm = openai_llm(server, cache_path)
    [result] = llm.complete(prompts("hello"))
    assert result.ok and server.counts["chat"] == 3 and llm.stats().retries == 2


def test_retries_give_up_after_max_retries(server: OpenAIServer, cache_path: Path) -> None:
    server.fail_next(Fault.server_error(500), times=10)
    llm = openai_llm(server, cache_path, max_retries=2)
    [result] = llm.complete(prompts("hello"))
    assert not result.ok and result.error is not None
    assert result.error.startswith("HTTP 500") and "after 2 retries" in result.error
    assert server.counts["chat"] == 3
    assert llm.stats().failures == 1
    # not cached: the next run tries again
    server.clear_faults()
    [again] = openai_llm(server, cache_path).complete(prompts("hello"))
    assert again.ok and not again.cached


def test_insufficient_quota_is_not_retried_and_the_key_is_redacted(
    server: OpenAIServer, cache_path: Path
) -> None:
    server.fail_next(Fault.insufficient_quota(), times=5)
    llm = openai_llm(server, cache_path)
    [result] = llm.complete(prompts("hello"))
    assert server.counts["chat"] == 1
    assert result.error is not None
    assert "insufficient_quota" in result.error and "exceeded your current quota" in result.error
    assert FAKE_OPENAI_KEY not in result.error and "[REDACTED]" in result.error
    assert llm.stats().retries == 0 and llm.stats().failures == 1


@pytest.mark.parametrize(
    "fault", [Fault.unauthorized(), Fault.bad_request(), Fault(404, "invalid_request_error")]
)
def test_permanent_errors_fail_the_item_at_once(server: OpenAIServer, cache_path: Path, fault: Fault) -> None:
    server.fail_next(fault, times=5)
    results = openai_llm(server, cache_path).complete(prompts("hello"))
    assert results[0].error is not None and results[0].error.startswith(f"HTTP {fault.status}")
    assert FAKE_OPENAI_KEY not in results[0].error
    assert server.counts["chat"] == 1


def test_one_failed_item_does_not_sink_the_others(server: OpenAIServer, cache_path: Path) -> None:
    server.fault_hook = lambda body: Fault.bad_request("bad one") if "poison" in json.dumps(body) else None
    results = openai_llm(server, cache_path).complete(prompts("fine 1", "poison", "fine 2"))
    assert [r.ok for r in results] == [True, False, True]


def test_malformed_json_is_retried_then_reported(server: OpenAIServer, cache_path: Path) -> None:
    server.fail_next(Fault.malformed_json())
    [result] = openai_llm(server, cache_path).complete(prompts("once"))
    assert result.ok and server.counts["chat"] == 2

    server.fail_next(Fault.malformed_json(), times=10)
    [broken] = openai_llm(server, cache_path, max_retries=1).complete(prompts("always"))
    assert broken.error is not None and broken.error.startswith("malformed")


def test_finish_reason_length_is_surfaced(server: OpenAIServer, cache_path: Path) -> None:
    server.responder = lambda req: "one two three four five six seven"
    server.fail_next(Fault.length())
    [result] = openai_llm(server, cache_path).complete(prompts("long", max_tokens=3))
    assert result.ok and result.finish_reason == "length" and result.truncated
    assert result.text == "one two three"
    server.responder = lambda req: Reply("cut", finish_reason="length")
    [scripted] = openai_llm(server, cache_path).complete(prompts("other"))
    assert scripted.truncated


def test_timeouts_are_retried_then_reported(server: OpenAIServer, cache_path: Path) -> None:
    server.fail_next(Fault.slow(2.0))
    llm = openai_llm(server, cache_path, timeout_seconds=0.3)
    [result] = llm.complete(prompts("slow once"))
    assert result.ok and llm.stats().retries == 1

    server.fail_next(Fault.slow(2.0), times=2)
    started = time.monotonic()
    [failed] = openai_llm(server, cache_path, timeout_seconds=0.3, max_retries=1).complete(
        prompts("slow twice")
    )
    assert failed.error is not None and failed.error.startswith("timeout")
    assert time.monotonic() - started < 1.9


def test_requests_per_minute_is_obeyed(server: OpenAIServer, cache_path: Path) -> None:
    llm = openai_llm(server, cache_path, requests_per_minute=600, max_concurrency=8)
    started = time.monotonic()
    results = llm.complete(prompts(*[f"q{i}" for i in range(6)]))
    elapsed = time.monotonic() - started
    assert all(r.ok for r in results)
    assert elapsed >= 5 * 60 / 600  # six calls paced 0.1 s apart


def test_tokens_per_minute_is_obeyed(server: OpenAIServer, cache_path: Path) -> None:
    # each call is estimated at 1 prompt token + 99 max_tokens = 100 tokens: 0.1 s at 60k/min
    llm = openai_llm(server, cache_path, tokens_per_minute=60_000, max_concurrency=8)
    started = time.monotonic()
    llm.complete(prompts(*[f"q{i}" for i in range(5)], max_tokens=99))
    assert time.monotonic() - started >= 0.4


def test_rate_limit_headers_pause_new_calls(server: OpenAIServer, cache_path: Path) -> None:
    server.rate_limit_headers = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "300ms"}
    llm = openai_llm(server, cache_path, max_concurrency=1)
    started = time.monotonic()
    llm.complete(prompts("first", "second"))
    assert time.monotonic() - started >= 0.3


def test_odd_rate_limit_headers_do_not_lose_a_paid_answer(server: OpenAIServer, cache_path: Path) -> None:
    server.rate_limit_headers = {"x-ratelimit-remaining-tokens": "1e999", "x-ratelimit-reset-tokens": "1s"}
    [result] = openai_llm(server, cache_path).complete(prompts("hello"))
    assert result.ok
    [again] = openai_llm(server, cache_path).complete(prompts("hello"))
    assert again.cached and server.counts["chat"] == 1


def test_a_huge_retry_after_holds_other_calls_no_longer_than_the_cap(
    server: OpenAIServer, cache_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.fail_next(Fault.rate_limited(retry_after=1e6))
    llm = openai_llm(server, cache_path, max_retries=1)
    slept: list[float] = []
    llm._get_limiter()._sleep = slept.append  # the limiter's wait for the pause
    monkeypatch.setattr("instruct_global.resources.llm.time.sleep", slept.append)  # the backoff
    [result] = llm.complete(prompts("hello"))
    assert result.ok and server.counts["chat"] == 2
    assert slept and max(slept) <= MAX_RETRY_AFTER_SECONDS * 1.1


def test_price_overrides_change_the_cost(server: OpenAIServer, cache_path: Path) -> None:
    llm = openai_llm(
        server,
        cache_path,
        price_overrides={"gpt-4o-mini": ModelPriceConfig(input_per_million=1e6, output_per_million=0)},
    )
    [result] = llm.complete(prompts("one two"))
    assert result.cost_usd == pytest.approx(2.0)  # 2 input tokens at $1 each


def test_compatible_server_needs_no_key_and_reads_max_tokens(server: OpenAIServer, cache_path: Path) -> None:
    llm = compatible_llm(server, cache_path, model="llama-3-8b-instruct")
    [result] = llm.complete(prompts("hi", max_tokens=17))
    assert result.ok and result.cost_usd == 0.0
    body = server.requests[0][1]
    assert body["max_tokens"] == 17 and "max_completion_tokens" not in body
    # batch requested: no batch API here, so normal calls
    [batched] = llm.complete(prompts("batched"), use_batch_api=True)
    assert batched.ok and server.counts["batches.create"] == 0 and server.counts["chat"] == 2


def test_backends_share_no_cache_entries(server: OpenAIServer, cache_path: Path) -> None:
    request = prompts("same", model="gpt-4o-mini")
    openai_llm(server, cache_path).complete(request)
    [other] = compatible_llm(server, cache_path).complete(request)
    assert not other.cached and server.counts["chat"] == 2


def test_assets_see_the_base_class_and_no_key_reaches_metadata(
    server: OpenAIServer, cache_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_OPENAI_API_KEY", FAKE_OPENAI_KEY)
    server.fail_next(Fault.unauthorized())

    @asset
    def answers(context, llm: LLMResource) -> MaterializeResult:  # type: ignore[no-untyped-def]
        results = llm.complete(prompts("bad key", "good"))
        context.log.info(f"errors: {[r.error for r in results]}")
        return MaterializeResult(
            metadata={**llm.stats().as_metadata("llm_"), "first_error": results[0].error or ""}
        )

    resource = OpenAIChatLLM(
        model="gpt-4o-mini",
        api_key=EnvVar("TEST_OPENAI_API_KEY"),
        base_url=server.base_url,
        cache=CallCacheResource(url=str(cache_path)),
        max_retries=0,
    )
    result = materialize([answers], resources={"llm": resource})
    assert result.success
    [materialization] = result.asset_materializations_for_node("answers")
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    assert metadata["llm_calls"] == 2 and metadata["llm_failures"] == 1
    everything = json.dumps(metadata) + "".join(str(e) for e in result.all_events)
    assert FAKE_OPENAI_KEY not in everything
    assert server.requests and server.counts["chat"] == 2


def test_importing_the_backends_loads_no_sdk() -> None:
    import subprocess
    import sys

    from instruct_global_tests.conftest import REPO_ROOT

    code = (
        "import sys, instruct_global.resources.llm_openai, instruct_global.resources.llm_anthropic, "
        "instruct_global.resources.llm_local; "
        "print(sorted(m for m in ('openai', 'anthropic', 'torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_sampling_params_can_be_left_out_for_reasoning_models(tmp_path) -> None:
    from instruct_global.lib.common.llm_types import ChatRequest
    from instruct_global_tests.fixtures.llm_testing import openai_llm
    from instruct_global_tests.fixtures.openai_server import OpenAIServer

    with OpenAIServer() as server:
        server.responder = lambda body: "ok"
        plain = openai_llm(server, tmp_path / "a.db")
        reasoning = openai_llm(server, tmp_path / "b.db", model="o4-mini", send_sampling_params=False)
        assert plain.complete([ChatRequest.from_prompt("hi")])[0].ok
        assert reasoning.complete([ChatRequest.from_prompt("hi")])[0].ok
        bodies = [body for route, body in server.requests if route == "chat"]
        assert "temperature" in bodies[0] and "top_p" in bodies[0]
        assert "temperature" not in bodies[1] and "top_p" not in bodies[1]
