"""Rebuild the offline sample inputs from data/samples/documents_<lang>.jsonl.

Odd-numbered documents become articles of a small Wikipedia dump in the real MediaWiki export
schema (data/samples/wikipedia/<wiki>wiki-sample-pages-articles.xml.bz2); even-numbered ones
become saved pages in the BBC page structure (data/samples/bbc/<service>/<id>.html) with the
navigation, "related" blocks and banners the extractor must drop; a document's own furniture
lines (sample-012's menu, share, related, follow, cookie and footer lines) go into such blocks
too, each line of the page in its own element. The sample job then runs the
same dump parser and article extractor as a live run.

    .venv/bin/python scripts/build_sample_inputs.py
"""

from __future__ import annotations

import bz2
import html
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from instruct_global.languages import get_language  # noqa: E402
from instruct_global.lib.corpus.normalise import is_boilerplate_line  # noqa: E402

SAMPLES = ROOT / "data" / "samples"
EXPORT_NS = "http://www.mediawiki.org/xml/export-0.10/"


@dataclass(frozen=True)
class WikiWords:
    """The wiki's own words in the markup: an internal link, the infobox's name field, the
    category and file namespaces, and the title of the redirect page."""

    link: str
    name_field: str
    category_ns: str
    category: str
    file_ns: str
    redirect_title: str


# yor and hau share the Yoruba words the first samples were built with, so their shipped dumps
# stay byte-identical; a language with its own entry gets its wiki's namespace names.
YORUBA_WORDS = WikiWords("Àpẹẹrẹ", "orúkọ", "Ẹ̀ka", "Àpẹẹrẹ", "File", "Àtúnjúwe")
WIKI_WORDS = {
    "swh": WikiWords("Mfano", "jina", "Jamii", "Mifano", "Picha", "Kielekezo"),
}


def _wikitext(doc: dict, words: WikiWords) -> str:
    # A little real markup, so the sample run exercises the wikitext-to-text conversion.
    paragraphs = doc["text"].split("\n\n")
    link = f"[[{words.link}|{words.link.lower()}]]"
    body = "\n\n".join(f"{p} {link}" if i == 0 else p for i, p in enumerate(paragraphs))
    return (
        "{{Infobox|" + words.name_field + "=" + doc["title"] + "}}\n" + body
        + f"<ref>instruct-global sample</ref>\n\n[[{words.category_ns}:{words.category}]]\n[[en:Sample]]"
    )


def write_dump(docs: list[dict], wiki: str, words: WikiWords, path: Path) -> None:
    pages = []
    for number, doc in enumerate(docs, start=1):
        pages.append(
            f"  <page>\n    <title>{escape(doc['title'])}</title>\n    <ns>0</ns>\n    <id>{number}</id>\n"
            f"    <revision>\n      <id>{1000 + number}</id>\n      <timestamp>2026-11-01T00:00:00Z</timestamp>\n"
            f"      <model>wikitext</model>\n      <format>text/x-wiki</format>\n"
            f'      <text bytes="{len(doc["text"].encode())}" xml:space="preserve">{escape(_wikitext(doc, words))}</text>\n'
            f"    </revision>\n  </page>\n"
        )
    redirect = (
        f"  <page>\n    <title>{escape(words.redirect_title)}</title>\n    <ns>0</ns>\n    <id>9001</id>\n"
        f'    <redirect title="{escape(docs[0]["title"])}" />\n    <revision>\n      <id>9901</id>\n'
        f"      <text xml:space=\"preserve\">#REDIRECT [[{escape(docs[0]['title'])}]]</text>\n    </revision>\n  </page>\n"
    )
    xml = (
        f'<mediawiki xmlns="{EXPORT_NS}" version="0.10" xml:lang="{wiki}">\n  <siteinfo>\n'
        f"    <sitename>Wikipedia</sitename>\n    <dbname>{wiki}wiki</dbname>\n"
        f"    <base>https://{wiki}.wikipedia.org/wiki/Main_Page</base>\n    <namespaces>\n"
        '      <namespace key="0" case="first-letter" />\n'
        f'      <namespace key="6" case="first-letter">{escape(words.file_ns)}</namespace>\n'
        f'      <namespace key="14" case="first-letter">{escape(words.category_ns)}</namespace>\n'
        "    </namespaces>\n  </siteinfo>\n"
        + "".join(pages) + redirect + "</mediawiki>\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bz2.compress(xml.encode("utf-8")))


PAGE = """<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{title} - BBC News {service}</title>
<link rel="canonical" href="https://www.bbc.com/{service}/articles/{article_id}"></head>
<body>
<div class="cookie-banner" id="consent">We use cookies to give you the best online experience. Accept all cookies</div>
<header><nav><ul><li><a href="/{service}">Home</a></li><li><a href="/{service}/topics">Topics</a></li>
<li><a href="/{service}/popular">Most read</a></li></ul></nav></header>
<main><article>
<h1>{title}</h1>
<time datetime="2026-11-{day:02d}T09:00:00Z">{day} November 2026</time>
{paragraphs}
</article>
<aside><h2>Related Topics</h2><ul><li><a href="/{service}/topics/c1">Top stories</a></li></ul></aside>
</main>
<footer><p>© 2026 BBC. The BBC is not responsible for the content of external sites.</p></footer>
</body></html>
"""


def _furniture_block(line: str, service: str) -> str:
    """The element a real BBC page keeps a furniture line in: the menu in a nav, share buttons in
    their own block, related topics and "follow us" in asides, the cookie notice in its banner,
    the copyright and a bare URL in the footer."""
    text = html.escape(line)
    lowered = line.casefold()
    if "|" in line:
        items = "".join(
            f'<li><a href="/{service}/topics/m{i}">{html.escape(item.strip())}</a></li>'
            for i, item in enumerate(line.split("|")) if item.strip()
        )
        return f"<nav><ul>{items}</ul></nav>"
    if line.startswith("©") or "://" in line:
        return f"<footer><p>{text}</p></footer>"
    if "cookie" in lowered or "vidakuzi" in lowered:
        return f'<div class="cookie-banner" id="consent-notice"><p>{text}</p></div>'
    if lowered.startswith("share"):
        return f'<div data-component="share-tools"><button type="button">{text}</button></div>'
    return f"<aside><h2>{text}</h2></aside>"


def _page_body(text: str, service: str) -> str:
    # Every line is its own block, as on a real page: prose lines in <p>, furniture lines (what the
    # cleaner's line filter calls boilerplate) where a real page keeps them. One <p> for a whole
    # paragraph would join its furniture lines to the prose, and nothing would remove them.
    blocks = []
    for line in (line.strip() for line in text.split("\n")):
        if not line:
            continue
        block = _furniture_block(line, service) if is_boilerplate_line(line) else f"<p>{html.escape(line)}</p>"
        if blocks and blocks[-1].endswith("</footer>") and block.startswith("<footer>"):
            block = blocks.pop().removesuffix("</footer>") + block.removeprefix("<footer>")  # one footer
        blocks.append(block)
    return "\n".join(blocks)


def write_bbc_page(doc: dict, service: str, lang: str, folder: Path, day: int) -> None:
    article_id = "c" + doc["doc_id"].replace("-", "")
    paragraphs = _page_body(doc["text"], service)
    page = PAGE.format(
        lang=lang, title=html.escape(doc["title"]), service=service, article_id=article_id,
        paragraphs=paragraphs, day=day,
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{article_id}.html").write_text(page, encoding="utf-8")


def main() -> None:
    for source in sorted(SAMPLES.glob("documents_*.jsonl")):
        lang = get_language(source.stem.removeprefix("documents_"))
        docs = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
        # Wikipedia titles are unique: a repeated sample title (the deliberate duplicates) gets a suffix
        titles: set[str] = set()
        for doc in docs:
            while doc["title"] in titles:
                doc["title"] += " (2)"
            titles.add(doc["title"])
        wiki_docs = docs[0::2]
        bbc_docs = docs[1::2]
        wiki = lang.require("wikipedia_code", "Wikipedia")
        words = WIKI_WORDS.get(lang.key, YORUBA_WORDS)
        write_dump(wiki_docs, wiki, words, SAMPLES / "wikipedia" / f"{wiki}wiki-sample-pages-articles.xml.bz2")
        service = lang.require("bbc_service", "BBC News")
        folder = SAMPLES / "bbc" / service
        for old in folder.glob("*.html"):
            old.unlink()
        for day, doc in enumerate(bbc_docs, start=1):
            write_bbc_page(doc, service, lang.key, folder, day)
        print(f"{lang.key}: {len(wiki_docs)} articles in the dump, {len(bbc_docs)} BBC pages")


if __name__ == "__main__":
    main()
