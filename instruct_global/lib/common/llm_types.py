"""Typed LLM requests and results shared by every backend (OpenAI, Anthropic, local...)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion. ``model=None`` means the resource's configured model."""

    messages: tuple[ChatMessage, ...]
    model: str | None = None
    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 1024
    n: int = 1
    stop: tuple[str, ...] = ()
    seed: int | None = None
    # {"type": "json_object"} or {"type": "json_schema", "json_schema": {...}}
    response_format: Mapping[str, Any] | None = None

    @classmethod
    def from_prompt(cls, prompt: str, *, system: str | None = None, **kwargs: Any) -> ChatRequest:
        msgs = [ChatMessage("system", system)] if system else []
        msgs.append(ChatMessage("user", prompt))
        return cls(messages=tuple(msgs), **kwargs)

    def cache_params(self) -> dict[str, Any]:
        """Every setting that changes the answer; part of the cache key."""
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "n": self.n,
            "stop": list(self.stop),
            "seed": self.seed,
            "response_format": dict(self.response_format) if self.response_format else None,
        }

    def cache_payload(self) -> list[dict[str, str]]:
        return [m.as_dict() for m in self.messages]


@dataclass
class ChatResult:
    texts: list[str] = field(default_factory=list)  # one per choice (n)
    finish_reasons: list[str] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    cached: bool = False
    error: str | None = None  # provider message, secrets redacted; set when the item failed

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.texts)

    @property
    def text(self) -> str | None:
        return self.texts[0] if self.texts else None

    @property
    def finish_reason(self) -> str | None:
        return self.finish_reasons[0] if self.finish_reasons else None

    @property
    def truncated(self) -> bool:
        return self.finish_reason in ("length", "max_tokens")


def as_requests(items: Sequence[ChatRequest | str]) -> list[ChatRequest]:
    return [ChatRequest.from_prompt(i) if isinstance(i, str) else i for i in items]
