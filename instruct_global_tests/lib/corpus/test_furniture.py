"""Page furniture on pages in the real BBC structure: >= 90 % of furniture lines gone, >= 95 % of
article lines kept, per language, through the saved-pages path and ``clean_corpus``.

The figures print with ``pytest -s``; the "before" column is the same pipeline with furniture
removal switched off (what the corpus held before: chrome and boilerplate removal only).
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from instruct_global.languages import LANGUAGES, get_language
from instruct_global.lib.corpus.bbc_labels import SERVICE_LABELS, label_matcher, line_key
from instruct_global.lib.corpus.bbc_saved import iter_saved_articles
from instruct_global.lib.corpus.cleaning import CleaningConfig, clean_corpus
from instruct_global.lib.corpus.documents import documents_frame
from instruct_global.lib.corpus.furniture import (
    FurnitureConfig,
    learn_recurring,
    line_prefix,
    remove_furniture,
)
from instruct_global_tests.fixtures.bbc_furniture_pages import SERVICES, FurniturePage, build_pages

LANG_OF_SERVICE = {lang.bbc_service: key for key, lang in LANGUAGES.items() if lang.bbc_service}
PAGES_PER_SERVICE = 40


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", " ".join(text.split()))


def _run(folder: Path, service: str, furniture: bool) -> tuple[dict[str, list[str]], Counter[str], dict]:
    lang = get_language(LANG_OF_SERVICE[service])
    counts: Counter[str] = Counter()
    rows = list(iter_saved_articles(folder, service, lang.key, furniture=counts, remove_furniture=furniture))
    docs = documents_frame(rows, extra_columns=("published", "service"))
    config = CleaningConfig(max_tokens=4096, min_chars=20, min_words=3, remove_furniture=furniture, min_lid_score=0.0)
    result = clean_corpus(docs, lang, config)
    lines: dict[str, list[str]] = {}
    for url, text in zip(result.clean["url"], result.clean["text"], strict=True):
        lines.setdefault(url.rsplit("/", 1)[-1], []).extend(_nfc(x) for x in text.split("\n") if x.strip())
    return lines, counts, result.stats


def _run_text(pages: list[FurniturePage], service: str, furniture: bool) -> dict[str, list[str]]:
    """Cleaning alone, on text that still holds every line of the page body (no structure left)."""
    lang = get_language(LANG_OF_SERVICE[service])
    rows = [
        {"doc_id": p.article_id, "lang": lang.key, "source": "bbc", "url": f"https://www.bbc.com/{service}/articles/{p.article_id}",
         "title": "", "text": "\n".join(p.naive_lines), "license": "x", "retrieved_at": "now"}
        for p in pages
    ]
    config = CleaningConfig(max_tokens=4096, min_chars=20, min_words=3, remove_furniture=furniture, min_lid_score=0.0)
    result = clean_corpus(pd.DataFrame(rows), lang, config)
    lines: dict[str, list[str]] = {}
    for doc_id, text in zip(result.clean["doc_id"], result.clean["text"], strict=True):
        lines.setdefault(doc_id, []).extend(_nfc(x) for x in text.split("\n") if x.strip())
    return lines


def _figures(pages: list[FurniturePage], lines: dict[str, list[str]]) -> tuple[float, float, int, int]:
    furniture_total = furniture_left = article_total = article_kept = 0
    for page in pages:
        out = lines.get(page.article_id, [])
        out_set = set(out)
        for line in page.article_lines:
            article_total += 1
            article_kept += _nfc(line) in out_set
        for item, parts in page.furniture:
            furniture_total += 1
            item_n = _nfc(item)
            left = any(item_n in o for o in out) or any(_nfc(p) in out_set for p in parts if p.strip())
            furniture_left += left
    return (1 - furniture_left / furniture_total, article_kept / article_total, furniture_total, article_total)


@pytest.mark.slow
@pytest.mark.parametrize("service", sorted(SERVICES))
def test_furniture_is_removed_and_article_text_kept(service: str, tmp_path: Path) -> None:
    pages = build_pages(service, PAGES_PER_SERVICE)
    folder = tmp_path / service
    folder.mkdir()
    for page in pages:  # saved test pages, read back through the saved-pages path
        (folder / f"{page.article_id}.html").write_text(page.html, encoding="utf-8")

    before, _, _ = _run(folder, service, furniture=False)
    after, structural, stats = _run(folder, service, furniture=True)
    gone_before, kept_before, n_furniture, n_article = _figures(pages, before)
    gone, kept, _, _ = _figures(pages, after)
    print(
        f"\n[furniture] {service} ({LANG_OF_SERVICE[service]}): {n_furniture} furniture lines, {n_article} article "
        f"lines in {len(pages)} pages | furniture removed {gone:.1%} (before: {gone_before:.1%}) | "
        f"article lines kept {kept:.1%} (before: {kept_before:.1%}) | structural {dict(structural)} | "
        f"cleaning {stats['furniture_lines_by_kind']}"
    )
    # The same pages as flat text (structure lost, e.g. text from another scraper): cleaning alone.
    text_gone_before, text_kept_before, _, _ = _figures(pages, _run_text(pages, service, furniture=False))
    text_gone, text_kept, _, _ = _figures(pages, _run_text(pages, service, furniture=True))
    print(
        f"[furniture] {service} as flat text, cleaning only: furniture removed {text_gone:.1%} "
        f"(before: {text_gone_before:.1%}) | article lines kept {text_kept:.1%} (before: {text_kept_before:.1%})"
    )
    assert text_kept >= 0.95 and text_gone > text_gone_before + 0.3
    assert gone >= 0.90, f"{service}: only {gone:.1%} of furniture lines removed"
    assert kept >= 0.95, f"{service}: only {kept:.1%} of article lines kept"
    # the drop counts reach the metadata (here extraction already took nearly everything)
    assert sum(structural.values()) > 0 and isinstance(stats["furniture_lines_removed"], int)
    assert set(stats["furniture_lines_by_kind"]) == {"service_label", "recurring_line", "recurring_prefix"}


def test_every_registry_language_with_a_service_has_its_labels() -> None:
    services = {lang.bbc_service for lang in LANGUAGES.values() if lang.bbc_service}
    assert services <= set(SERVICE_LABELS)
    for service in services:
        matcher = label_matcher(service)
        assert matcher is not None and matcher.prefixes and matcher.lines


@pytest.mark.parametrize(
    ("service", "line", "furniture"),
    [
        ("yoruba", "Oríṣun àwòrán, Facebook/Koiki Media", True),
        ("yoruba", "Àwọn iròyin tì ẹ leè ní ìfẹ̀ síí:", True),
        ("hausa", "Asalin hoton, Reuters", True),
        ("hausa", "Bayanan hoto, Wasu mata a kasuwar Kurmi", True),
        ("hausa", "Karin bayani:", True),
        ("hausa", "Kauce wa Twitter", True),
        ("hausa", "Marubuci, Aisha Sani", True),
        ("hausa", "Bayanin da ya bayar ya nuna cewa an samu ci gaba a fannin noma a bana.", False),
        ("hausa", "Karin bayanin da gwamnati ta fitar ya ce za a bude makarantu.", False),
        ("swahili", "Chanzo cha picha, Getty Images", True),
        ("swahili", "Maelezo ya video, Wakazi wa Mombasa", True),
        ("swahili", "Maelezo zaidi yalitolewa na waziri wa afya jana jioni mjini Dodoma.", False),
        ("amharic", "የፎቶው ባለመብት, Reuters", True),
        ("gahuza", "Ahavuye isanamu, AFP", True),
        ("afaanoromoo", "Madda suuraa, BBC", True),
        ("tigrinya", "ምንጪ ስእሊ, Getty Images", True),
        ("somali", "Xigashada Sawirka, Reuters", True),
        ("igbo", "Ebe foto si, AFP", True),
        ("pidgin", "Wia dis foto come from, Getty Images", True),
        ("pidgin", "Di state governor tok say work go start for di new road.", False),
    ],
)
def test_service_labels(service: str, line: str, furniture: bool) -> None:
    matcher = label_matcher(service)
    assert matcher is not None and matcher.is_furniture(line) is furniture


def test_recurring_lines_and_prefixes_are_learnt_per_corpus() -> None:
    credits = ["Reuters", "AFP", "Getty Images", "BBC", "EPA"]  # each in 6 of 30 documents: not a line
    credit_lines = [f"Hoto daga, {c}" for c in credits]
    docs = [
        f"Labari na {i} ya ce an bude sabuwar makaranta a garin {i} domin yara su samu ilimi.\n"
        f"{credit_lines[i % 5]}\nKu latsa nan domin kallon bidiyon\nWani sakin layi na musamman {i * 7}."
        for i in range(30)
    ]
    docs += docs[:5]  # exact duplicates count once
    config = FurnitureConfig(min_docs=10, min_share=0.2)
    learnt = learn_recurring(docs, config)
    assert learnt.documents == 30
    assert line_key("Ku latsa nan domin kallon bidiyon") in learnt.lines  # NFC text: same key
    assert "hoto daga" in learnt.prefixes
    counts: Counter[str] = Counter()
    cleaned = remove_furniture(docs[4], learnt, None, config, counts)
    assert cleaned.split("\n") == [docs[4].split("\n")[0], docs[4].split("\n")[3]]
    assert counts == {"recurring_line": 1, "recurring_prefix": 1}
    # too few documents: nothing is furniture
    assert not learn_recurring(docs[:9], config).lines


def test_prefixes_need_a_short_line_and_few_words() -> None:
    assert line_prefix("asalin hoton, reuters", 6) == "asalin hoton"
    assert line_prefix("ya ce: za mu dawo", 6) == "ya ce"
    assert line_prefix("wannan jumla ce mai tsawo da ba ta da waƙafi", 6) is None
    assert line_prefix("a b c d e f g h, i", 6) is None


def test_furniture_thresholds_are_configurable_and_wikipedia_keeps_label_words() -> None:
    lang = get_language("hau")
    texts = [f"Talla\nLabari mai lamba {i} game da kasuwar Kano da manoma da 'yan kasuwa suka yi magana." for i in range(12)]
    frame = pd.DataFrame(
        [{"doc_id": f"w{i}", "lang": "hau", "source": "wikipedia", "url": f"u{i}", "title": "t", "text": t,
          "license": "x", "retrieved_at": "now"} for i, t in enumerate(texts)]
    )
    loose = clean_corpus(frame, lang, CleaningConfig(min_words=3, min_lid_score=0.0, furniture_min_docs=20))
    assert loose.stats["furniture_lines_removed"] == 0  # 12 documents < 20: no statistics, no labels
    strict = clean_corpus(frame, lang, CleaningConfig(min_words=3, min_lid_score=0.0, furniture_min_docs=10))
    assert strict.stats["furniture_lines_by_kind"]["recurring_line"] == 12
    assert not strict.clean["text"].str.contains("Talla").any()
