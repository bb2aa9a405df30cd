"""OpenAI chat completions, and any server that speaks the same protocol (vLLM, Ollama, TGI,
llama.cpp server). The ``openai`` SDK is imported only when the first call is made.
"""

from __future__ import annotations

import io
import json
from typing import Any, ClassVar, Literal

from pydantic import Field

from instruct_global.lib.common.llm_types import ChatRequest
from instruct_global.lib.common.preflight import Problem, endpoint_problem, http_server_problem
from instruct_global.lib.common.retry import CallError
from instruct_global.resources.llm import Answer, BatchOutcome, LLMResource, answer_from_completion

BATCH_ENDPOINT = "/v1/chat/completions"
OFFLINE_LLM_FIX = (
    "check the network or proxy; offline, use INSTRUCT_GLOBAL_LLM=llamacpp (the embedded GGUF model, or "
    "INSTRUCT_GLOBAL_LLM_MODEL=<path of a .gguf file>) or INSTRUCT_GLOBAL_LLM=openai-compatible with "
    "INSTRUCT_GLOBAL_LLM_BASE_URL of a local server (vLLM, Ollama, llama.cpp server)"
)
_FINISHED = {"completed", "failed", "expired", "cancelled"}


def _response_class() -> type:
    """The HTTP response type the installed SDK returns raw (httpx2 since openai 3, httpx before)."""
    try:
        import httpx2

        return httpx2.Response
    except ImportError:  # pragma: no cover - older SDKs
        import httpx

        return httpx.Response


class OpenAIChatLLM(LLMResource):
    """OpenAI's chat completions API (``api_key`` from ``EnvVar("OPENAI_API_KEY")``), with Batch."""

    api_key: str = Field(description='Give it as EnvVar("OPENAI_API_KEY"); never as a literal.')
    base_url: str | None = Field(
        default=None, description="Another endpoint (proxy, Azure-compatible gateway)."
    )
    organization: str | None = None
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = Field(
        default="max_completion_tokens",
        description='Name of the output-length parameter: newer OpenAI models need "max_completion_tokens".',
    )

    send_sampling_params: bool = Field(
        default=True,
        description="Send temperature/top_p; False for reasoning models (o-series, gpt-5) that reject them.",
    )

    backend_name: ClassVar[str] = "openai"
    supports_batch: ClassVar[bool] = True

    def _secrets(self) -> list[str | None]:
        return [self.api_key]

    def preflight_problems(self) -> list[Problem]:
        url = self.base_url or "https://api.openai.com/v1"
        problem = endpoint_problem(url, "the OpenAI API", OFFLINE_LLM_FIX)
        return [problem] if problem else []

    def _api_key_or_placeholder(self) -> str:
        return self.api_key

    def client(self) -> Any:
        def make() -> Any:
            import openai  # lazy: only runs that use this backend need the SDK

            return openai.OpenAI(
                api_key=self._api_key_or_placeholder(),
                base_url=self.base_url,
                organization=self.organization,
                timeout=self.timeout_seconds,
                max_retries=0,  # our own retries: counted, paced, same policy for every backend
            )

        return self._get_client(make)

    def chat_params(self, request: ChatRequest, model: str) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": model,
            "messages": request.cache_payload(),
            self.max_tokens_param: request.max_tokens,
        }
        if self.send_sampling_params:
            params["temperature"] = request.temperature
            params["top_p"] = request.top_p
        if request.n != 1:
            params["n"] = request.n
        if request.stop:
            params["stop"] = list(request.stop)
        if request.seed is not None:
            params["seed"] = request.seed
        if request.response_format:
            params["response_format"] = dict(request.response_format)
        return params

    def _call(self, request: ChatRequest, model: str) -> Answer:
        client = self.client()
        # the SDK's documented raw call (client.post + cast_to=<Response>): auth, timeouts and
        # typed errors as usual, but no per-call transform of typed params, which costs as much
        # CPU as everything else together and bounds throughput at high concurrency; a
        # compatible server also gets its own extra params through untouched
        response = client.post(
            "/chat/completions", body=self.chat_params(request, model), cast_to=_response_class()
        )
        # a body that is not JSON raises ValueError, which counts as malformed (retried)
        return answer_from_completion(
            json.loads(response.content), {k.lower(): v for k, v in response.headers.items()}
        )

    # ---- Batch API --------------------------------------------------------------------------------
    def _batch_submit(self, items: dict[str, ChatRequest], name: str) -> str:
        lines = [
            json.dumps(
                {
                    "custom_id": key,
                    "method": "POST",
                    "url": BATCH_ENDPOINT,
                    "body": self.chat_params(r, self._model_for(r)),
                },
                ensure_ascii=False,
            )
            for key, r in items.items()
        ]
        payload = ("\n".join(lines) + "\n").encode("utf-8")
        client = self.client()
        upload = self._with_retries(
            "batch file upload",
            lambda: client.files.create(
                file=(f"{name}.jsonl", io.BytesIO(payload), "application/jsonl"), purpose="batch"
            ),
        )
        tries = 0

        def create() -> Any:
            nonlocal tries
            tries += 1
            if tries > 1:
                # the failed try (a timeout, a gateway's 5xx) may have created the batch all the
                # same: take that one rather than paying for every request in it twice
                existing = self._batch_for_input_file(client, upload.id)
                if existing is not None:
                    return existing
            return client.batches.create(
                input_file_id=upload.id,
                endpoint=BATCH_ENDPOINT,
                completion_window="24h",
                metadata={"instruct_global_batch": name[:500]},
            )

        batch = self._with_retries("batch create", create)
        return str(batch.id)

    @staticmethod
    def _batch_for_input_file(client: Any, file_id: str) -> Any:
        """The batch made from ``file_id`` among the newest ones, if any (None when unknown)."""
        try:
            page = client.batches.list(limit=100)
        except Exception:  # cannot tell: creating again is what a retry did before
            return None
        return next((b for b in page.data if getattr(b, "input_file_id", None) == file_id), None)

    def _batch_status(self, batch_id: str) -> tuple[bool, str]:
        status = str(self.client().batches.retrieve(batch_id).status)
        return status in _FINISHED, status

    def _batch_collect(self, batch_id: str, items: dict[str, ChatRequest]) -> dict[str, BatchOutcome]:
        client = self.client()
        batch = client.batches.retrieve(batch_id)
        outcomes: dict[str, BatchOutcome] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            for line in client.files.content(file_id).text.splitlines():
                if not line.strip():
                    continue
                item = json.loads(line)
                key = item.get("custom_id")
                if key not in items:
                    continue
                outcomes[key] = self._batch_item_outcome(item)
        return outcomes

    @staticmethod
    def _batch_item_outcome(item: dict[str, Any]) -> BatchOutcome:
        response = item.get("response") or {}
        body = response.get("body") or {}
        if response.get("status_code") == 200 and not item.get("error"):
            try:
                return answer_from_completion(body)
            except ValueError as exc:
                return CallError("malformed", str(exc))
        error = item.get("error") or body.get("error") or {}
        return CallError(
            "status" if response else "other",
            str(error.get("message") or "failed inside the batch"),
            status=response.get("status_code"),
            code=error.get("code"),
        )


class OpenAICompatibleLLM(OpenAIChatLLM):
    """A self-hosted or third-party server with the OpenAI chat API (vLLM, Ollama, TGI, llama.cpp).

    No batch API: ``use_batch_api=True`` falls back to normal concurrent calls.
    """

    base_url: str = Field(
        description="e.g. http://localhost:8000/v1 (vLLM), http://localhost:11434/v1 (Ollama)"
    )
    api_key: str | None = Field(default=None, description="Only if the server wants one (EnvVar).")  # type: ignore[assignment]
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = Field(
        default="max_tokens", description="Most compatible servers read max_tokens."
    )

    backend_name: ClassVar[str] = "openai_compatible"
    supports_batch: ClassVar[bool] = False

    def preflight_problems(self) -> list[Problem]:
        problem = http_server_problem(
            self.base_url, "the OpenAI-compatible server",
            "start it (e.g. `vllm serve <model>`, `ollama serve`, `llama-server -m <file.gguf>`) or set "
            "INSTRUCT_GLOBAL_LLM_BASE_URL to where it listens; without a server, INSTRUCT_GLOBAL_LLM=llamacpp "
            "runs a GGUF model in-process",
        )  # fmt: skip
        return [problem] if problem else []

    def _api_key_or_placeholder(self) -> str:
        # the SDK insists on a key (else it reads OPENAI_API_KEY); servers without auth ignore it
        return self.api_key or "not-needed"
