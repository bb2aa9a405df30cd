"""Stable row ids: a hash of the content and origin that produced a row."""

from __future__ import annotations

import hashlib
import json


def stable_id(*parts: object) -> str:
    """The same parts give the same id in every run, so caches, reviews and re-runs line up."""
    material = json.dumps([str(p) for p in parts], ensure_ascii=False)
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:20]
