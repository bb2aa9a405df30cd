"""Where review sheets of backtranslated pairs go out and come back (beside the translated rows' ones)."""

from __future__ import annotations

from pathlib import Path

from instruct_global.lib.translate.review_paths import ReviewPaths


def curated_review_paths(data_dir: Path, lang: str) -> ReviewPaths:
    """<data dir>/review/curated/{outbox,inbox,store,processed}: the same round trip as translated rows."""
    return ReviewPaths(data_dir / "review" / "curated", lang)
