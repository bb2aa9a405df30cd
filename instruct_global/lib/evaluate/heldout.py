"""Loss and perplexity of held-out target-language responses under a causal LM.

Each test example is the chat template of its messages; only the assistant turn's tokens
(everything after the generation prompt, end-of-turn marker included) are scored, conditioned on
the system and user turns. The loss is the mean negative log-likelihood per scored token over
the whole split, so long responses weigh by their length; perplexity is its exponential.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class HeldoutLoss:
    loss: float
    perplexity: float
    tokens: int
    examples: int


def response_token_split(tokenizer: Any, messages: Sequence[dict[str, str]]) -> tuple[list[int], list[int]]:
    """(prompt ids, response ids) of one example under the tokenizer's chat template."""
    prompt = tokenizer.apply_chat_template(list(messages[:-1]), tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(list(messages), tokenize=False)
    prompt_ids = tokenizer.encode(prompt, add_special_tokens=False)
    if full.startswith(prompt):
        full_ids = tokenizer.encode(full, add_special_tokens=False)
        if full_ids[: len(prompt_ids)] == prompt_ids:
            return prompt_ids, full_ids[len(prompt_ids) :]
        return prompt_ids, tokenizer.encode(full[len(prompt) :], add_special_tokens=False)
    # a template that renders the last turn differently: score the assistant content itself
    return prompt_ids, tokenizer.encode(messages[-1]["content"], add_special_tokens=False)


def heldout_loss(
    model: Any, tokenizer: Any, examples: Sequence[Sequence[dict[str, str]]], max_tokens: int = 2048
) -> HeldoutLoss:
    import torch

    total_nll, total_tokens = 0.0, 0
    with torch.inference_mode():
        for messages in examples:
            prompt_ids, response_ids = response_token_split(tokenizer, messages)
            ids = (prompt_ids + response_ids)[-max_tokens:]
            n_response = min(len(response_ids), len(ids) - 1)
            if n_response <= 0:
                continue
            logits = model(torch.tensor([ids[:-1]], device=model.device)).logits[0].float()
            logprobs = torch.log_softmax(logits[-n_response:], dim=-1)
            target = torch.tensor(ids[-n_response:], device=logprobs.device)
            total_nll -= float(logprobs.gather(1, target[:, None]).double().sum())
            total_tokens += n_response
    if not total_tokens:
        return HeldoutLoss(float("nan"), float("nan"), 0, len(examples))
    loss = total_nll / total_tokens
    return HeldoutLoss(loss, math.exp(min(loss, 700.0)), total_tokens, len(examples))
