"""Scraped text inside prompts is data: it goes between tags it cannot close or reopen."""

from __future__ import annotations

import regex

_TAG_RE = regex.compile(r"<\s*(/?)\s*(segment|response|instruction|translation|example)\b[^>]*>", regex.IGNORECASE)


def neutralise_tags(text: str) -> str:
    """Turn any of our delimiter tags inside ``text`` into a harmless look-alike ("‹/segment›")."""
    return _TAG_RE.sub(lambda m: f"‹{m.group(1)}{m.group(2)}›", text)


def delimit(tag: str, text: str) -> str:
    return f"<{tag}>\n{neutralise_tags(text.strip())}\n</{tag}>"
