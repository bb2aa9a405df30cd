"""A synthetic Wikipedia dump in the real export schema, for the corpus benchmark.

``write_dump(path, n_articles)`` writes ``<wiki>wiki-...-pages-articles-multistream.xml.bz2``
content: <siteinfo> with localised namespaces, then pages with realistic wikitext (infoboxes with
nested templates, links and piped links, refs with cite templates, tables, lists, headings,
files with captions, categories, interlanguage links, magic words, HTML comments), plus
redirects, pages of other namespaces, exact duplicates under another title, and a share of long
articles of 100-300 KB of wikitext. Deterministic for a seed.
"""

from __future__ import annotations

import bz2
import random
from pathlib import Path
from xml.sax.saxutils import escape

# Yoruba words (tone-marked, some decomposed as editors type them) for prose.
WORDS = ["àgbàdo", "jẹ́", "ohun", "ọ̀gbìn", "tí", "àwọn", "àgbẹ̀", "ń", "gbìn", "nígbà", "òjò", "a", "máa", "fi", "ṣe", "ògì", "àti", "ẹ̀kọ", "ọmọdé", "fẹ́ràn", "yíyan", "lójú", "iná", "èdè", "yorùbá", "ènìyàn", "sọ", "ní", "apá", "ìwọ̀", "oòrùn", "nàìjíríà", "wọ́n", "tún", "bìnì", "tógò", "àmì", "ohùn", "mẹ́ta", "ló", "wà", "nínú", "náà", "ìbàdàn", "olú-ìlú", "ìpínlẹ̀", "ọ̀yọ́", "ọjà", "púpọ̀", "ìlú", "sì", "ṣòwò", "níbẹ̀", "lójoojúmọ́", "òṣùmàrè", "hàn", "ojú", "ọ̀run", "lẹ́yìn", "àwọ̀", "rẹ̀", "pọ̀", "ó", "lẹ́wà", "ọ̀sun", "odò", "tó", "ṣàn", "gba", "ọ̀ṣun", "kọjá", "ọdọọdún", "ni", "àjọ̀dún", "òṣogbo", "ìtàn", "ọba", "ilé", "ìwé", "olùkọ́", "akẹ́kọ̀ọ́", "ìjọba", "ọdún", "oṣù", "ọ̀sẹ̀", "ọjọ́", "àkọ́kọ́", "kejì", "kẹta", "orílẹ̀-èdè", "áfríkà", "ayé", "omi", "igbó", "òkè", "ilẹ̀", "ìlà-oòrùn", "àríwá", "gúúsù", "ìwọ̀-oòrùn", "ẹ̀sìn", "ìgbàgbọ́", "orin", "ijó", "eré", "ìdárayá", "bọ́ọ̀lù", "ẹgbẹ́"]
NAMES = ["Ìbàdàn", "Ọ̀yọ́", "Èkó", "Abẹ́òkúta", "Òṣogbo", "Ifẹ̀", "Ìjẹ̀bú", "Ọ̀ndó", "Àkúrẹ́", "Ìlọrin", "Kano", "Àbújá", "Lọndọnu", "Ghana"]
_NAMESPACES = {
    -2: "Mídíà", -1: "Pàtàkì", 0: "", 1: "Ọ̀rọ̀", 2: "Oníṣe", 3: "Ọ̀rọ̀ oníṣe", 4: "Wikipedia",
    6: "Fáìlì", 8: "MediaWiki", 10: "Àdàkọ", 12: "Ìrànlọ́wọ́", 14: "Ẹ̀ka", 828: "Module",
}  # fmt: skip


_INLINE = (
    "{{lang|en|word}}", "<small>kékeré</small>", "<sup>2</sup>", "&nbsp;", "&amp;", "&#91;1&#93;",
    "[https://example.org/ìtàn Ojú òpó]", "[https://example.org/x]", "https://example.org/bare",
    '<span style="color:red">pupa</span>', "'''''gidi'''''", "<nowiki>{{kò}}</nowiki>",
    "{{convert|12|km|mi}}", "<br />", "{{nowrap|ọjọ́ kan}}", "[[:Ẹ̀ka:Ìlú]]", "[[wikt:ọjà|ọjà]]",
    '<abbr title="x">X</abbr>',
)


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(6, 18))]
    if rng.random() < 0.3:
        words[rng.randrange(len(words))] = rng.choice(_INLINE)
    if rng.random() < 0.5:
        words[rng.randrange(len(words))] = f"[[{rng.choice(NAMES)}]]"
    if rng.random() < 0.4:
        target = rng.choice(NAMES)
        words[rng.randrange(len(words))] = f"[[{target} (ìlú)|{target}]]"
    if rng.random() < 0.15:
        words[rng.randrange(len(words))] = f"'''{rng.choice(WORDS)}'''"
    text = " ".join(words)
    text = text[0].upper() + text[1:] + "."
    if rng.random() < 0.3:
        text += f"<ref>{{{{cite web|title={rng.choice(WORDS)}|url=https://example.org/{rng.randint(1, 10**6)}|access-date=2024-01-01}}}}</ref>"
    elif rng.random() < 0.1:
        text += f'<ref name="r{rng.randint(1, 9)}" />'
    return text


def _paragraph(rng: random.Random) -> str:
    return " ".join(_sentence(rng) for _ in range(rng.randint(2, 6)))


def _infobox(rng: random.Random, title: str) -> str:
    rows = "\n".join(
        f"| {key} = {{{{formatnum:{rng.randint(1000, 9_999_999)}}}}}"
        if key.startswith("population")
        else f"| {key} = [[{rng.choice(NAMES)}]]"
        for key in ("name", "country", "state", "population_total", "population_as_of", "leader_name")
    )
    return (
        "{{Infobox settlement\n| official_name = " + title + "\n" + rows
        + "\n| coordinates = {{coord|7|23|N|3|56|E|display=inline,title}}"
        + "\n| image_skyline = " + title + ".jpg\n}}\n"
    )


def _table(rng: random.Random) -> str:
    rows = "\n|-\n".join(f"| {rng.randint(1900, 2024)} || {rng.randint(10, 10**6)} || {rng.choice(WORDS)}" for _ in range(rng.randint(3, 12)))
    return '{| class="wikitable sortable"\n! Ọdún !! Iye !! Àkíyèsí\n|-\n' + rows + "\n|}\n"


def article_wikitext(rng: random.Random, title: str, target_bytes: int) -> str:
    """One article of about ``target_bytes`` of UTF-8 wikitext."""
    parts = [_infobox(rng, title) if rng.random() < 0.6 else "{{Short description|" + rng.choice(WORDS) + "}}\n"]
    parts.append(f"'''{title}''' " + _paragraph(rng) + "\n")
    size = sum(len(p.encode()) for p in parts)
    section = 0
    while size < target_bytes:
        section += 1
        heading = rng.choice(WORDS).capitalize() if rng.random() < 0.8 else f"[[{rng.choice(NAMES)}]]"
        block = [f"\n== {heading} {section} ==\n"]
        for _ in range(rng.randint(1, 4)):
            block.append(_paragraph(rng) + "\n")
        roll = rng.random()
        if roll < 0.15:
            block.append(_table(rng))
        elif roll < 0.3:
            block.append("".join(f"* {_sentence(rng)}\n" for _ in range(rng.randint(2, 6))))
        elif roll < 0.4:
            block.append(f"[[Fáìlì:{rng.choice(NAMES)}.jpg|thumb|{_sentence(rng)}]]\n")
        elif roll < 0.45:
            block.append("<!-- " + _sentence(rng) + " -->\n")
        elif roll < 0.5:
            block.append(f"; {rng.choice(WORDS)}\n: {_sentence(rng)}\n")
        elif roll < 0.55:
            block.append(f"<blockquote>{_sentence(rng)}</blockquote>\n")
        elif roll < 0.6:
            block.append(f'<ref group="note">{_sentence(rng)}</ref>\n<references group="note" />\n----\n')
        if rng.random() < 0.1:
            block.append(f"\n=== {rng.choice(WORDS)} ===\n" + _paragraph(rng) + "\n")
        text = "".join(block)
        parts.append(text)
        size += len(text.encode())
    parts.append("\n== Àwọn ìtọ́kasí ==\n{{Reflist}}\n__NOTOC__\n")
    parts.append("".join(f"[[Ẹ̀ka:{rng.choice(WORDS)}|*]]\n" for _ in range(rng.randint(1, 4))))
    parts.append(f"[[en:{title}]]\n[[fr:{title}]]\n")
    return "".join(parts)


def _page(title: str, ns: int, page_id: int, text: str, redirect: str | None = None) -> str:
    redirect_el = f'    <redirect title="{escape(redirect)}" />\n' if redirect else ""
    return (
        f"  <page>\n    <title>{escape(title)}</title>\n    <ns>{ns}</ns>\n    <id>{page_id}</id>\n{redirect_el}"
        f"    <revision>\n      <id>{page_id * 10}</id>\n      <parentid>{page_id * 10 - 1}</parentid>\n"
        "      <timestamp>2024-05-01T12:00:00Z</timestamp>\n"
        "      <contributor>\n        <username>Olùkọ̀wé</username>\n        <id>42</id>\n      </contributor>\n"
        "      <comment>àtúnṣe</comment>\n      <model>wikitext</model>\n      <format>text/x-wiki</format>\n"
        f'      <text bytes="{len(text.encode())}" xml:space="preserve">{escape(text)}</text>\n'
        "      <sha1>phoiac9h4m842xq45sp7s6u21eteeq1</sha1>\n    </revision>\n  </page>\n"
    )


def _head(wiki: str) -> str:
    ns_uri = "http://www.mediawiki.org/xml/export-0.11/"
    namespaces = "".join(
        f'      <namespace key="{k}" case="first-letter" />\n' if not v
        else f'      <namespace key="{k}" case="first-letter">{escape(v)}</namespace>\n'
        for k, v in _NAMESPACES.items()
    )
    return (
        f'<mediawiki xmlns="{ns_uri}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xsi:schemaLocation="{ns_uri} http://www.mediawiki.org/xml/export-0.11.xsd" version="0.11" xml:lang="{wiki}">\n'
        f"  <siteinfo>\n    <sitename>Wikipedia</sitename>\n    <dbname>{wiki}wiki</dbname>\n"
        f"    <base>https://{wiki}.wikipedia.org/wiki/Oj%C3%BAew%C3%A9_%C3%80k%E1%BB%8D%CC%81k%E1%BB%8D%CC%81</base>\n"
        "    <generator>MediaWiki 1.44.0-wmf.1</generator>\n    <case>first-letter</case>\n"
        f"    <namespaces>\n{namespaces}    </namespaces>\n  </siteinfo>\n"
    )


def article_size(rng: random.Random, long_share: float) -> int:
    """Bytes of wikitext: mostly short stubs and mid-size articles, some 100-300 KB ones."""
    if rng.random() < long_share:
        return rng.randint(100_000, 300_000)
    return int(min(60_000, rng.lognormvariate(8.0, 0.9)))  # median ~3 KB, like small Wikipedias


def write_dump(
    path: str | Path, n_articles: int, *, wiki: str = "yo", seed: int = 1, long_share: float = 0.01,
    pages_per_stream: int = 100,
) -> dict[str, int]:
    """Write the dump (multistream bz2); returns counts of what it holds."""
    rng = random.Random(seed)
    counts = {"articles": 0, "redirects": 0, "other_namespace": 0, "duplicates": 0, "long_articles": 0, "bytes": 0}
    pages: list[str] = []
    texts: list[str] = []
    page_id = 1
    with open(path, "wb") as out:
        out.write(bz2.compress(_head(wiki).encode()))

        def flush() -> None:
            if pages:
                out.write(bz2.compress("".join(pages).encode()))
                pages.clear()

        while counts["articles"] < n_articles:
            page_id += 1
            roll = rng.random()
            title = f"{rng.choice(NAMES)} {rng.choice(WORDS)} {page_id}"
            if roll < 0.08 and texts:
                pages.append(_page(title, 0, page_id, f"#REDIRECT [[{rng.choice(NAMES)}]]", redirect=rng.choice(NAMES)))
                counts["redirects"] += 1
            elif roll < 0.16:
                ns = rng.choice([1, 2, 3, 4, 10, 14, 828])
                name = _NAMESPACES[ns]
                pages.append(_page(f"{name}:{title}", ns, page_id, _paragraph(rng) + "\n{{Talk header}}"))
                counts["other_namespace"] += 1
            else:
                if roll < 0.19 and texts:
                    text = rng.choice(texts)  # the same article under another title
                    counts["duplicates"] += 1
                else:
                    size = article_size(rng, long_share)
                    text = article_wikitext(rng, title, size)
                    counts["long_articles"] += size >= 100_000
                    if len(texts) < 200:
                        texts.append(text)
                pages.append(_page(title, 0, page_id, text))
                counts["articles"] += 1
                counts["bytes"] += len(text.encode())
            if len(pages) >= pages_per_stream:
                flush()
        flush()
        out.write(bz2.compress(b"</mediawiki>\n"))
    return counts
