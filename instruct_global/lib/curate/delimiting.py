"""Scraped text inside prompts is data: it goes between tags it cannot close or reopen."""

from __future__ import annotations

import regex

# Zero-width and other invisible format characters a page can hide inside a tag ("</seg\u200bment>").
INVISIBLE = r"[\u200b-\u200f\u2060\ufeff]"
# "<" in any width a model reads as one: ASCII, fullwidth (U+FF1C), small form (U+FE64); likewise ">".
_OPEN, _CLOSE = "[<\uff1c\ufe64]", "[>\uff1e\ufe65]"
_TAG_RE = regex.compile(
    rf"{_OPEN}(?:\s|{INVISIBLE})*(/?)(?:\s|{INVISIBLE})*(segment|response|instruction|translation|example)\b"
    rf"[^>\uff1e\ufe65]*{_CLOSE}",
    regex.IGNORECASE,
)


def neutralise_tags(text: str) -> str:
    """Turn any of our delimiter tags inside ``text`` into a harmless look-alike ("‹/segment›")."""
    return _TAG_RE.sub(lambda m: f"‹{m.group(1)}{m.group(2)}›", text)


def delimit(tag: str, text: str) -> str:
    return f"<{tag}>\n{neutralise_tags(text.strip())}\n</{tag}>"
