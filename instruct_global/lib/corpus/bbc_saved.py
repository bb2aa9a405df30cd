"""BBC article pages saved to disk (offline samples, or pages fetched by another tool).

The same main-text extraction as the live scraper runs on each file, so the sample run exercises
the real code path.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from instruct_global.lib.common.http_fetch import decode_bytes, detect_encoding
from instruct_global.lib.corpus.bbc import article_row, extract_article

_CANONICAL = re.compile(r"""<link[^>]+rel=["']canonical["'][^>]*href=["']([^"']+)["']""", re.IGNORECASE)


def iter_saved_articles(
    folder: Path,
    service: str,
    lang: str,
    max_articles: int | None = None,
    *,
    furniture: Counter[str] | None = None,
    remove_furniture: bool = True,
) -> Iterator[dict[str, Any]]:
    """Rows from ``folder/*.html``; the URL is the page's canonical link, else the file's URI.

    Page furniture removed on the way is added to ``furniture`` by kind.
    """
    if not folder.is_dir():
        raise FileNotFoundError(f"saved BBC pages folder {folder} does not exist")
    count = 0
    for path in sorted(folder.glob("*.html")):
        if max_articles is not None and count >= max_articles:
            return
        raw = path.read_bytes()
        html, _ = decode_bytes(raw, detect_encoding(None, raw))
        match = _CANONICAL.search(html)
        url = match.group(1) if match else path.resolve().as_uri()
        article = extract_article(html, url, service=service, remove_furniture=remove_furniture)
        if article is None:
            continue
        if furniture is not None:
            furniture.update(article.furniture)
        count += 1
        yield article_row(url, article, service, lang)
