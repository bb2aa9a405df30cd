"""LocalTransformersLLM on a tiny randomly initialised Llama model, on the CPU."""

from __future__ import annotations

from pathlib import Path

import pytest

from instruct_global.lib.common.llm_types import ChatRequest
from instruct_global.resources.call_cache import CallCacheResource
from instruct_global.resources.llm_local import LocalModelError, LocalTransformersLLM
from instruct_global_tests.fixtures.tiny_causal_lm import build_tiny_causal_lm


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny_causal_lm"))


def local_llm(model: Path | str, cache: Path, **kwargs: object) -> LocalTransformersLLM:
    return LocalTransformersLLM(
        model=str(model), cache=CallCacheResource(url=str(cache)), local_files_only=True, **kwargs
    )


def test_generates_batched_on_cpu_and_caches(tiny_lm: Path, tmp_path: Path) -> None:
    llm = local_llm(tiny_lm, tmp_path / "c.db", batch_size=2)
    requests = [
        ChatRequest.from_prompt("Bawo ni?", system="Answer in Yoruba.", temperature=0.0, max_tokens=6),
        ChatRequest.from_prompt(
            "A much longer question so the batch needs left padding", temperature=0.0, max_tokens=6
        ),
        ChatRequest.from_prompt("Third", temperature=0.0, max_tokens=6),
        ChatRequest.from_prompt("Sampled", temperature=0.8, max_tokens=4, n=3, seed=1),
    ]
    results = llm.complete(requests)
    assert all(r.ok or r.texts == [""] for r in results)  # random weights may say nothing printable
    assert [len(r.texts) for r in results] == [1, 1, 1, 3]
    assert all(r.finish_reason in ("stop", "length") for r in results)
    assert all(0 < r.output_tokens <= 6 * len(r.texts) and r.input_tokens > 0 for r in results)
    assert all(r.cost_usd == 0.0 for r in results)
    model, _, device = llm.load()
    assert device == "cpu" and next(model.parameters()).dtype.is_floating_point

    # greedy decoding does not depend on what else is in the batch (left padding works)
    [alone] = local_llm(tiny_lm, tmp_path / "other.db").complete([requests[1]])
    assert alone.texts == results[1].texts and alone.output_tokens == results[1].output_tokens

    again = local_llm(tiny_lm, tmp_path / "c.db").complete(requests)
    assert all(r.cached for r in again) and [r.texts for r in again] == [r.texts for r in results]
    # new weights under the same folder: a new revision label misses the cache
    [retrained] = local_llm(tiny_lm, tmp_path / "c.db", revision="v2").complete(requests[:1])
    assert not retrained.cached


def test_quantization_without_a_gpu_is_a_clear_error(tiny_lm: Path, tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(LocalModelError, match="needs a CUDA GPU"):
        local_llm(tiny_lm, tmp_path / "c.db", quantization="4bit").complete([ChatRequest.from_prompt("x")])
    with pytest.raises(LocalModelError, match="one of"):
        local_llm(tiny_lm, tmp_path / "c.db", quantization="3bit").complete([ChatRequest.from_prompt("x")])


def test_a_model_that_is_not_there_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(LocalModelError, match="hf download some-org/absent-model"):
        local_llm("some-org/absent-model", tmp_path / "c.db").complete([ChatRequest.from_prompt("x")])
    with pytest.raises(LocalModelError, match="there is no folder"):
        local_llm(tmp_path / "missing", tmp_path / "c.db").complete([ChatRequest.from_prompt("x")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(LocalModelError, match=r"lacks config\.json"):
        local_llm(tmp_path / "empty", tmp_path / "c.db").complete([ChatRequest.from_prompt("x")])


def test_nothing_to_do_loads_nothing(tmp_path: Path) -> None:
    llm = local_llm("some-org/absent-model", tmp_path / "c.db")
    assert llm.complete([]) == []
