"""The self-curation judge: the generator unless INSTRUCT_GLOBAL_JUDGE_LLM names another backend."""

from __future__ import annotations

import pytest

from instruct_global.resources.selection import BackendSelectionError, select_resources


def test_judge_defaults_to_the_generator() -> None:
    resources = select_resources({"INSTRUCT_GLOBAL_LLM": "openai"})
    assert resources["judge_llm"] is resources["llm"]


def test_judge_can_be_another_backend_and_model() -> None:
    resources = select_resources({
        "INSTRUCT_GLOBAL_LLM": "openai-compatible", "INSTRUCT_GLOBAL_LLM_MODEL": "llama3",
        "INSTRUCT_GLOBAL_LLM_BASE_URL": "http://127.0.0.1:11434/v1",
        "INSTRUCT_GLOBAL_JUDGE_LLM": "anthropic", "INSTRUCT_GLOBAL_JUDGE_LLM_MODEL": "claude-sonnet-4-5",
        "INSTRUCT_GLOBAL_JUDGE_LLM_CONCURRENCY": "2",
    })
    judge, llm = resources["judge_llm"], resources["llm"]
    assert type(judge).__name__ == "AnthropicLLM" and judge.model == "claude-sonnet-4-5"
    assert judge.max_concurrency == 2 and llm.model == "llama3"
    assert judge.cache is llm.cache  # one call cache for both


def test_a_judge_misconfiguration_names_the_judge_variables() -> None:
    with pytest.raises(BackendSelectionError, match="INSTRUCT_GLOBAL_JUDGE_LLM_BASE_URL"):
        select_resources({"INSTRUCT_GLOBAL_JUDGE_LLM": "openai-compatible", "INSTRUCT_GLOBAL_JUDGE_LLM_MODEL": "m"})
