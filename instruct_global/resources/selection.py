"""Which backends a deployment uses, chosen from environment variables when definitions load.

Only the *choice* (backend and model names, URLs, limits) is read here; secrets stay ``EnvVar``
references that Dagster resolves at run time, so no key is ever read, logged or stored by us.

| variable | values (default first) |
|---|---|
| INSTRUCT_GLOBAL_LLM | local, openai, openai-compatible, anthropic, llamacpp |
| INSTRUCT_GLOBAL_LLM_MODEL | per backend: Qwen/Qwen2.5-1.5B-Instruct, gpt-4o-mini, (required), claude-haiku-4-5, embedded (or a .gguf path) |
| INSTRUCT_GLOBAL_LLM_BASE_URL | openai-compatible: e.g. http://localhost:8000/v1 (vLLM), http://localhost:11434/v1 (Ollama); anthropic: a gateway |
| INSTRUCT_GLOBAL_LLM_CONCURRENCY / _RPM / _TPM | requests in flight; requests and tokens per minute |
| INSTRUCT_GLOBAL_LLM_THREADS | llamacpp: CPU threads (default: every core) |
| INSTRUCT_GLOBAL_JUDGE_LLM (+ _MODEL, _BASE_URL, _API_KEY, _CONCURRENCY, _RPM, _TPM) | the self-curation judge (`judge_llm`); unset: the generator itself |
| INSTRUCT_GLOBAL_TRANSLATOR | nllb, google, none (offline: the stages that need MT step aside) |
| INSTRUCT_GLOBAL_NLLB_MODEL | facebook/nllb-200-distilled-600M (or a local folder) |
| GOOGLE_CLOUD_PROJECT, INSTRUCT_GLOBAL_GOOGLE_LOCATION | google: project id; location (global) |
| OPENAI_API_KEY, ANTHROPIC_API_KEY, INSTRUCT_GLOBAL_LLM_API_KEY | secrets, read at run time only |
| GOOGLE_APPLICATION_CREDENTIALS | google: the standard credentials file |
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster import EnvVar

from instruct_global.lib.common.embedded_model import EMBEDDED_MODEL
from instruct_global.resources.call_cache import CallCacheResource
from instruct_global.resources.llm import LLMResource
from instruct_global.resources.llm_anthropic import AnthropicLLM
from instruct_global.resources.llm_llamacpp import LlamaCppLLM
from instruct_global.resources.llm_local import LocalTransformersLLM
from instruct_global.resources.llm_openai import OpenAIChatLLM, OpenAICompatibleLLM
from instruct_global.resources.translation import TranslatorResource
from instruct_global.resources.translation_google import GoogleTranslator
from instruct_global.resources.translation_nllb import NLLBTranslator
from instruct_global.resources.translation_none import NoTranslator

LLM_BACKENDS = ("local", "openai", "openai-compatible", "anthropic", "llamacpp")
TRANSLATORS = ("nllb", "google", "none")
DEFAULT_MODELS = {
    "local": "Qwen/Qwen2.5-1.5B-Instruct", "openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5",
    "llamacpp": EMBEDDED_MODEL,
}  # fmt: skip


class BackendSelectionError(ValueError):
    pass


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str:
    value = env.get(name, allowed[0]).strip().lower() or allowed[0]
    if value not in allowed:
        raise BackendSelectionError(f"{name}={value!r} is not one of: {', '.join(allowed)}")
    return value


def _int(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise BackendSelectionError(f"{name} must be a whole number, got {raw!r}") from None


def select_llm(env: Mapping[str, str], cache: CallCacheResource, prefix: str = "INSTRUCT_GLOBAL_LLM") -> LLMResource:
    """The LLM named by ``<prefix>``, ``<prefix>_MODEL``, ``<prefix>_BASE_URL`` ... (see the table)."""
    backend = _choice(env, prefix, LLM_BACKENDS)
    model = env.get(f"{prefix}_MODEL") or DEFAULT_MODELS.get(backend)
    if not model:
        raise BackendSelectionError(f"{prefix}=openai-compatible needs {prefix}_MODEL")
    limits: dict[str, Any] = {
        k: v for k, v in {
            "max_concurrency": _int(env, f"{prefix}_CONCURRENCY"),
            "requests_per_minute": _int(env, f"{prefix}_RPM"),
            "tokens_per_minute": _int(env, f"{prefix}_TPM"),
        }.items() if v is not None
    }  # fmt: skip
    if backend == "openai":
        return OpenAIChatLLM(model=model, cache=cache, api_key=EnvVar("OPENAI_API_KEY"), **limits)
    if backend == "anthropic":
        # a gateway or Anthropic-compatible server (its own headers go in the resource config)
        base_url = env.get("INSTRUCT_GLOBAL_LLM_BASE_URL") or None
        return AnthropicLLM(
            model=model, cache=cache, api_key=EnvVar("ANTHROPIC_API_KEY"), base_url=base_url, **limits
        )
    if backend == "llamacpp":
        # concurrency is the number of decoding slots: threads beyond them would only queue
        slots = limits.pop("max_concurrency", None)
        extra: dict[str, Any] = {"n_parallel": slots, "max_concurrency": slots} if slots else {}
        threads = _int(env, f"{prefix}_THREADS")
        if threads:  # fewer than the cores on a busy machine: llama.cpp's threads wait on each other
            extra["n_threads"] = threads
        return LlamaCppLLM(model=model, cache=cache, **extra, **limits)
    if backend == "openai-compatible":
        base_url = env.get(f"{prefix}_BASE_URL")
        if not base_url:
            raise BackendSelectionError(f"{prefix}=openai-compatible needs {prefix}_BASE_URL")
        key = EnvVar(f"{prefix}_API_KEY") if env.get(f"{prefix}_API_KEY") else None
        return OpenAICompatibleLLM(model=model, cache=cache, base_url=base_url, api_key=key, **limits)
    return LocalTransformersLLM(model=model, cache=cache, **limits)


def select_judge_llm(env: Mapping[str, str], cache: CallCacheResource, generator: LLMResource) -> LLMResource:
    """The self-curation judge: its own backend when INSTRUCT_GLOBAL_JUDGE_LLM is set, else the generator."""
    if not env.get("INSTRUCT_GLOBAL_JUDGE_LLM", "").strip():
        return generator
    return select_llm(env, cache, prefix="INSTRUCT_GLOBAL_JUDGE_LLM")


def select_translator(env: Mapping[str, str], cache: CallCacheResource) -> TranslatorResource:
    backend = _choice(env, "INSTRUCT_GLOBAL_TRANSLATOR", TRANSLATORS)
    if backend == "none":
        return NoTranslator(cache=cache)
    if backend == "google":
        if not env.get("GOOGLE_CLOUD_PROJECT"):
            raise BackendSelectionError("INSTRUCT_GLOBAL_TRANSLATOR=google needs GOOGLE_CLOUD_PROJECT")
        return GoogleTranslator(
            cache=cache, project_id=EnvVar("GOOGLE_CLOUD_PROJECT"),
            location=env.get("INSTRUCT_GLOBAL_GOOGLE_LOCATION", "global"),
        )
    return NLLBTranslator(
        cache=cache, model_name=env.get("INSTRUCT_GLOBAL_NLLB_MODEL", "facebook/nllb-200-distilled-600M")
    )


def select_resources(env: Mapping[str, str]) -> dict[str, Any]:
    cache = CallCacheResource()
    llm = select_llm(env, cache)
    return {
        "call_cache": cache, "llm": llm, "judge_llm": select_judge_llm(env, cache, llm),
        "translator": select_translator(env, cache),
    }


def llm_pool(env: Mapping[str, str]) -> str:
    """Concurrency pool of LLM steps: the one-GPU pool for an in-process model (transformers, llama.cpp:
    one at a time, they take the machine's memory and cores), else the API pool."""
    return "gpu" if _choice(env, "INSTRUCT_GLOBAL_LLM", LLM_BACKENDS) in ("local", "llamacpp") else "llm_api"


def translation_pool(env: Mapping[str, str]) -> str:
    """Concurrency pool of translation steps: NLLB runs on the GPU, Google is an API."""
    return "gpu" if _choice(env, "INSTRUCT_GLOBAL_TRANSLATOR", TRANSLATORS) == "nllb" else "translation_api"
