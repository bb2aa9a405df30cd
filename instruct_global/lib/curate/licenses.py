"""Licence identifiers per source, and the allowed-licence filter.

Corpus rows carry a human-readable licence text (``lib/corpus/wikipedia.LICENSE``,
``lib/corpus/bbc.LICENSE``); the dataset uses short identifiers (SPDX where one exists) so a
list of allowed licences can be configured and the card's YAML header can name them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

CC_BY_SA_4 = "CC-BY-SA-4.0"
BBC_COPYRIGHT = "BBC-copyright"
MACHINE_GENERATED = "machine-generated"  # model output (self-instruct): the generator's terms apply
UNSPECIFIED = "unspecified"  # a user dataset whose schema row names no licence

# What each identifier means, for the card.
LICENSE_TERMS: dict[str, str] = {
    CC_BY_SA_4: "Creative Commons Attribution-ShareAlike 4.0: reuse with attribution, share alike",
    BBC_COPYRIGHT: "© BBC: copyrighted news text, reuse restricted (non-commercial research, no redistribution)",
    MACHINE_GENERATED: "written by a language model from seed tasks; the generator's terms of use apply",
    UNSPECIFIED: "the dataset's owner stated no licence: check before publishing",
}

# Allowed by default: open licences, model output and the user's own (unstated) data. BBC text is
# not: its terms forbid redistribution, so it enters a dataset only when a user allows it.
DEFAULT_ALLOWED = (CC_BY_SA_4, "CC-BY-4.0", "CC0-1.0", "Apache-2.0", "MIT", MACHINE_GENERATED, UNSPECIFIED)

# Hugging Face card ids (the YAML ``license`` field) of the identifiers that have one.
HF_LICENSE_IDS = {CC_BY_SA_4: "cc-by-sa-4.0", "CC-BY-4.0": "cc-by-4.0", "CC0-1.0": "cc0-1.0",
                  "Apache-2.0": "apache-2.0", "MIT": "mit"}  # fmt: skip


def license_id(raw: object) -> str:
    """A short identifier for a licence as sources write it ("CC BY-SA 4.0", "© BBC; ...")."""
    text = "" if raw is None else str(raw).strip()
    if not text or text.lower() in ("nan", "none"):
        return UNSPECIFIED
    compact = re.sub(r"[\s_]+", "-", text).upper()
    if "BBC" in compact:
        return BBC_COPYRIGHT
    if compact.startswith(("CC-BY-SA-4", "CC-BY-SA4")) or "ATTRIBUTION-SHAREALIKE-4" in compact:
        return CC_BY_SA_4
    for spdx in ("CC-BY-4.0", "CC0-1.0", "Apache-2.0", "MIT"):
        if compact == spdx.upper():
            return spdx
    return text  # the user's own wording: kept, so an allowed list can name it exactly


def is_allowed(license_: str, allowed: Iterable[str]) -> tuple[bool, str | None]:
    """(keep, reason) of a row with ``license_`` under the allowed list (compared case-insensitively)."""
    wanted = {a.strip().casefold() for a in allowed}
    if license_.casefold() in wanted:
        return True, None
    return False, f"license_not_allowed:{license_}"
