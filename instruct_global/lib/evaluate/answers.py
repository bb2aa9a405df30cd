"""Answers of a local causal LM (base, or base + LoRA adapter) to chat prompts, through the call cache.

The cache key holds the model id, a hash of the adapter's files, the generation settings and the
messages, so a re-materialisation finds every answer and never loads the model; a retrained
adapter (new weights, new hash) is asked again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from instruct_global.lib.common.call_cache import CallCache, cache_key

BACKEND = "transformers-generate"
_ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")

Messages = Sequence[Mapping[str, str]]


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int = 128
    do_sample: bool = False  # greedy: the same model gives the same answer, so the cache is exact
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0
    batch_size: int = 8


def adapter_hash(adapter_dir: str | Path | None) -> str:
    """SHA-256 of the adapter's config and weights ("" without an adapter)."""
    if not adapter_dir:
        return ""
    folder = Path(adapter_dir)
    digest = hashlib.sha256()
    found = False
    for name in _ADAPTER_FILES:
        path = folder / name
        if path.is_file():
            found = True
            digest.update(name.encode())
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    if not found:
        raise FileNotFoundError(f"{folder}: no adapter_config.json / adapter_model.* to load the adapter from")
    return digest.hexdigest()[:20]


def generate_answers(model: Any, tokenizer: Any, prompts: Sequence[Messages], settings: GenerationSettings) -> list[str]:
    """Greedy (or seeded sampled) answers, batched with left padding; only the new tokens decoded."""
    import torch

    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    suppressed = sorted(set(tokenizer.all_special_ids) - {tokenizer.eos_token_id})
    answers: list[str] = []
    for start in range(0, len(prompts), settings.batch_size):
        batch = prompts[start : start + settings.batch_size]
        texts = [tokenizer.apply_chat_template(list(m), tokenize=False, add_generation_prompt=True) for m in batch]
        encoded = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        kwargs: dict[str, Any] = {"max_new_tokens": settings.max_new_tokens, "do_sample": settings.do_sample,
                                  "pad_token_id": tokenizer.pad_token_id}  # fmt: skip
        if suppressed:  # role and padding tokens never belong in an answer (only the end-of-turn token does)
            kwargs["suppress_tokens"] = suppressed
        if settings.do_sample:
            torch.manual_seed(settings.seed + start)
            kwargs.update(temperature=settings.temperature, top_p=settings.top_p)
        with torch.no_grad():
            output = model.generate(**encoded, **kwargs)
        new_tokens = output[:, encoded["input_ids"].shape[1] :]
        answers += [t.strip() for t in tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]
    return answers


@dataclass
class CachedRun:
    answers: list[str]
    generated: int  # answers the model had to write (0 on a re-run)


def cached_answers(
    cache: CallCache,
    model_id: str,
    adapter: str,
    settings: GenerationSettings,
    prompts: Sequence[Messages],
    generate: Callable[[Sequence[Messages]], list[str]],
) -> CachedRun:
    """Answers from the cache; ``generate`` is called once, only for the prompts missing there."""
    params = {k: v for k, v in asdict(settings).items() if k != "batch_size"} | {"adapter_sha256": adapter}
    keys = [cache_key(BACKEND, model_id, params, [dict(m) for m in messages]) for messages in prompts]
    found = cache.get_many(keys)
    missing = [i for i, k in enumerate(keys) if k not in found]
    if missing:
        fresh = generate([prompts[i] for i in missing])
        items = {keys[i]: {"text": text} for i, text in zip(missing, fresh, strict=True)}
        cache.put_many(items, backend=BACKEND, model=model_id)
        found.update(items)
    return CachedRun([found[k]["text"] for k in keys], len(missing))
