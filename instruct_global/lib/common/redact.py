"""Remove secrets from text before it reaches a log, metadata, an exception or the cache."""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[REDACTED]"

# shapes of credentials a provider may echo back in an error message
_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(
        r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_\-]{6,}"
    ),  # OpenAI, Anthropic (sk-ant-...), most compatible servers
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=\-]{6,}"),
    # header and field names, quoted as JSON or as a Python dict repr, with an optional auth scheme
    re.compile(
        r"(?i)\b(api[_-]?key|x-api-key|authorization|access[_-]?token|refresh[_-]?token|client[_-]?secret)"
        r"([\"']?\s*[:=]\s*[\"']?(?:(?:bearer|token|basic)\s+)?)[^\s\"',;]{4,}"
    ),
    re.compile(r"(?i)\btoken\s+[A-Za-z0-9._~+/=\-]{16,}"),  # "Authorization: Token <key>" (Label Studio)
    re.compile(r"AIza[0-9A-Za-z_\-]{20,}"),  # Google API keys
)


def redact(
    text: object, secrets: Iterable[str | None] = (), extra_patterns: Iterable[re.Pattern[str]] = ()
) -> str:
    """``text`` as a string with every known secret and every credential-shaped token masked.

    Known secrets are replaced first (longest first so a key that contains another is masked
    whole); patterns catch keys the caller did not know about, such as one echoed by a server.
    """
    out = str(text)
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        out = out.replace(secret, REDACTED)
    for pattern in (*_PATTERNS, *extra_patterns):
        if pattern.groups >= 2:
            out = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", out)
        else:
            out = pattern.sub(REDACTED, out)
    return out
