"""The JSON object of a model's answer: schema mode, or a model that chose JSON, fenced or not."""

from __future__ import annotations

import json
from typing import Any

import regex

_FENCE_RE = regex.compile(r"^\s*```[A-Za-z0-9_-]*[ \t]*\n(.*?)\n?```\s*$", regex.DOTALL)


def json_answer(text: str) -> dict[str, Any] | None:
    """The object the answer starts with (after an optional code fence), else None; never raises."""
    body = text.strip()
    fence = _FENCE_RE.match(body)
    if fence:
        body = fence.group(1).strip()
    if not body.startswith("{"):
        return None
    try:
        value, _end = json.JSONDecoder().raw_decode(body)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None
