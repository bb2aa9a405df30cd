"""The Anthropic backend through the real ``anthropic`` SDK against a local Messages server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from instruct_global.lib.common.llm_types import ChatMessage, ChatRequest
from instruct_global_tests.fixtures.anthropic_server import AnthropicServer, Fault
from instruct_global_tests.fixtures.llm_testing import FAKE_ANTHROPIC_KEY, anthropic_llm


@pytest.fixture
def server() -> Iterator[AnthropicServer]:
    with AnthropicServer() as running:
        yield running


def test_system_goes_to_the_system_parameter(server: AnthropicServer, tmp_path: Path) -> None:
    server.responder = lambda req: f"[{req.get('system')}] {req['messages'][-1]['content']}"
    llm = anthropic_llm(server, tmp_path / "c.db")
    request = ChatRequest(
        messages=(
            ChatMessage("system", "Be brief."),
            ChatMessage("user", "Hi"),
            ChatMessage("assistant", "Hello."),
            ChatMessage("user", "Translate: cat"),
        ),
        temperature=1.5,
        stop=("END",),
        max_tokens=64,
    )
    [result] = llm.complete([request])
    assert result.ok and result.text == "[Be brief.] Translate: cat" and result.finish_reason == "stop"
    body = server.requests[0][1]
    assert body["system"] == "Be brief."
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert "temperature" not in body and "top_p" not in body  # the current API has no sampling settings
    assert body["stop_sequences"] == ["END"] and body["max_tokens"] == 64
    # claude-haiku-4-5: $1 in / $5 out per 1M tokens
    assert result.cost_usd == pytest.approx((result.input_tokens * 1 + result.output_tokens * 5) / 1e6)


def test_sampling_params_on_request(server: AnthropicServer, tmp_path: Path) -> None:
    llm = anthropic_llm(server, tmp_path / "c.db", send_sampling_params=True)
    llm.complete([ChatRequest.from_prompt("a", temperature=1.5), ChatRequest.from_prompt("b", top_p=0.8)])
    bodies = {b["messages"][0]["content"]: b for _, b in server.requests}
    assert bodies["a"]["temperature"] == 1.0 and "top_p" not in bodies["a"]  # Anthropic's range ends at 1
    assert bodies["b"]["top_p"] == 0.8


def test_n_samples_are_n_requests(server: AnthropicServer, tmp_path: Path) -> None:
    counter = iter(range(100))
    server.responder = lambda req: f"sample {next(counter)}"
    llm = anthropic_llm(server, tmp_path / "c.db")
    [result] = llm.complete([ChatRequest.from_prompt("hi", n=3)])
    assert result.texts == ["sample 0", "sample 1", "sample 2"]
    assert server.counts["messages"] == 3
    [again] = anthropic_llm(server, tmp_path / "c.db").complete([ChatRequest.from_prompt("hi", n=3)])
    assert again.cached and again.texts == result.texts and server.counts["messages"] == 3


def test_max_tokens_stop_reason_becomes_length(server: AnthropicServer, tmp_path: Path) -> None:
    server.responder = lambda req: "a b c d e f"
    server.fail_next(Fault.length())
    [result] = anthropic_llm(server, tmp_path / "c.db").complete([ChatRequest.from_prompt("x", max_tokens=2)])
    assert result.finish_reason == "length" and result.truncated and result.text == "a b"


def test_overloaded_529_and_429_are_retried(server: AnthropicServer, tmp_path: Path) -> None:
    server.fail_next(Fault.overloaded())
    server.fail_next(Fault.rate_limited(retry_after=0.2))
    llm = anthropic_llm(server, tmp_path / "c.db")
    started = time.monotonic()
    [result] = llm.complete([ChatRequest.from_prompt("hello")])
    assert result.ok and server.counts["messages"] == 3 and llm.stats().retries == 2
    assert time.monotonic() - started >= 0.2


def test_a_spend_limit_429_is_not_retried(server: AnthropicServer, tmp_path: Path) -> None:
    def error_body(fault: Fault, api_key: str = "") -> dict[str, Any]:
        error = {"type": fault.error_type, "message": fault.message}
        if fault.code:  # error.details.error_code, the stable cause
            error["details"] = {"error_code": fault.code}
        return {"type": "error", "error": error}

    server.error_body = error_body  # type: ignore[method-assign]
    server.fail_next(Fault(429, "rate_limit_error", "enforced_spend_limit_reached", "Spend limit"), times=5)
    llm = anthropic_llm(server, tmp_path / "c.db")
    [result] = llm.complete([ChatRequest.from_prompt("hello")])
    assert result.error is not None and "enforced_spend_limit_reached" in result.error
    assert server.counts["messages"] == 1 and llm.stats().retries == 0
    # a plain rate limit still is retried
    server.clear_faults()
    server.fail_next(Fault.rate_limited(retry_after=0.01))
    [ok] = llm.complete([ChatRequest.from_prompt("again")])
    assert ok.ok and server.counts["messages"] == 3


def test_a_failed_sample_does_not_cost_the_others_again(server: AnthropicServer, tmp_path: Path) -> None:
    calls = iter(range(100))
    # the third of three samples fails once (transient): the retry sends only that one
    server.fault_hook = lambda body: Fault.overloaded() if next(calls) == 2 else None
    llm = anthropic_llm(server, tmp_path / "c.db")
    [result] = llm.complete([ChatRequest.from_prompt("hi", n=3)])
    assert result.ok and len(result.texts) == 3
    assert server.counts["messages"] == 4  # not 6: the two answered samples were kept

    fresh = iter(range(100))
    server.fault_hook = lambda body: Fault.bad_request("no") if next(fresh) == 1 else None
    [failed] = llm.complete([ChatRequest.from_prompt("fresh", n=2)])
    assert failed.error is not None and server.counts["messages"] == 6
    [retried] = anthropic_llm(server, tmp_path / "c.db").complete([ChatRequest.from_prompt("fresh", n=2)])
    assert retried.ok and len(retried.texts) == 2
    assert server.counts["messages"] == 7  # the re-run pays only for the sample that failed


def test_auth_error_is_final_and_redacted(server: AnthropicServer, tmp_path: Path) -> None:
    server.fail_next(Fault.unauthorized(), times=3)
    [result] = anthropic_llm(server, tmp_path / "c.db").complete([ChatRequest.from_prompt("hello")])
    assert result.error is not None and result.error.startswith("HTTP 401")
    assert FAKE_ANTHROPIC_KEY not in result.error and server.counts["messages"] == 1


def test_malformed_body_is_retried(server: AnthropicServer, tmp_path: Path) -> None:
    server.fail_next(Fault.malformed_json())
    [result] = anthropic_llm(server, tmp_path / "c.db").complete([ChatRequest.from_prompt("hello")])
    assert result.ok and server.counts["messages"] == 2


def test_structured_output_requests(server: AnthropicServer, tmp_path: Path) -> None:
    schema = {"type": "object", "properties": {"score": {"type": "integer"}}}
    llm = anthropic_llm(server, tmp_path / "c.db")
    llm.complete(
        [
            ChatRequest.from_prompt(
                "a", response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": schema}}
            ),
            ChatRequest.from_prompt("b", system="Judge.", response_format={"type": "json_object"}),
        ]
    )
    bodies = {b["messages"][0]["content"]: b for _, b in server.requests}
    assert bodies["a"]["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert bodies["b"]["system"].startswith("Judge.") and "JSON" in bodies["b"]["system"]
