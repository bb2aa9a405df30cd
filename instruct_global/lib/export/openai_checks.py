"""The format checks and cost estimate of OpenAI's chat fine-tuning data-preparation guide.

Errors per example, as in the guide: ``data_type`` (not a dict), ``missing_messages_list``,
``message_missing_key`` (role or content), ``message_unrecognized_key``, ``unrecognized_role``,
``missing_content`` (content not a non-empty string), ``example_missing_assistant_message``;
plus what the API enforces on upload: a per-example token limit and at least 10 examples.

Tokens are counted like the guide's ``num_tokens_from_messages``: 3 per message, every value
encoded, 1 more per ``name``, 3 for the reply's priming. The charge is
``n_epochs × sum(min(limit, tokens))``, with the guide's default-epochs rule.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

KNOWN_MESSAGE_KEYS = frozenset({"role", "content", "name", "function_call", "weight"})
KNOWN_ROLES = frozenset({"system", "user", "assistant", "function"})
DEFAULT_MAX_TOKENS_PER_EXAMPLE = 16_385
MIN_EXAMPLES = 10

# the guide's default-epochs rule
TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25_000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1


def format_errors(example: Any) -> list[str]:
    """Every format error of one example (empty list: it passes)."""
    if not isinstance(example, Mapping):
        return ["data_type"]
    messages = example.get("messages")
    if not messages or not isinstance(messages, list):
        return ["missing_messages_list"]
    errors: list[str] = []
    for message in messages:
        if not isinstance(message, Mapping):
            errors.append("data_type")
            continue
        if "role" not in message or "content" not in message:
            errors.append("message_missing_key")
        if any(key not in KNOWN_MESSAGE_KEYS for key in message):
            errors.append("message_unrecognized_key")
        if message.get("role") not in KNOWN_ROLES:
            errors.append("unrecognized_role")
        content, function_call = message.get("content"), message.get("function_call")
        if (not content and not function_call) or not isinstance(content, str) or not content.strip():
            errors.append("missing_content")
    if not any(isinstance(m, Mapping) and m.get("role") == "assistant" for m in messages):
        errors.append("example_missing_assistant_message")
    return errors


def count_message_tokens(messages: Sequence[Mapping[str, Any]], encoding: Any) -> int:
    total = 0
    for message in messages:
        total += TOKENS_PER_MESSAGE
        for key, value in message.items():
            total += len(encoding.encode(str(value), disallowed_special=()))
            if key == "name":
                total += TOKENS_PER_NAME
    return total + 3


def count_assistant_tokens(messages: Sequence[Mapping[str, Any]], encoding: Any) -> int:
    return sum(
        len(encoding.encode(str(m.get("content", "")), disallowed_special=()))
        for m in messages
        if m.get("role") == "assistant"
    )


def default_epochs(n_examples: int) -> int:
    if n_examples <= 0:
        return 0
    if n_examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        return min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // n_examples)
    if n_examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        return max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n_examples)
    return TARGET_EPOCHS


@dataclass
class ChatDataReport:
    n_examples: int
    errors: Counter[str]
    first_errors: list[str]  # "example 3: missing_content" for the first few
    too_long: int
    token_counts: list[int] = field(default_factory=list)
    assistant_token_counts: list[int] = field(default_factory=list)
    max_tokens_per_example: int = DEFAULT_MAX_TOKENS_PER_EXAMPLE
    min_examples: int = MIN_EXAMPLES

    @property
    def enough_examples(self) -> bool:
        return self.n_examples >= self.min_examples

    @property
    def passed(self) -> bool:
        return not self.errors and self.too_long == 0 and self.enough_examples

    @property
    def n_epochs(self) -> int:
        return default_epochs(self.n_examples)

    @property
    def billing_tokens(self) -> int:
        return sum(min(self.max_tokens_per_example, n) for n in self.token_counts)

    @property
    def charged_tokens(self) -> int:
        return self.n_epochs * self.billing_tokens

    def problems(self) -> list[str]:
        out = [f"{name}: {count}" for name, count in sorted(self.errors.items())]
        if self.too_long:
            out.append(f"over {self.max_tokens_per_example} tokens: {self.too_long}")
        if not self.enough_examples:
            out.append(f"only {self.n_examples} examples; OpenAI needs at least {self.min_examples}")
        return out


def check_chat_examples(
    examples: Sequence[Any],
    encoding: Any,
    *,
    max_tokens_per_example: int = DEFAULT_MAX_TOKENS_PER_EXAMPLE,
    min_examples: int = MIN_EXAMPLES,
    keep_first: int = 5,
) -> ChatDataReport:
    errors: Counter[str] = Counter()
    first: list[str] = []
    counts: list[int] = []
    assistant: list[int] = []
    for index, example in enumerate(examples):
        found = format_errors(example)
        errors.update(found)
        if found and len(first) < keep_first:
            first.append(f"example {index}: {', '.join(sorted(set(found)))}")
        if not found:
            counts.append(count_message_tokens(example["messages"], encoding))
            assistant.append(count_assistant_tokens(example["messages"], encoding))
    return ChatDataReport(
        n_examples=len(examples),
        errors=errors,
        first_errors=first,
        too_long=sum(1 for n in counts if n > max_tokens_per_example),
        token_counts=counts,
        assistant_token_counts=assistant,
        max_tokens_per_example=max_tokens_per_example,
        min_examples=min_examples,
    )
