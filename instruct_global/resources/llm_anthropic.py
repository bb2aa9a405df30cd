"""Anthropic's Messages API, with Message Batches. The ``anthropic`` SDK is imported lazily."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field

from instruct_global.lib.common.llm_types import ChatRequest
from instruct_global.lib.common.preflight import Problem, endpoint_problem
from instruct_global.lib.common.retry import CallError
from instruct_global.resources.llm import Answer, BatchOutcome, LLMResource, merge_answers
from instruct_global.resources.llm_openai import OFFLINE_LLM_FIX

# Anthropic stop reasons in OpenAI's vocabulary, which ChatResult uses
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "content_filter",
    "tool_use": "tool_calls",
}
JSON_ONLY_INSTRUCTION = "Answer with one JSON object and nothing else."


def answer_from_message(data: dict[str, Any], headers: dict[str, str] | None = None) -> Answer:
    if not isinstance(data, dict) or not isinstance(data.get("content"), list):
        raise ValueError("expected a message object with a content list")
    text = "".join(block.get("text", "") for block in data["content"] if block.get("type") == "text")
    usage = data.get("usage") or {}
    stop = data.get("stop_reason") or "unknown"
    return Answer(
        texts=[text],
        finish_reasons=[FINISH_REASONS.get(stop, stop)],
        input_tokens=int(usage.get("input_tokens") or 0),
        output_tokens=int(usage.get("output_tokens") or 0),
        model=data.get("model"),
        response_id=data.get("id"),
        headers=headers or {},
    )


def answer_from_cache_value(value: Mapping[str, Any]) -> Answer:
    return Answer(
        texts=list(value.get("texts") or []),
        finish_reasons=list(value.get("finish_reasons") or []),
        input_tokens=int(value.get("input_tokens") or 0),
        output_tokens=int(value.get("output_tokens") or 0),
        model=value.get("model"),
        response_id=value.get("response_id"),
    )


class AnthropicLLM(LLMResource):
    """Claude through the Messages API (``api_key`` from ``EnvVar("ANTHROPIC_API_KEY")``).

    System messages go to the ``system`` parameter. There is no ``n``: n > 1 sends n requests.
    The current API takes no ``seed``, ``temperature`` or ``top_p``; they are not sent (unless
    ``send_sampling_params``) but still split the cache, so a changed setting is a new call.
    """

    api_key: str = Field(description='Give it as EnvVar("ANTHROPIC_API_KEY"); never as a literal.')
    base_url: str | None = Field(default=None, description="Another endpoint (gateway, proxy, compatible server).")
    send_x_api_key: bool = Field(
        default=True,
        description="Send the key as x-api-key too: the SDK sends only Authorization: Bearer, while Anthropic-"
        "compatible servers and gateways (llm-katan, LiteLLM, ...) read x-api-key.",
    )
    extra_headers: dict[str, str] = Field(
        default_factory=dict,
        description="Headers sent with every request (a gateway's own auth or routing headers); their "
        "values are treated as secrets (redacted from errors).",
    )
    send_sampling_params: bool = Field(
        default=False,
        description="Send temperature/top_p. The current Messages API has none (models sample at their own "
        "settings); older models and some gateways still take them.",
    )

    backend_name: ClassVar[str] = "anthropic"
    supports_batch: ClassVar[bool] = True
    max_batch_requests: ClassVar[int] = 100_000

    def _secrets(self) -> list[str | None]:
        return [self.api_key, *self.extra_headers.values()]

    def preflight_problems(self) -> list[Problem]:
        problem = endpoint_problem(self.base_url or "https://api.anthropic.com", "the Anthropic API", OFFLINE_LLM_FIX)
        return [problem] if problem else []

    def default_headers(self) -> dict[str, str]:
        headers = {"x-api-key": self.api_key} if self.send_x_api_key else {}
        return {**headers, **self.extra_headers}

    def client(self) -> Any:
        def make() -> Any:
            import anthropic  # lazy: only runs that use this backend need the SDK

            return anthropic.Anthropic(
                api_key=self.api_key, base_url=self.base_url, timeout=self.timeout_seconds, max_retries=0,
                default_headers=self.default_headers() or None,
            )  # fmt: skip

        return self._get_client(make)

    def message_params(self, request: ChatRequest, model: str) -> dict[str, Any]:
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        params: dict[str, Any] = {
            "model": model,
            "max_tokens": request.max_tokens,
            "messages": [m.as_dict() for m in request.messages if m.role != "system"],
        }
        if self.send_sampling_params:
            # Anthropic's range is 0..1; models that take top_p refuse it together with temperature
            params["temperature"] = min(request.temperature, 1.0)
            if request.top_p != 1.0:
                params["top_p"] = request.top_p
        if request.stop:
            params["stop_sequences"] = list(request.stop)
        response_format = dict(request.response_format or {})
        if response_format.get("type") == "json_schema":
            schema = (response_format.get("json_schema") or {}).get("schema") or response_format.get("schema")
            params["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
        elif response_format.get("type") == "json_object":
            system = f"{system}\n\n{JSON_ONLY_INSTRUCTION}".strip()
        if system:
            params["system"] = system
        return params

    def _call_one(self, params: dict[str, Any]) -> Answer:
        params = dict(params)
        # parameters this SDK version no longer names travel in the body as they are
        extra = {k: params.pop(k) for k in ("temperature", "top_p") if k in params}
        raw = self.client().messages.with_raw_response.create(**params, extra_body=extra or None)
        # the JSON as sent (no SDK model round trip); a body that is not JSON counts as malformed
        return answer_from_message(
            json.loads(raw.http_response.content), {k.lower(): v for k, v in raw.headers.items()}
        )

    def _call(self, request: ChatRequest, model: str) -> Answer:
        params = self.message_params(request, model)
        if request.n <= 1:
            return self._call_one(params)
        # n samples are n paid calls: each is kept the moment it arrives, so when a later one fails
        # the retry (or the next run) pays only for the samples still missing
        cache = self.cache.get_cache()
        sample_keys = self._sample_keys(request)
        found = cache.get_many(sample_keys)
        parts: list[Answer] = []
        for sample_key in sample_keys:
            if sample_key in found:
                parts.append(answer_from_cache_value(found[sample_key]))
                continue
            answer = self._call_one(params)
            self._keep_sample(sample_key, request, answer, batch=False)
            parts.append(answer)
        return merge_answers(parts)

    def _sample_keys(self, request: ChatRequest) -> list[str]:
        key = self.request_key(request)
        return [hashlib.sha256(f"{key}/sample/{i}".encode()).hexdigest() for i in range(request.n)]

    def _keep_sample(self, sample_key: str, request: ChatRequest, answer: Answer, *, batch: bool) -> None:
        model = self._model_for(request)
        cost = self._cost(answer.model or model, answer.input_tokens, answer.output_tokens, batch=batch)
        try:
            self.cache.get_cache().put(
                sample_key,
                answer.cache_value(cost_usd=cost, batch=batch),
                backend=f"{self.backend_name}/sample",
                model=model,
            )
        except Exception as exc:  # the whole answer is still cached once every sample is in
            self._log().warning(f"could not cache one sample: {self._redact(exc)}")

    # ---- Message Batches --------------------------------------------------------------------------
    @staticmethod
    def _custom_ids(items: dict[str, ChatRequest]) -> dict[str, tuple[str, int]]:
        """custom_id -> (cache key, sample index). IDs must match [a-zA-Z0-9_-]{1,64}."""
        ids: dict[str, tuple[str, int]] = {}
        for key, request in items.items():
            if request.n <= 1:
                ids[key] = (key, 0)
            else:
                for index in range(request.n):
                    ids[f"{key[:48]}-{index}"] = (key, index)
        return ids

    def _batch_submit(self, items: dict[str, ChatRequest], name: str) -> str:
        requests = [
            {"custom_id": custom_id, "params": self.message_params(items[key], self._model_for(items[key]))}
            for custom_id, (key, _) in self._custom_ids(items).items()
        ]
        client = self.client()
        batch = self._with_retries("batch create", lambda: client.messages.batches.create(requests=requests))
        return str(batch.id)

    def _batch_status(self, batch_id: str) -> tuple[bool, str]:
        status = str(self.client().messages.batches.retrieve(batch_id).processing_status)
        return status == "ended", status

    def _batch_collect(self, batch_id: str, items: dict[str, ChatRequest]) -> dict[str, BatchOutcome]:
        ids = self._custom_ids(items)
        samples: dict[str, dict[int, BatchOutcome]] = {}
        for entry in self.client().messages.batches.results(batch_id):
            if entry.custom_id not in ids:
                continue
            key, index = ids[entry.custom_id]
            result = entry.result
            if result.type == "succeeded":
                outcome: BatchOutcome = answer_from_message(result.message.model_dump())
            elif result.type == "errored":
                error = result.error.model_dump() if hasattr(result.error, "model_dump") else {}
                inner = error.get("error") or {}
                outcome = CallError("status", str(inner.get("message") or "errored"), code=inner.get("type"))
            else:  # expired, canceled
                outcome = CallError("other", f"request {result.type} inside the batch", code=result.type)
            samples.setdefault(key, {})[index] = outcome
        outcomes: dict[str, BatchOutcome] = {}
        for key, request in items.items():
            parts = [samples.get(key, {}).get(i) for i in range(max(1, request.n))]
            answers = [p for p in parts if isinstance(p, Answer)]
            if len(answers) == len(parts):
                outcomes[key] = merge_answers(answers)
            else:
                if request.n > 1:  # keep the samples that came back: the retry alone pays only the rest
                    for sample_key, part in zip(self._sample_keys(request), parts, strict=True):
                        if isinstance(part, Answer):
                            self._keep_sample(sample_key, request, part, batch=True)
                outcomes[key] = next(
                    (p for p in parts if isinstance(p, CallError)), CallError("other", "missing")
                )
        return outcomes
