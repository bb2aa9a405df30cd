"""LLM backends as Dagster resources; assets are typed with ``LLMResource``.

``complete(requests)`` answers a list of ``ChatRequest`` in order. Every request is first looked
up in the call cache (key: backend, model, generation settings, messages); only misses are sent,
concurrently (``max_concurrency`` threads), paced by a client-side rate limiter and retried with
backoff on transient failures (429, 5xx, 529, timeouts, malformed bodies). Each answer is written
to the cache the moment it arrives, so a crash loses nothing already paid for. A failed item comes
back as ``ChatResult(error=...)`` (secrets redacted) and is not cached, so a re-run tries again.

``use_batch_api=True`` sends the misses through the provider's batch API (OpenAI Batch, Anthropic
Message Batches: half price, results within 24 h). The batch id is stored in the cache's state
table before polling, so a re-run after a crash resumes the same batch instead of paying twice.

This module holds the base class and the shared machinery only. The implementations import it and
live in their own modules: ``OpenAIChatLLM`` and ``OpenAICompatibleLLM`` (``llm_openai``),
``AnthropicLLM`` (``llm_anthropic``), ``LocalTransformersLLM`` (``llm_local``); ``selection.py``
chooses one from the environment.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, TypeVar

from dagster import Config, ConfigurableResource, get_dagster_logger
from pydantic import Field, PrivateAttr

from instruct_global.lib.common.accounting import CallStats
from instruct_global.lib.common.call_cache import CallCache, cache_key
from instruct_global.lib.common.llm_types import ChatRequest, ChatResult
from instruct_global.lib.common.preflight import Problem, raise_if_problems
from instruct_global.lib.common.pricing import ModelPrice, call_cost
from instruct_global.lib.common.rate_limit import RateLimiter, estimate_tokens
from instruct_global.lib.common.redact import redact
from instruct_global.lib.common.retry import (
    MAX_RETRY_AFTER_SECONDS,
    CallError,
    RetryPolicy,
    backoff_delay,
    is_transient,
    parse_retry_after,
)
from instruct_global.resources.call_cache import CallCacheResource

__all__ = ["Answer", "BatchOutcome", "LLMResource", "ModelPriceConfig", "answer_from_completion", "merge_answers"]

T = TypeVar("T")


class ModelPriceConfig(Config):
    """USD per million tokens for one model (list price; batch calls are billed half)."""

    input_per_million: float
    output_per_million: float


@dataclass
class Answer:
    """One provider answer, as stored in the cache (raw texts: parsing is never cached)."""

    texts: list[str]
    finish_reasons: list[str]
    input_tokens: int = 0
    output_tokens: int = 0
    model: str | None = None  # the model that served it (may be a dated snapshot)
    response_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # rate-limit hints; not cached

    def cache_value(self, *, cost_usd: float, batch: bool) -> dict[str, Any]:
        return {
            "texts": self.texts,
            "finish_reasons": self.finish_reasons,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "model": self.model,
            "response_id": self.response_id,
            "cost_usd": cost_usd,
            "batch": batch,
            "created_at": time.time(),
        }


def answer_from_completion(
    data: Any, headers: dict[str, str] | None = None, *, model: str | None = None, source: str = "the response"
) -> Answer:
    """An ``Answer`` from an OpenAI chat.completion object as JSON: an online response, a batch output line,
    or what an OpenAI-format server such as llama.cpp returns (``model`` overrides the one it names)."""
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a JSON object, got {type(data).__name__}")
    choices = sorted(data.get("choices") or [], key=lambda c: c.get("index", 0))
    if not choices:
        raise ValueError(f"{source} holds no choices")
    usage = data.get("usage") or {}
    return Answer(
        texts=[(c.get("message") or {}).get("content") or "" for c in choices],
        finish_reasons=[c.get("finish_reason") or "unknown" for c in choices],
        input_tokens=int(usage.get("prompt_tokens") or 0),
        output_tokens=int(usage.get("completion_tokens") or 0),
        model=model or data.get("model"),
        response_id=data.get("id"),
        headers=headers or {},
    )


def merge_answers(parts: list[Answer]) -> Answer:
    """n single-sample answers (backends without n > 1) as one answer with n choices."""
    return Answer(
        texts=[t for p in parts for t in p.texts],
        finish_reasons=[f for p in parts for f in p.finish_reasons],
        input_tokens=sum(p.input_tokens for p in parts),
        output_tokens=sum(p.output_tokens for p in parts),
        model=parts[0].model,
        response_id=parts[0].response_id,
        headers=parts[-1].headers,
    )


BatchOutcome = Answer | CallError


class BatchAPIError(RuntimeError):
    """A batch-management call (upload, create, poll, download) failed for good."""

    def __init__(self, what: str, error: CallError, message: str) -> None:
        super().__init__(f"{what} failed: {message}")
        self.error = error


def call_error_from_exception(exc: BaseException) -> CallError:
    """Describe an SDK exception (openai, anthropic: same shapes) without keeping SDK types."""
    name = type(exc).__name__
    if isinstance(exc, TimeoutError) or "Timeout" in name:
        return CallError("timeout", str(exc) or "request timed out")
    status = getattr(exc, "status_code", None)
    response = getattr(exc, "response", None)
    if isinstance(status, int) and response is not None:
        headers = {k.lower(): v for k, v in dict(getattr(response, "headers", {}) or {}).items()}
        body = getattr(exc, "body", None)
        message = getattr(exc, "api_message", None) or getattr(exc, "message", None) or str(exc)
        if isinstance(body, Mapping):
            inner = body.get("error") if isinstance(body.get("error"), Mapping) else body
            message = str(inner.get("message") or message)
        # Anthropic's stable cause (error.details.error_code) first: a spend limit is a 429 whose
        # type is just "rate_limit_error"; then OpenAI's code, then the broad type
        code = getattr(exc, "error_code", None) or getattr(exc, "code", None) or getattr(exc, "type", None)
        return CallError(
            "status",
            message,
            status=status,
            code=str(code) if code else None,
            retry_after=parse_retry_after(headers),
        )
    if "Connection" in name:
        return CallError("connection", str(exc) or "connection error")
    if isinstance(exc, ValueError) or "Validation" in name or "Decode" in name:
        # a 200 whose body is not the JSON we expect: a proxy or server glitch, worth a retry
        return CallError("malformed", f"malformed response body ({name}: {exc})")
    return CallError("other", f"{name}: {exc}")


class LLMResource(ConfigurableResource):
    """Base class of chat-model backends. Subclasses implement ``_call`` (and the batch hooks)."""

    model: str = Field(description="Model name (or local path for LocalTransformersLLM).")
    cache: CallCacheResource
    max_concurrency: int = Field(default=8, ge=1, description="Requests in flight at once.")
    requests_per_minute: int | None = Field(default=None, description="Client-side pacing; None: none.")
    tokens_per_minute: int | None = Field(
        default=None, description="Client-side token pacing (prompt chars/4 + max_tokens); None: none."
    )
    max_retries: int = Field(default=6, ge=0, description="Retries of a transient failure per request.")
    backoff_base_seconds: float = Field(
        default=1.0, ge=0, description="First backoff step (doubles each retry)."
    )
    max_backoff_seconds: float = Field(default=60.0, ge=0, description="Cap of one backoff step.")
    timeout_seconds: float = Field(default=120.0, gt=0, description="Per HTTP request.")
    price_overrides: dict[str, ModelPriceConfig] = Field(
        default_factory=dict, description="Model name -> USD per million input/output tokens."
    )
    batch_poll_interval_seconds: float = Field(default=30.0, gt=0, description="Batch status poll period.")
    batch_poll_timeout_seconds: float = Field(
        default=26 * 3600.0, gt=0, description="Give up waiting (the batch id is kept; a re-run resumes)."
    )

    backend_name: ClassVar[str] = "llm"
    supports_batch: ClassVar[bool] = False
    # True where a JSON schema in response_format is enforced while decoding (a grammar): stages
    # then ask for their exact answer shape, which even a small model cannot get wrong
    enforces_json_schema: ClassVar[bool] = False
    max_batch_requests: ClassVar[int] = 50_000

    _call_stats: CallStats = PrivateAttr(default_factory=CallStats)
    _limiter: RateLimiter | None = PrivateAttr(default=None)
    _client: Any = PrivateAttr(default=None)
    _setup_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    # ---- public API ----------------------------------------------------------------------------
    def complete(
        self, requests: Sequence[ChatRequest], *, use_batch_api: bool = False, batch_name: str | None = None
    ) -> list[ChatResult]:
        """Answers in the order of ``requests``: cached ones first, the rest sent (or batched)."""
        requests = list(requests)
        keys = [self.request_key(r) for r in requests]
        cache = self.cache.get_cache()
        found = cache.get_many(keys)
        results: list[ChatResult | None] = [None] * len(requests)
        pending: dict[str, ChatRequest] = {}
        for index, (key, request) in enumerate(zip(keys, requests, strict=True)):
            if key in found:
                results[index] = self._result_from_cache(found[key])
            else:
                pending.setdefault(key, request)
        self._call_stats.add(cache_hits=sum(r is not None for r in results))

        answered: dict[str, ChatResult] = {}
        online = dict(pending)
        if pending and use_batch_api and self.supports_batch:
            answered, retry_alone = self._complete_with_batches(pending, batch_name or "default", keys)
            online = {k: r for k, r in pending.items() if k in retry_alone}
            for key in pending:
                if key not in answered and key not in retry_alone:
                    answered[key] = ChatResult(
                        error="the batch holding this request has not finished (or could not be polled); "
                        "its id is kept: run again to resume"
                    )
        answered.update(self._complete_online(online))

        seen: set[str] = set()
        for index, key in enumerate(keys):
            if results[index] is None:
                result = answered[key]
                # a duplicate inside one call reuses the answer: not paid twice
                results[index] = (
                    replace(result, cached=True, cost_usd=0.0) if key in seen and result.ok else result
                )
                seen.add(key)
        return [r for r in results if r is not None]

    def stats(self) -> CallStats:
        """Calls, cache hits, retries, failures, tokens and cost since this resource was created."""
        return CallStats(**self._call_stats.as_dict())

    def request_key(self, request: ChatRequest) -> str:
        return cache_key(
            self.backend_name, self._model_for(request), request.cache_params(), request.cache_payload()
        )

    def preflight_problems(self) -> list[Problem]:
        """What this backend lacks to run (model file, server, binding), checked in seconds."""
        return []

    def require_ready(self) -> None:
        """Raise one error listing what this backend lacks (the preflight's LLM checks)."""
        raise_if_problems(self.preflight_problems(), f"the LLM backend {type(self).__name__}")

    # No check in setup_for_execution: some steps hold the LLM only for one of their modes (a hosted
    # fine-tune's answers in human_eval_sheet), and Dagster sets up every resource a step declares.
    # `python -m instruct_global.preflight` (run by make sample / make job) checks before a job starts.

    # ---- hooks for subclasses --------------------------------------------------------------------
    def _call(self, request: ChatRequest, model: str) -> Answer:
        """Send one request (no retries here); raise the SDK's exception on failure."""
        raise NotImplementedError

    def _secrets(self) -> list[str | None]:
        """Values that must never appear in an error message."""
        return []

    def _batch_submit(self, items: dict[str, ChatRequest], name: str) -> str:
        raise NotImplementedError

    def _batch_status(self, batch_id: str) -> tuple[bool, str]:
        """(finished, status) of a batch."""
        raise NotImplementedError

    def _batch_collect(self, batch_id: str, items: dict[str, ChatRequest]) -> dict[str, BatchOutcome]:
        raise NotImplementedError

    # ---- shared machinery -------------------------------------------------------------------------
    def _model_for(self, request: ChatRequest) -> str:
        return request.model or self.model

    def _log(self) -> Any:
        return get_dagster_logger("instruct_global.llm")

    def _redact(self, text: object) -> str:
        return redact(text, self._secrets())

    def _get_limiter(self) -> RateLimiter:
        with self._setup_lock:
            if self._limiter is None:
                self._limiter = RateLimiter(self.requests_per_minute, self.tokens_per_minute)
            return self._limiter

    def _get_client(self, factory: Callable[[], T]) -> T:
        with self._setup_lock:
            if self._client is None:
                self._client = factory()
            return self._client

    def _retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.max_retries, self.backoff_base_seconds, self.max_backoff_seconds)

    def _cost(self, model: str, input_tokens: int, output_tokens: int, *, batch: bool = False) -> float:
        overrides = {
            name: ModelPrice(p.input_per_million, p.output_per_million)
            for name, p in self.price_overrides.items()
        }
        return call_cost(model, input_tokens, output_tokens, batch=batch, overrides=overrides)

    @staticmethod
    def _result_from_cache(value: Mapping[str, Any]) -> ChatResult:
        # cost 0: nothing was paid for this answer in this run
        return ChatResult(
            texts=list(value.get("texts") or []),
            finish_reasons=list(value.get("finish_reasons") or []),
            input_tokens=int(value.get("input_tokens") or 0),
            output_tokens=int(value.get("output_tokens") or 0),
            cost_usd=0.0,
            cached=True,
        )

    def _store(
        self, cache: CallCache, key: str, request: ChatRequest, answer: Answer, *, batch: bool
    ) -> ChatResult:
        """Cache one answer at once and account for it."""
        model = self._model_for(request)
        cost = self._cost(answer.model or model, answer.input_tokens, answer.output_tokens, batch=batch)
        self._call_stats.add(
            calls=1, input_tokens=answer.input_tokens, output_tokens=answer.output_tokens, cost_usd=cost
        )
        try:
            cache.put(
                key, answer.cache_value(cost_usd=cost, batch=batch), backend=self.backend_name, model=model
            )
        except Exception as exc:  # the answer is paid for: hand it back even if it cannot be kept
            self._log().warning(
                f"could not cache an answer (a re-run will pay for it again): {self._redact(exc)}"
            )
        return ChatResult(
            texts=answer.texts,
            finish_reasons=answer.finish_reasons,
            input_tokens=answer.input_tokens,
            output_tokens=answer.output_tokens,
            cost_usd=cost,
        )

    def _complete_online(self, pending: dict[str, ChatRequest]) -> dict[str, ChatResult]:
        if not pending:
            return {}
        cache = self.cache.get_cache()
        workers = min(self.max_concurrency, len(pending))
        if workers == 1:
            return {key: self._execute(cache, key, request) for key, request in pending.items()}
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"llm-{self.backend_name}")
        try:
            futures = {
                key: pool.submit(self._execute, cache, key, request) for key, request in pending.items()
            }
            return {key: future.result() for key, future in futures.items()}
        finally:
            # on an interrupt (run terminated), drop the queue; calls in flight still land in the cache
            pool.shutdown(wait=True, cancel_futures=True)

    def _execute(self, cache: CallCache, key: str, request: ChatRequest) -> ChatResult:
        """One request with pacing and retries; never raises."""
        limiter = self._get_limiter()
        tokens = estimate_tokens(request)
        model = self._model_for(request)
        attempt = 0
        while True:
            limiter.acquire(tokens)
            try:
                answer = self._call(request, model)
            except Exception as exc:
                error = call_error_from_exception(exc)
                if is_transient(error) and attempt < self.max_retries:
                    if error.status == 429 and error.retry_after:
                        # the limit is per key: hold every thread (no longer than we would wait ourselves)
                        limiter.pause_for(min(error.retry_after, MAX_RETRY_AFTER_SECONDS))
                    delay = backoff_delay(attempt, self._retry_policy(), error.retry_after)
                    self._log().debug(
                        f"{self.backend_name}: retry {attempt + 1}/{self.max_retries} in {delay:.2f}s after "
                        f"{self._redact(error.describe())}"
                    )
                    self._call_stats.add(retries=1)
                    time.sleep(delay)
                    attempt += 1
                    continue
                self._call_stats.add(calls=1, failures=1)
                suffix = f" (after {attempt} retries)" if attempt else ""
                return ChatResult(error=self._redact(error.describe() + suffix))
            # paid for: kept before anything else can go wrong with it
            result = self._store(cache, key, request, answer, batch=False)
            try:
                limiter.observe_headers(answer.headers)
            except Exception as exc:  # a hint only; odd header values must not lose the answer
                self._log().debug(f"{self.backend_name}: ignored rate-limit headers: {self._redact(exc)}")
            return result

    def _with_retries(self, what: str, fn: Callable[[], T]) -> T:
        """Retry a batch-management call (upload, create, poll, download) on transient errors."""
        attempt = 0
        while True:
            try:
                return fn()
            except Exception as exc:
                error = call_error_from_exception(exc)
                if not is_transient(error) or attempt >= self.max_retries:
                    raise BatchAPIError(what, error, self._redact(error.describe())) from None
                self._call_stats.add(retries=1)
                time.sleep(backoff_delay(attempt, self._retry_policy(), error.retry_after))
                attempt += 1

    # ---- batch APIs -------------------------------------------------------------------------------
    def _batch_state_name(self, batch_name: str, keys: Sequence[str]) -> str:
        digest = hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:16]
        return f"llm-batch/{self.backend_name}/{batch_name}/{digest}"

    def _complete_with_batches(
        self, pending: dict[str, ChatRequest], batch_name: str, all_keys: Sequence[str]
    ) -> tuple[dict[str, ChatResult], set[str]]:
        """Answers from batches, and the keys to retry alone (failed, expired or missing in a batch).

        A batch's state is named by every request of the call in its group, cached or not: a run
        that crashed while collecting a finished batch (some answers kept, some not) finds the same
        batch again instead of submitting the rest anew.
        """
        cache = self.cache.get_cache()
        log = self._log()
        everything = sorted(set(all_keys))
        groups = [
            everything[i : i + self.max_batch_requests]
            for i in range(0, len(everything), self.max_batch_requests)
        ]
        submitted: list[tuple[str, dict[str, Any], dict[str, ChatRequest]]] = []
        retry_alone: set[str] = set()
        for group in groups:
            members = set(group)
            chunk = {key: request for key, request in pending.items() if key in members}
            if not chunk:
                continue
            name = self._batch_state_name(batch_name, group)
            state = cache.get_state(name)
            if state is not None and state.get("status") != "collected":
                log.info(f"{self.backend_name}: resuming batch {state['batch_id']} ({len(chunk)} requests)")
            else:
                try:
                    batch_id = self._batch_submit(chunk, batch_name)
                except Exception as exc:  # e.g. a server without a batch API: fall back to normal calls
                    log.warning(
                        f"{self.backend_name}: batch submission failed, sending one by one: {self._redact(exc)}"
                    )
                    retry_alone.update(chunk)
                    continue
                state = {
                    "batch_id": batch_id,
                    "backend": self.backend_name,
                    "requests": len(chunk),
                    "submitted_at": time.time(),
                    "status": "submitted",
                }
                # persisted before any polling: a crash from here on resumes this batch
                cache.set_state(name, state)
                log.info(f"{self.backend_name}: submitted batch {batch_id} ({len(chunk)} requests)")
            submitted.append((name, state, chunk))

        answered: dict[str, ChatResult] = {}
        deadline = time.monotonic() + self.batch_poll_timeout_seconds
        for name, state, chunk in submitted:
            batch_id = str(state["batch_id"])
            try:
                finished, status = self._wait_for_batch(batch_id, deadline)
                if not finished:
                    log.warning(
                        f"{self.backend_name}: batch {batch_id} still {status}; run again to resume it"
                    )
                    continue
                outcomes = self._with_retries(
                    "batch download", lambda b=batch_id, c=chunk: self._batch_collect(b, c)
                )
            except BatchAPIError as exc:
                if exc.error.status in (404, 410):  # the provider no longer knows it: submit anew next time
                    cache.set_state(name, {**state, "status": "collected", "batch_status": "lost"})
                    retry_alone.update(chunk)
                log.warning(f"{self.backend_name}: batch {batch_id}: {exc}")
                continue
            failed = 0
            for key, request in chunk.items():
                outcome = outcomes.get(key)
                if isinstance(outcome, Answer):
                    answered[key] = self._store(cache, key, request, outcome, batch=True)
                else:
                    failed += 1
                    retry_alone.add(key)
            cache.set_state(name, {**state, "status": "collected", "batch_status": status, "failed": failed})
            log.info(
                f"{self.backend_name}: batch {batch_id} {status}: {len(chunk) - failed} answered, "
                f"{failed} retried one by one"
            )
        return answered, retry_alone

    def _wait_for_batch(self, batch_id: str, deadline: float) -> tuple[bool, str]:
        while True:
            finished, status = self._with_retries("batch poll", lambda: self._batch_status(batch_id))
            if finished or time.monotonic() >= deadline:
                return finished, status
            time.sleep(min(self.batch_poll_interval_seconds, max(0.0, deadline - time.monotonic())))

