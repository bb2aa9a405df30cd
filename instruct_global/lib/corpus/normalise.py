"""Text normalisation for scraped and dumped documents: repair, strip markup, drop boilerplate.

The result keeps the document's line structure (one paragraph or heading per line, at most one
blank line between blocks) because the chunker cuts at those boundaries.
"""

from __future__ import annotations

import functools
import html
import re
import unicodedata
from dataclasses import dataclass

import ftfy
import regex
from ftfy import chardata
from ftfy.badness import BADNESS_RE, is_bad

from instruct_global.lib.common.text_tokens import WORD_RE

# Keep typographic quotes: they are the author's text, and "uncurling" would change Hausa and
# Yoruba apostrophes for no benefit.
_FTFY_CONFIG = ftfy.TextFixerConfig(uncurl_quotes=False, normalization="NFC")
# Characters some ftfy fixer other than mojibake repair acts on (HTML entities, C1 and other
# control characters, ligatures, full/half width forms, line separators, surrogates, escapes).
# Text without them and without mojibake (``is_bad``) comes out of ftfy as its NFC form, so the
# per-line fixer loop is skipped for it; the result is the same string.
_FTFY_TRIGGER_CHARS = (
    set(chardata.CONTROL_CHARS) | set(chardata.LIGATURES) | set(chardata.WIDTH_MAP)
    | {ord(c) for c in "\r\x1b\u2028\u2029\x85"} | set(range(0x80, 0xA0)) | set(range(0xD800, 0xE000))
)  # fmt: skip
_FTFY_TRIGGERS = re.compile("[" + "".join(re.escape(chr(c)) for c in sorted(_FTFY_TRIGGER_CHARS)) + "]")
# BADNESS_RE has one alternative anchored with ^; ftfy searches it line by line.
_FTFY_LINE_START_BAD = re.compile(r"^[ÃÂ] ", re.MULTILINE)
# Letters and marks of ordinary African-language and news text, which mojibake checks should not
# have to look around (tone-marked vowels, Hausa hooked letters, quotes and dashes).
_COMMON_CHARS = set(range(0x20, 0x7F)) | {ord(c) for c in "àáèéìíòóùúÀÁÈÉÌÍÒÓÙÚẹọṣẸỌṢ\u0300\u0301\u0323ƙɗɓƘƊƁ’‘“”–—"}


def _badness_anchors() -> tuple[re.Pattern[str] | None, int]:
    """A class of characters every BADNESS_RE match contains, and the longest match.

    Every alternative of ftfy's mojibake pattern has a mandatory character class; taking from
    each the class with the fewest common characters gives a set such that any match contains
    one of its characters, and a match is at most ``width`` long. Searching windows of that
    width around those characters finds exactly what a search of the whole text finds. If the
    pattern's shape is not understood (another ftfy version), None: search the whole text.
    """
    try:
        import re._constants as c
        import re._parser as parser

        tree = parser.parse(BADNESS_RE.pattern, BADNESS_RE.flags)
        width = tree.getwidth()[1]
        (op, (_, branches)), *rest = list(tree)
        if op != c.BRANCH or rest or width > 32:
            return None, 0
        anchors: set[int] = set()
        for branch in branches:
            best: set[int] | None = None
            for item_op, arg in branch:
                chars = _item_chars(item_op, arg, c)
                if chars is not None and (best is None or len(chars & _COMMON_CHARS) < len(best & _COMMON_CHARS)):
                    best = chars
            if best is None:
                return None, 0
            anchors |= best
        char_class = "".join(re.escape(chr(x)) for x in sorted(anchors))
        return re.compile(f"[{char_class}]"), width
    except Exception:
        return None, 0


def _item_chars(op: object, arg: object, c: object) -> set[int] | None:
    if op == c.LITERAL:  # type: ignore[attr-defined]
        return {arg}  # type: ignore[arg-type]
    if op != c.IN:  # type: ignore[attr-defined]
        return None  # repeats (possibly zero times), categories, groups: not a mandatory set
    chars: set[int] = set()
    for sub_op, sub_arg in arg:  # type: ignore[attr-defined]
        if sub_op == c.LITERAL:  # type: ignore[attr-defined]
            chars.add(sub_arg)
        elif sub_op == c.RANGE:  # type: ignore[attr-defined]
            chars.update(range(sub_arg[0], sub_arg[1] + 1))
        else:  # NEGATE, CATEGORY
            return None
    return chars


_BAD_ANCHORS, _BAD_WIDTH = _badness_anchors()


def looks_bad(text: str) -> bool:
    """``ftfy.badness.is_bad(text)``, searched only around the characters a match needs."""
    if _BAD_ANCHORS is None:
        return is_bad(text)
    search = BADNESS_RE.search
    reach = _BAD_WIDTH
    for match in _BAD_ANCHORS.finditer(text):
        i = match.start()
        if search(text, max(0, i - reach + 1), i + reach):
            return True
    return False

_LETTER = regex.compile(r"\p{L}")
# Bounded repeats throughout: unbounded ones backtrack quadratically on hostile input
# (thousands of "[http://" or "a@" with no closing character).
_URL = regex.compile(r"(?:https?://|www\.)\S+|[^\s@]{1,64}@[^\s@]{1,255}\.[a-z]{2,}", regex.IGNORECASE)

# --- markup -------------------------------------------------------------------------------
_ELEMENT_OPEN = regex.compile(r"<(script|style|noscript|ref)\b[^<>]*>|<!--", regex.IGNORECASE)
_ELEMENT_SELF_CLOSED = regex.compile(r"<ref\b[^<>]*/>", regex.IGNORECASE)
_HTML_BLOCK_TAG = regex.compile(
    r"</?(?:p|div|br|li|ul|ol|h[1-6]|tr|table|section|article|blockquote)\b[^>]*>", regex.I
)
_HTML_TAG = regex.compile(r"</?[a-zA-Z][a-zA-Z0-9:-]*(?:\s[^<>]*)?/?>")
_WIKI_TEMPLATE = regex.compile(r"\{\{[^{}]*\}\}")  # innermost first, repeated for nesting
_WIKI_TABLE_OPEN = regex.compile(r"^\{\|", regex.MULTILINE)
_WIKI_TABLE_CLOSE = regex.compile(r"^\|\}", regex.MULTILINE)
_WIKI_PLAIN_LINK = regex.compile(r"\[\[([^\[\]|:]*)(?:\|([^\[\]]*))?\]\]")
_WIKI_NAMESPACED_LINK = regex.compile(r"\[\[[^\[\]]*\]\]")  # File:, Category:, interwiki ...
_WIKI_EXTERNAL_LINK = regex.compile(r"\[(?:https?:)?//[^\s\]\[]{1,2000}\s+([^\]\[\n]{1,500})\]")
_WIKI_BARE_EXTERNAL = regex.compile(r"\[(?:https?:)?//[^\s\]\[]{1,2000}\]")
_WIKI_EMPHASIS = regex.compile(r"'{2,5}")
_WIKI_HEADING = regex.compile(r"^(={1,6})[ \t]*([^\n]*?)[ \t]*\1[ \t]*$", regex.MULTILINE)
_WIKI_MAGIC = regex.compile(r"__[A-Z]+__")
_WIKI_LIST_MARKER = regex.compile(r"^[*#:;]+\s*", regex.MULTILINE)
_CITATION_MARK = regex.compile(r"\[(?:\d+|citation needed|edit|nb \d+)\]", regex.IGNORECASE)

# --- whitespace ---------------------------------------------------------------------------
_INVISIBLE = re.compile("[\u200b\u2060\ufeff\u00ad]")  # keep ZWJ/ZWNJ: they spell words
_LINE_BREAKS = re.compile(r"\r\n?|[\u2028\u2029\x0b\x0c\x85]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # \p{Cc} less \t and \n
_WS_TRIGGERS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u200b\u2060\ufeff\u00ad]")
_BLANK_RUNS = re.compile(r"\n{3,}")
# \p{Zs} spelt out for the faster `re` engine: U+0020, U+00A0, U+1680, U+2000-U+200A, U+202F,
# U+205F, U+3000.
_ZS_NOT_SPACE = "\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000"
_HSPACE = re.compile(f"[\t {_ZS_NOT_SPACE}]+")
_HSPACE_ODD = re.compile(f"[\t{_ZS_NOT_SPACE}]")


def _needs_hspace(text: str) -> bool:
    """A tab or odd space, a double space, or a space at a line's start or end (substring tests
    in C instead of one regex alternation tried at every character)."""
    return (
        "  " in text or "\n " in text or " \n" in text or text.startswith(" ") or text.endswith(" ")
        or _HSPACE_ODD.search(text) is not None
    )

# --- boilerplate --------------------------------------------------------------------------
# Matched as whole words in short lines (casefolded). The service-language strings are our best
# renderings of what BBC and other news sites print around articles; extend them as found.
_NAV_PHRASES = (
    # English (also on the BBC's non-English services)
    "share this", "share on", "share page", "follow us", "related topics", "related articles",
    "related stories", "more on this story", "read more", "top stories", "most read",
    "skip to content", "accessibility help", "click here", "subscribe", "sign up", "newsletter",
    "advertisement", "back to top", "terms of use", "privacy policy", "image source",
    "image caption", "media caption", "getty images", "external link", "you may also like",
    # Hausa
    "labarai masu alaƙa", "labarai masu alaka", "karin bayani", "ƙarin bayani", "raba wannan",
    "ku biyo mu", "batutuwa masu alaƙa",
    # Yoruba
    "ìròyìn tó jọ mọ́", "ìròyìn mìíràn", "ẹ tẹ̀lé wa", "pín èyí", "ka síwájú sí i",
    # Igbo
    "akụkọ ndị ọzọ", "soro anyị",
    # Nigerian Pidgin
    "tori wey concern", "wetin dem dey read pass", "follow us for",
    # Swahili
    "habari zinazohusiana", "mada zinazohusiana", "shirikisha", "soma zaidi", "tufuatilie",
    # Somali
    "wararka la xiriira", "mowduucyada la xiriira", "nala soco",
    # Amharic / Tigrinya
    "ተዛማጅ ርዕሶች", "ተያያዥ ርዕሶች", "ተዛማጅ ዜናዎች", "ተጨማሪ ያንብቡ",
    # Zulu / Kinyarwanda / Oromo
    "funda kabanzi", "sangiza", "inkuru bifitanye isano", "oduu walqabatan",
)  # fmt: skip
# Cookie and legal notices: longer lines, so only phrases that do not occur in ordinary prose.
_NOTICE_PHRASES = (
    "we use cookies", "uses cookies", "use of cookies", "cookie policy", "cookie settings",
    "cookie preferences", "accept cookies", "accept all cookies", "cookies to ", "all rights reserved",
    "not responsible for the content of external", "read about our approach to external linking",
    "terms and conditions",
    "amfani da cookies", "manufofinmu na cookies",  # Hausa
    "tunatumia vidakuzi", "tunatumia cookies",  # Swahili
    "a máa ń lo cookies", "a ń lo cookies",  # Yoruba
)  # fmt: skip


def _phrase_pattern(phrases: tuple[str, ...]) -> regex.Pattern[str]:
    # Whole words only: Swahili "soma zaidi" (read more) must not match "kusoma zaidi".
    alternatives = "|".join(regex.escape(p.strip()) for p in sorted(phrases, key=len, reverse=True))
    return regex.compile(rf"(?<![\p{{L}}\p{{M}}\p{{N}}])(?:{alternatives})(?![\p{{L}}\p{{M}}\p{{N}}])")


_NAV_RE = _phrase_pattern(_NAV_PHRASES)
_NOTICE_RE = _phrase_pattern(_NOTICE_PHRASES)
# The phrases as plain substrings: a line holding none of them cannot match the patterns above.
_NAV_LITERALS = tuple(p.strip() for p in _NAV_PHRASES)
_NOTICE_LITERALS = tuple(p.strip() for p in _NOTICE_PHRASES)
_COPYRIGHT = regex.compile(r"(?:^|\s)(?:©|\(c\)\s*\d{4})|^\s*copyright\b", regex.IGNORECASE)
_MENU_SEPARATORS = regex.compile(r"\s*[|•·»›◦▪]\s*")
_MENU_SEPARATORS_PRESENT = re.compile(r"[|•·»›◦▪]")
_SENTENCE_END = regex.compile(r"[.!?…:;。።፧؟\"'”’)]\s*$")
_NAV_MAX_WORDS = 8
_NOTICE_MAX_WORDS = 45
_MENU_RUN = 4  # this many consecutive 1-3 word lines without punctuation read as a menu


@dataclass(frozen=True)
class NormalisedText:
    text: str
    boilerplate_lines: int  # lines removed as boilerplate
    ftfy_changed: bool  # ftfy repaired something (mojibake, HTML entities, ligatures ...)


def _drop_spans(text: str, opener: regex.Pattern[str], closer_for) -> str:
    """Remove each opener..closer span in one left-to-right pass (linear, unlike a lazy .*?).

    ``closer_for(match)`` gives the pattern that ends the span. An opener without a closer loses
    only itself, and its closer is not searched for again (none can follow).
    """
    out: list[str] = []
    pos = 0
    unclosed: set[str] = set()
    for match in opener.finditer(text):
        if match.start() < pos:
            continue
        closer = closer_for(match)
        end = None
        if closer.pattern not in unclosed:
            found = closer.search(text, match.end())
            if found is None:
                unclosed.add(closer.pattern)
            else:
                end = found.end()
        out.append(text[pos : match.start()])
        out.append(" ")
        pos = end if end is not None else match.end()
    out.append(text[pos:])
    return "".join(out)


def _element_closer(match: regex.Match[str]) -> regex.Pattern[str]:
    if match.group(0) == "<!--":
        return _COMMENT_CLOSE
    return _closing_tag(match.group(1).lower())


_COMMENT_CLOSE = regex.compile(r"-->")


@functools.cache
def _closing_tag(name: str) -> regex.Pattern[str]:
    return regex.compile(rf"</{name}\s*>", regex.IGNORECASE)


def strip_markup(text: str) -> str:
    """Remove HTML tags and MediaWiki markup, keeping the visible words.

    Each pass runs only when the text holds the character its pattern cannot match without
    (most documents arrive as plain text from the readers), so the result is the same.
    """
    if "<" in text:
        text = _ELEMENT_SELF_CLOSED.sub(" ", text)
        text = _drop_spans(text, _ELEMENT_OPEN, _element_closer)
        text = _HTML_BLOCK_TAG.sub("\n", text)
        text = _HTML_TAG.sub("", text)
    if "&" in text:
        text = html.unescape(text)
    if "{|" in text:
        text = _drop_spans(text, _WIKI_TABLE_OPEN, lambda _: _WIKI_TABLE_CLOSE)
    if "{{" in text:
        for _ in range(10):  # nested templates; bounded so hostile input cannot loop long
            text, n = _WIKI_TEMPLATE.subn("", text)
            if not n:
                break
    if "[[" in text:
        for _ in range(5):  # links nested in File: captions resolve inside-out
            text, n = _WIKI_PLAIN_LINK.subn(lambda m: m.group(2) if m.group(2) is not None else m.group(1), text)
            if not n:
                break
        text = _WIKI_NAMESPACED_LINK.sub("", text)
    if "[" in text and "//" in text:
        text = _WIKI_EXTERNAL_LINK.sub(r"\1", text)
        text = _WIKI_BARE_EXTERNAL.sub("", text)
    if "=" in text:
        text = _WIKI_HEADING.sub(r"\2", text)
    if "''" in text:
        text = _WIKI_EMPHASIS.sub("", text)
    if "__" in text:
        text = _WIKI_MAGIC.sub("", text)
    if "*" in text or "#" in text or ":" in text or ";" in text:
        text = _WIKI_LIST_MARKER.sub("", text)
    if "[" in text:
        text = _CITATION_MARK.sub("", text)
    return text


def clean_whitespace(text: str) -> str:
    """One space between words, no trailing spaces, at most one blank line between blocks."""
    if _WS_TRIGGERS.search(text):  # most text has none of these characters
        text = _INVISIBLE.sub("", _LINE_BREAKS.sub("\n", text))
        text = _CONTROL.sub("", text)
    if _needs_hspace(text):
        lines = [_HSPACE.sub(" ", line).strip() for line in text.split("\n")]
        out: list[str] = []
        for line in lines:
            if line or (out and out[-1]):
                out.append(line)
        return "\n".join(out).strip()
    # Lines are already stripped and single-spaced: only runs of blank lines can change.
    return (_BLANK_RUNS.sub("\n\n", text) if "\n\n\n" in text else text).strip()


_WORD_CLASS = WORD_RE.pattern.removesuffix("+")  # "[\p{L}\p{M}\p{N}]": one word character
assert _WORD_CLASS.startswith("[") and _WORD_CLASS.endswith("]"), WORD_RE.pattern


@functools.cache
def _at_least_words(k: int) -> regex.Pattern[str]:
    # Possessive: a word is never split to make up the count, so a match means k WORD_RE words.
    return regex.compile(f"(?:[^{_WORD_CLASS[1:]}*+{_WORD_CLASS}++){{{k}}}")


def has_words(line: str, k: int) -> bool:
    """``len(WORD_RE.findall(line)) >= k`` in one bounded match: the line tests only need to know
    whether a line is under a few words, and a long paragraph is then not tokenized whole."""
    return _at_least_words(k).match(line) is not None


def _is_short_plain(line: str, n_words: int | None = None) -> bool:
    short = (has_words(line, 1) and not has_words(line, 4)) if n_words is None else 1 <= n_words <= 3
    return short and not _SENTENCE_END.search(line)


def _may_hold_url(text: str) -> bool:
    # _URL needs "://", "www." (any case) or "@"; most lines have none, and scanning for the
    # e-mail alternative costs a bounded look-ahead at every character.
    return "@" in text or "://" in text or "www." in text.lower()


def _may_hold_notice(text: str, folded: str) -> bool:
    # What _COPYRIGHT or _NOTICE_RE cannot match without: "©", "(c)" (no other character
    # case-folds to c), "opyr" (nor to o, p, y or r), or one of the notice phrases as a substring.
    return "©" in text or "(c)" in folded or "opyr" in folded or any(p in folded for p in _NOTICE_LITERALS)


def _may_hold_nav(folded: str) -> bool:
    return any(p in folded for p in _NAV_LITERALS)


def is_boilerplate_line(line: str, n_words: int | None = None) -> bool:
    """Language-agnostic line tests plus a small multilingual phrase list.

    ``n_words`` is the line's WORD_RE count when the caller has it already; otherwise words are
    counted only where a test needs the count, and only up to the count that test looks at.
    The phrase regexes (whole words only) run only on lines that hold a phrase as a substring.
    """
    return _is_boilerplate(line, n_words, True, True, True, True)


def _is_boilerplate(line: str, n_words: int | None, url: bool, notice: bool, nav: bool, menu: bool) -> bool:
    """``is_boilerplate_line``; a test whose flag is False is known not to match (see
    ``remove_boilerplate``: what a line holds, its document holds)."""
    stripped = line.strip()
    if not stripped:
        return False
    if not _LETTER.search(stripped):
        return True  # separators, bare numbers, dates, emoji rows
    if url and _may_hold_url(stripped):
        url_chars = sum(len(m) for m in _URL.findall(stripped))
        if url_chars / len(stripped) > 0.5:
            return True
    if notice or nav:
        lowered = stripped.casefold()

        def at_most(limit: int) -> bool:
            return n_words <= limit if n_words is not None else not has_words(stripped, limit + 1)

        if (
            notice
            and at_most(_NOTICE_MAX_WORDS)
            and _may_hold_notice(stripped, lowered)
            and (_COPYRIGHT.search(stripped) or _NOTICE_RE.search(lowered))
        ):
            return True
        if nav and at_most(_NAV_MAX_WORDS) and _may_hold_nav(lowered) and _NAV_RE.search(lowered):
            return True
    if not menu or not _MENU_SEPARATORS_PRESENT.search(stripped):
        return False  # one item: not a menu
    items = [i for i in _MENU_SEPARATORS.split(stripped) if i]
    return len(items) >= 3 and not any(has_words(i, 4) for i in items)


def _drop_menu_run(run: list[int], drop: list[bool]) -> None:
    if len(run) >= _MENU_RUN:
        for i in run:
            drop[i] = True


def remove_boilerplate(text: str) -> tuple[str, int]:
    """Drop boilerplate lines and menu blocks; return the text and how many lines went."""
    lines = text.split("\n")
    # Tests that cannot match anywhere in the document are not tried on each line: a line is a
    # substring of the text, and case folding maps character by character.
    folded = text.casefold()
    url, notice, nav = _may_hold_url(text), _may_hold_notice(text, folded), _may_hold_nav(folded)
    menu = _MENU_SEPARATORS_PRESENT.search(text) is not None
    drop = [_is_boilerplate(line, None, url, notice, nav, menu) for line in lines]
    # Runs of short unpunctuated lines read as navigation menus. A blank line ends a run, so a
    # heading set off after a menu is not swallowed by it.
    run: list[int] = []
    for i, line in enumerate(lines):
        if line.strip() and not drop[i] and _is_short_plain(line):
            run.append(i)
            continue
        _drop_menu_run(run, drop)
        run = []
    _drop_menu_run(run, drop)
    kept = [line for line, d in zip(lines, drop, strict=True) if not d]
    removed = sum(1 for line, d in zip(lines, drop, strict=True) if d and line.strip())
    return clean_whitespace("\n".join(kept)), removed


def normalise_text(text: object, *, drop_boilerplate: bool = True) -> NormalisedText:
    """ftfy repair, NFC, markup removal, whitespace, boilerplate. Accepts None/NaN as empty."""
    if text is None or (isinstance(text, float) and text != text):
        return NormalisedText("", 0, False)
    raw = text if isinstance(text, str) else str(text)
    raw_nfc = _nfc(raw)
    ftfy_noop = _ftfy_is_noop(raw)
    fixed = raw_nfc if ftfy_noop else ftfy.fix_text(raw, config=_FTFY_CONFIG)
    ftfy_changed = fixed != raw_nfc
    unmarked = strip_markup(fixed)
    # The text is NFC here when ftfy did not run. If no markup came out and no invisible or
    # control character is removed below, what follows only splits and joins lines and collapses
    # spaces (starters that compose with nothing), so the result is NFC without a second pass.
    still_nfc = ftfy_noop and unmarked == fixed and _WS_TRIGGERS.search(unmarked) is None
    cleaned = clean_whitespace(unmarked)
    removed = 0
    if drop_boilerplate:
        cleaned, removed = remove_boilerplate(cleaned)
    return NormalisedText(cleaned if still_nfc else _nfc(cleaned), removed, ftfy_changed)


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)  # returns at once when the quick check says NFC


def _ftfy_is_noop(text: str) -> bool:
    """True when ftfy would return the NFC form of ``text`` unchanged (see _FTFY_TRIGGERS)."""
    return not (
        _FTFY_TRIGGERS.search(text)
        or ("&" in text and chardata.HTML_ENTITY_RE.search(text))  # what unescape_html decodes
        or looks_bad(text)
        or _FTFY_LINE_START_BAD.search(text)
    )
