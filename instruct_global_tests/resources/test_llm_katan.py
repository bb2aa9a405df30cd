"""The OpenAI-compatible and Anthropic resources against llm-katan, a server nobody here wrote."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from instruct_global.lib.common.llm_types import ChatRequest
from instruct_global.resources.call_cache import CallCacheResource
from instruct_global.resources.llm_anthropic import AnthropicLLM
from instruct_global.resources.llm_openai import OpenAICompatibleLLM
from instruct_global_tests.fixtures.llm_katan import ANTHROPIC_KEY, OPENAI_KEY, KatanServer, run_llm_katan
from instruct_global_tests.fixtures.llm_testing import FAST

pytestmark = pytest.mark.slow  # the server takes a few seconds to start


@pytest.fixture(scope="module")
def katan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KatanServer]:
    with run_llm_katan(tmp_path_factory.mktemp("llm_katan")) as server:
        yield server


def _request(text: str, **kwargs: object) -> ChatRequest:
    return ChatRequest.from_prompt(text, system="Be brief.", temperature=0.3, max_tokens=37, **kwargs)


def test_openai_compatible_resource_through_llm_katan(katan: KatanServer, tmp_path: Path) -> None:
    llm = OpenAICompatibleLLM(
        model=katan.model, base_url=f"{katan.root_url}/v1", api_key=OPENAI_KEY,
        cache=CallCacheResource(url=str(tmp_path / "c.db")), **FAST,
    )  # fmt: skip
    assert llm.preflight_problems() == []
    first, second = llm.complete([_request("Bawo ni?"), _request("Sannu")])
    assert first.ok and second.ok, (first.error, second.error)
    # the echo shows what arrived: our parameters and the user's text, in order
    assert "max_tokens=37" in first.text and "temperature=0.3" in first.text
    assert "Bawo ni?" in first.text and "Sannu" in second.text
    assert first.output_tokens > 0 and first.input_tokens > 0
    again = llm.complete([_request("Bawo ni?")])
    assert again[0].cached and again[0].texts == first.texts and llm.stats().calls == 2

    wrong = OpenAICompatibleLLM(
        model=katan.model, base_url=f"{katan.root_url}/v1", api_key="sk-wrong-key-000000000000",
        cache=CallCacheResource(url=str(tmp_path / "w.db")), **FAST,
    )  # fmt: skip
    [refused] = wrong.complete([_request("Bawo ni?")])
    assert not refused.ok and "401" in refused.error and "sk-wrong-key" not in refused.error
    assert wrong.stats().retries == 0  # an auth error is not transient


def _anthropic(katan: KatanServer, tmp_path: Path, name: str, **overrides: object) -> AnthropicLLM:
    config = {"model": katan.model, "api_key": ANTHROPIC_KEY, **FAST, **overrides}
    return AnthropicLLM(base_url=katan.root_url, cache=CallCacheResource(url=str(tmp_path / f"{name}.db")), **config)


def test_anthropic_resource_sends_the_key_as_x_api_key(katan: KatanServer, tmp_path: Path) -> None:
    llm = _anthropic(katan, tmp_path, "a")
    assert llm.preflight_problems() == []
    [answer] = llm.complete([_request("Habari?")])
    assert answer.ok, answer.error
    assert "max_tokens=37" in answer.text and "Habari?" in answer.text and answer.finish_reason == "stop"
    assert answer.output_tokens > 0

    # the SDK's own way alone (Authorization: Bearer) is refused by this server: the reason for the setting
    [refused] = _anthropic(katan, tmp_path, "b", send_x_api_key=False).complete([_request("Habari?")])
    assert not refused.ok and "401" in refused.error and ANTHROPIC_KEY not in refused.error


def test_anthropic_extra_headers_carry_a_gateway_key(katan: KatanServer, tmp_path: Path) -> None:
    # a gateway that wants its key in a header of its own: here the header this server checks
    llm = _anthropic(
        katan, tmp_path, "g", api_key="unused-by-this-gateway", send_x_api_key=False,
        extra_headers={"x-api-key": ANTHROPIC_KEY},
    )  # fmt: skip
    [answer] = llm.complete([_request("Salaam")])
    assert answer.ok, answer.error
    assert "Salaam" in answer.text
    wrong = _anthropic(
        katan, tmp_path, "gw", send_x_api_key=False, extra_headers={"x-api-key": "sk-ant-wrong-header-value-99"}
    )
    [refused] = wrong.complete([_request("Salaam")])
    assert not refused.ok and "sk-ant-wrong-header-value-99" not in refused.error  # header values are redacted
