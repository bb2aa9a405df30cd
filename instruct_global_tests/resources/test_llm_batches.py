"""Batch APIs (OpenAI Batch, Anthropic Message Batches): submit, resume after a crash, partial failures."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from instruct_global.lib.common.call_cache import open_call_cache
from instruct_global.lib.common.llm_types import ChatRequest
from instruct_global.resources.llm import LLMResource
from instruct_global_tests.fixtures.anthropic_server import AnthropicServer
from instruct_global_tests.fixtures.llm_testing import anthropic_llm, openai_llm
from instruct_global_tests.fixtures.openai_server import Fault, OpenAIServer


@pytest.fixture
def openai_server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as running:
        yield running


@pytest.fixture
def anthropic_server() -> Iterator[AnthropicServer]:
    with AnthropicServer() as running:
        yield running


def prompts(*texts: str, **kwargs: object) -> list[ChatRequest]:
    return [ChatRequest.from_prompt(t, **kwargs) for t in texts]  # type: ignore[arg-type]


def batch_states(cache_path: Path) -> list[dict[str, object]]:
    import sqlite3

    with sqlite3.connect(cache_path) as conn:
        return [
            json.loads(v) for (v,) in conn.execute("SELECT value FROM state WHERE name LIKE 'llm-batch/%'")
        ]


def test_openai_batch_answers_at_half_price(openai_server: OpenAIServer, tmp_path: Path) -> None:
    llm = openai_llm(openai_server, tmp_path / "c.db")
    requests = prompts("a", "b", "c", n=2)
    results = llm.complete(requests, use_batch_api=True, batch_name="yor-backtranslation")
    assert [r.texts for r in results] == [[f"echo {i}: {p}" for i in range(2)] for p in "abc"]
    assert openai_server.counts["chat"] == 0
    assert openai_server.counts["files.create"] == 1 and openai_server.counts["batches.create"] == 1
    uploaded = openai_server.files[next(iter(openai_server.files))]
    assert uploaded["purpose"] == "batch"
    first = json.loads(uploaded["data"].decode().splitlines()[0])
    assert first["method"] == "POST" and first["url"] == "/v1/chat/completions"
    assert first["custom_id"] == llm.request_key(requests[0])
    assert first["body"]["n"] == 2 and first["body"]["model"] == "gpt-4o-mini"
    full = (results[0].input_tokens * 0.15 + results[0].output_tokens * 0.60) / 1e6
    assert results[0].cost_usd == pytest.approx(full / 2)
    assert llm.stats().calls == 3
    # cached like any answer
    again = openai_llm(openai_server, tmp_path / "c.db").complete(requests, use_batch_api=True)
    assert all(r.cached for r in again) and openai_server.counts["batches.create"] == 1
    assert batch_states(tmp_path / "c.db")[0]["status"] == "collected"


def test_openai_batch_resumes_after_a_crash_instead_of_resubmitting(
    openai_server: OpenAIServer, tmp_path: Path
) -> None:
    openai_server.batch_statuses = ["validating"] + ["in_progress"] * 6 + ["completed"]
    requests = prompts("x", "y")
    # the first run stops waiting (as a crashed or timed-out run would) with the batch still running
    first = openai_llm(openai_server, tmp_path / "c.db", batch_poll_timeout_seconds=0.02)
    pending = first.complete(requests, use_batch_api=True, batch_name="run")
    assert all(not r.ok and r.error and "run again to resume" in r.error for r in pending)
    [state] = batch_states(tmp_path / "c.db")
    assert state["status"] == "submitted" and str(state["batch_id"]).startswith("batch_")
    assert openai_server.counts["batches.create"] == 1 and openai_server.counts["chat"] == 0

    resumed = openai_llm(openai_server, tmp_path / "c.db").complete(
        requests, use_batch_api=True, batch_name="run"
    )
    assert [r.text for r in resumed] == ["echo: x", "echo: y"]
    assert openai_server.counts["batches.create"] == 1 and openai_server.counts["files.create"] == 1
    assert openai_server.counts["chat"] == 0


def test_openai_batch_items_that_failed_are_retried_alone(
    openai_server: OpenAIServer, tmp_path: Path
) -> None:
    openai_server.batch_item_fault = lambda body: Fault.server_error() if "bad" in json.dumps(body) else None
    openai_server.batch_expire_item = lambda body: "late" in json.dumps(body)
    llm = openai_llm(openai_server, tmp_path / "c.db")
    results = llm.complete(prompts("good 1", "bad", "late", "good 2"), use_batch_api=True)
    assert all(r.ok for r in results)
    assert [r.text for r in results] == ["echo: good 1", "echo: bad", "echo: late", "echo: good 2"]
    retried = [body["messages"][0]["content"] for route, body in openai_server.requests if route == "chat"]
    assert sorted(retried) == ["bad", "late"]
    assert batch_states(tmp_path / "c.db")[0]["failed"] == 2


def test_openai_whole_batch_failure_falls_back_to_normal_calls(
    openai_server: OpenAIServer, tmp_path: Path
) -> None:
    openai_server.batch_statuses = ["validating", "failed"]
    results = openai_llm(openai_server, tmp_path / "c.db").complete(prompts("a", "b"), use_batch_api=True)
    assert all(r.ok for r in results) and openai_server.counts["chat"] == 2


def test_only_misses_go_into_the_batch(openai_server: OpenAIServer, tmp_path: Path) -> None:
    openai_llm(openai_server, tmp_path / "c.db").complete(prompts("a"))
    results = openai_llm(openai_server, tmp_path / "c.db").complete(prompts("a", "b"), use_batch_api=True)
    assert [r.cached for r in results] == [True, False]
    lines = openai_server.files[next(iter(openai_server.files))]["data"].decode().splitlines()
    assert len(lines) == 1


def test_anthropic_message_batch(anthropic_server: AnthropicServer, tmp_path: Path) -> None:
    anthropic_server.batch_item_fault = lambda params: (
        Fault.overloaded() if "bad" in json.dumps(params) else None
    )
    llm = anthropic_llm(anthropic_server, tmp_path / "c.db")
    requests = [*prompts("one", "bad", system="Be brief."), ChatRequest.from_prompt("many", n=2)]
    results = llm.complete(requests, use_batch_api=True, batch_name="hau")
    assert [r.texts for r in results] == [["echo: one"], ["echo: bad"], ["echo: many", "echo: many"]]
    [create] = [body for route, body in anthropic_server.requests if route == "batches.create"]
    ids = [item["custom_id"] for item in create["requests"]]
    assert len(ids) == 4 and all(len(i) <= 64 for i in ids)  # n=2 becomes two batch requests
    assert create["requests"][0]["params"]["system"] == "Be brief."
    # the errored item was retried alone
    assert [b["messages"][0]["content"] for r, b in anthropic_server.requests if r == "messages"] == ["bad"]
    assert results[0].cost_usd == pytest.approx(
        (results[0].input_tokens + 5 * results[0].output_tokens) / 2e6
    )


def test_anthropic_batch_resumes_after_a_crash(anthropic_server: AnthropicServer, tmp_path: Path) -> None:
    anthropic_server.batch_statuses = ["in_progress"] * 5 + ["ended"]
    requests = prompts("p", "q")
    first = anthropic_llm(anthropic_server, tmp_path / "c.db", batch_poll_timeout_seconds=0.02)
    assert all(not r.ok for r in first.complete(requests, use_batch_api=True))
    resumed = anthropic_llm(anthropic_server, tmp_path / "c.db").complete(requests, use_batch_api=True)
    assert [r.text for r in resumed] == ["echo: p", "echo: q"]
    assert anthropic_server.counts["batches.create"] == 1 and anthropic_server.counts["messages"] == 0


def test_state_is_keyed_by_batch_name_and_request_set(openai_server: OpenAIServer, tmp_path: Path) -> None:
    llm = openai_llm(openai_server, tmp_path / "c.db")
    name_a = llm._batch_state_name("yor", ["k1", "k2"])
    assert name_a == llm._batch_state_name("yor", ["k2", "k1"])
    assert name_a != llm._batch_state_name("hau", ["k1", "k2"])
    assert name_a != llm._batch_state_name("yor", ["k1"])
    cache = open_call_cache(str(tmp_path / "c.db"))
    assert cache.get_state(name_a) is None


def test_a_batch_the_provider_forgot_is_answered_by_normal_calls(
    openai_server: OpenAIServer, tmp_path: Path
) -> None:
    openai_server.batch_statuses = ["validating"] + ["in_progress"] * 6 + ["completed"]
    requests = prompts("x", "y")
    openai_llm(openai_server, tmp_path / "c.db", batch_poll_timeout_seconds=0.02).complete(
        requests, use_batch_api=True
    )
    openai_server.batches.clear()  # the stored id now answers 404

    results = openai_llm(openai_server, tmp_path / "c.db").complete(requests, use_batch_api=True)
    assert all(r.ok for r in results) and openai_server.counts["chat"] == 2
    assert batch_states(tmp_path / "c.db")[0]["batch_status"] == "lost"


def test_no_batch_api_on_the_server_falls_back_to_normal_calls(
    openai_server: OpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_files_route(handler: object, raw: bytes) -> None:
        openai_server.send_json(handler, 404, openai_server.error_body(Fault(404, "invalid_request_error")))  # type: ignore[arg-type]

    monkeypatch.setattr(openai_server, "_files_create", no_files_route)
    results = openai_llm(openai_server, tmp_path / "c.db").complete(prompts("a", "b"), use_batch_api=True)
    assert all(r.ok for r in results) and openai_server.counts["chat"] == 2
    assert batch_states(tmp_path / "c.db") == []


class Crash(BaseException):
    """Stands in for a run killed mid-way (not an Exception: nothing may catch it)."""


def test_a_crash_while_collecting_a_batch_resumes_it_instead_of_resubmitting(
    openai_server: OpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests = prompts("a", "b", "c", "d")
    real_store = LLMResource._store
    stored: list[str] = []

    def store_then_crash(self, cache, key, request, answer, *, batch):  # type: ignore[no-untyped-def]
        if len(stored) == 2:
            raise Crash
        stored.append(key)
        return real_store(self, cache, key, request, answer, batch=batch)

    monkeypatch.setattr(LLMResource, "_store", store_then_crash)
    with pytest.raises(Crash):
        openai_llm(openai_server, tmp_path / "c.db").complete(requests, use_batch_api=True, batch_name="run")
    monkeypatch.setattr(LLMResource, "_store", real_store)

    resumed = openai_llm(openai_server, tmp_path / "c.db").complete(
        requests, use_batch_api=True, batch_name="run"
    )
    assert [r.text for r in resumed] == ["echo: a", "echo: b", "echo: c", "echo: d"]
    assert sum(r.cached for r in resumed) == 2
    assert openai_server.counts["batches.create"] == 1 and openai_server.counts["chat"] == 0
    assert [s["status"] for s in batch_states(tmp_path / "c.db")] == ["collected"]


class _NoClient:
    """A handler stand-in that swallows the reply: the answer is lost on the way back."""

    def __init__(self) -> None:
        self.wfile = io.BytesIO()

    def send_response(self, *args: object) -> None: ...

    def send_header(self, *args: object) -> None: ...

    def end_headers(self) -> None: ...


def test_a_batch_create_that_failed_after_creating_is_not_paid_twice(
    openai_server: OpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_handle = openai_server._handle
    lost: list[bool] = []

    def handle(handler, method: str, path: str, raw: bytes) -> None:  # type: ignore[no-untyped-def]
        if method == "GET" and path.rstrip("/").endswith("/batches"):  # list, newest first
            data = [openai_server._batch_object(b) for b in reversed(openai_server.batches)]
            openai_server.send_json(handler, 200, {"object": "list", "data": data, "has_more": False})
        elif method == "POST" and path.rstrip("/").endswith("/batches") and not lost:
            lost.append(True)  # a gateway's 502 after the batch was made
            openai_server._batches_create(_NoClient(), json.loads(raw))  # type: ignore[arg-type]
            openai_server.send_json(handler, 502, openai_server.error_body(Fault.server_error(502)))
        else:
            real_handle(handler, method, path, raw)

    monkeypatch.setattr(openai_server, "_handle", handle)
    results = openai_llm(openai_server, tmp_path / "c.db").complete(prompts("a", "b"), use_batch_api=True)
    assert [r.text for r in results] == ["echo: a", "echo: b"]
    assert len(openai_server.batches) == 1 and openai_server.counts["chat"] == 0


def test_anthropic_batch_keeps_the_samples_that_came_back(
    anthropic_server: AnthropicServer, tmp_path: Path
) -> None:
    seen: list[str] = []

    def one_sample_fails(params: dict[str, object]) -> Fault | None:
        seen.append(json.dumps(params))
        return Fault.overloaded() if len(seen) == 2 else None

    anthropic_server.batch_item_fault = one_sample_fails
    llm = anthropic_llm(anthropic_server, tmp_path / "c.db")
    [result] = llm.complete([ChatRequest.from_prompt("many", n=3)], use_batch_api=True)
    assert result.ok and result.texts == ["echo: many"] * 3
    assert anthropic_server.counts["messages"] == 1  # only the failed sample is sent again
