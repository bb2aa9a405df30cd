"""Context/continuation tokenization exactly as lm-evaluation-harness's HF causal models do it.

Trailing spaces of the context move to the continuation; the whole string is encoded and the
continuation is whatever follows the separately encoded context. Special tokens follow the
tokenizer's default, except that a string already starting with the BOS text gets none.
"""

from __future__ import annotations

from typing import Any

DEFAULT_MAX_LENGTH = 2048
_TOKENIZER_INFINITY = 1000000000000000019884624838656


def prefix_token_id(tokenizer: Any) -> int:
    return tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id


def encode(tokenizer: Any, text: str) -> list[int]:
    kwargs = {}
    if text.startswith(tokenizer.decode(prefix_token_id(tokenizer))):
        kwargs["add_special_tokens"] = False
    return list(tokenizer.encode(text, **kwargs))


def encode_pair(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    if not context:
        return [prefix_token_id(tokenizer)], encode(tokenizer, continuation)
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = encode(tokenizer, context + continuation)
    context_ids = encode(tokenizer, context)
    return context_ids, whole[len(context_ids) :]


def encode_pairs(tokenizer: Any, context: str, continuations: list[str]) -> list[tuple[list[int], list[int]]]:
    """``encode_pair`` for many continuations of one context, the context encoded once (same ids)."""
    if not context:
        return [encode_pair(tokenizer, context, c) for c in continuations]
    n_spaces = len(context) - len(context.rstrip())
    head = context[:-n_spaces] if n_spaces else context
    tail = context[-n_spaces:] if n_spaces else ""
    context_ids = encode(tokenizer, head)
    return [(context_ids, encode(tokenizer, head + tail + c)[len(context_ids) :]) for c in continuations]


def max_length(model: Any, tokenizer: Any) -> int:
    config = getattr(model.config, "text_config", None) or model.config
    for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(config, attr, None)
        if value is not None:
            return int(value)
    limit = getattr(tokenizer, "model_max_length", None)
    if limit is not None and limit != _TOKENIZER_INFINITY:
        return int(limit)
    return DEFAULT_MAX_LENGTH
