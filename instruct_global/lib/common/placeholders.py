"""``{variable_N}`` placeholders: find them, check a template's set, fill them.

A placeholder is exactly ``{variable_N}`` with N >= 1 written without leading zeros, one pair of
braces and no spaces. Names (``variable_1``) identify variables everywhere in the code
(source records, expected sets, fill values); problem strings show the braced form.
Anything placeholder-like that is not exactly that (``{variable_1``, ``{{variable_1}}``,
``{ variable_1 }``, ``variable_1`` without braces) is malformed: a translator or a model
damaged it, and filling it would leave junk in the data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

# Lookarounds: a doubled brace is str.format escaping, i.e. a literal, not a placeholder.
PLACEHOLDER_RE = re.compile(r"(?<!\{)\{(variable_[1-9][0-9]*)\}(?!\})")
_NAME_RE = re.compile(r"variable_[1-9][0-9]*")
# The right part of anything that looks like an attempt at a placeholder; the braces and blanks
# before it are added by scanning left, which keeps matching linear on runs of "{".
_CANDIDATE_RE = re.compile(r"(?<!\w)variable[ \t]*_?[ \t]*\w*[ \t]*\}*", re.IGNORECASE)
# Some other single name in braces: "{name}", "{{answer}}", "{ country }". Starting only at the
# first brace of a run keeps it linear too.
_OTHER_BRACED_RE = re.compile(r"(?<!\{)\{+[ \t]*([A-Za-z_][A-Za-z0-9_]*)[ \t]*\}+")


def braced(name: str) -> str:
    return "{" + name + "}"


def placeholder_name(name_or_placeholder: str) -> str:
    """``"{variable_2}"`` or ``"variable_2"`` -> ``"variable_2"``; anything else is a ValueError."""
    name = name_or_placeholder.strip()
    if name.startswith("{") and name.endswith("}"):
        name = name[1:-1]
    if not _NAME_RE.fullmatch(name):
        raise ValueError(f"not a placeholder name: {name_or_placeholder!r} (expected variable_N, N >= 1)")
    return name


def placeholder_number(name: str) -> int:
    return int(placeholder_name(name).split("_", 1)[1])


def expected_names(n_variables: int) -> set[str]:
    """The names a dataset with ``n_variables`` variables uses: variable_1 .. variable_N."""
    return {f"variable_{i}" for i in range(1, n_variables + 1)}


def find_placeholders(text: str) -> list[str]:
    """Names of the well-formed placeholders in ``text``, each once, in order of first appearance."""
    seen: dict[str, None] = {}
    for match in PLACEHOLDER_RE.finditer(text):
        seen.setdefault(match.group(1), None)
    return list(seen)


def _malformed(text: str) -> list[str]:
    good = {m.span() for m in PLACEHOLDER_RE.finditer(text)}
    found: list[str] = []
    for match in _CANDIDATE_RE.finditer(text):
        start, end = match.span()
        while start > 0 and text[start - 1] in " \t":
            start -= 1
        while start > 0 and text[start - 1] == "{":
            start -= 1
        if text[start] != "{":  # blanks before a bare "variable_1" are not part of it
            start = match.start()
        snippet = text[start:end]
        # Bare prose ("a variable", "variable 2") is not a placeholder attempt.
        if not any(ch in snippet for ch in "{}_"):
            continue
        if (start, end) not in good:
            found.append(snippet.strip()[:40])  # hostile brace runs stay readable
    return found


def _invented_other(text: str) -> list[str]:
    return [
        braced(m.group(1))
        for m in _OTHER_BRACED_RE.finditer(text)
        if not m.group(1).lower().startswith("variable")
    ]


def placeholder_problems(template_texts: Sequence[str], expected: Iterable[str]) -> list[str]:
    """Problems of a template (its fields together) against the placeholders it must use.

    Returns strings, empty when the template is sound:
    ``malformed_placeholder:<snippet>``, ``invented_placeholder:{variable_9}`` (or ``{name}``),
    ``missing_placeholder:{variable_2}``. Each problem is listed once.
    """
    expected_set = {placeholder_name(e) for e in expected}
    problems: dict[str, None] = {}
    used: set[str] = set()
    for text in template_texts:
        if not text:
            continue
        for snippet in _malformed(text):
            problems.setdefault(f"malformed_placeholder:{snippet}", None)
        for name in find_placeholders(text):
            used.add(name)
            if name not in expected_set:
                problems.setdefault(f"invented_placeholder:{braced(name)}", None)
        for other in _invented_other(text):
            problems.setdefault(f"invented_placeholder:{other}", None)
    for name in sorted(expected_set - used, key=placeholder_number):
        problems.setdefault(f"missing_placeholder:{braced(name)}", None)
    return list(problems)


def fill_placeholders(text: str, values: Mapping[str, str]) -> str:
    """Replace every well-formed ``{variable_N}`` by ``values["variable_N"]`` in one pass.

    The inserted values are never scanned again, so a value holding ``{variable_2}`` or a
    backslash stays literal. A placeholder without a value raises KeyError naming it.
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(name)
        value = values[name]
        if value is None:
            raise ValueError(f"placeholder {braced(name)} has no value (None)")
        return value if isinstance(value, str) else str(value)

    return PLACEHOLDER_RE.sub(replace, text)
