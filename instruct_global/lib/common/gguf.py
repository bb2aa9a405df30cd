"""Checks of a GGUF model file, before llama.cpp is asked to load it (its own error says only
"Failed to init server"), and a fingerprint of the weights for cache keys."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

GGUF_MAGIC = b"GGUF"
_FINGERPRINT_BYTES = 1 << 20


def gguf_problem(path: str | Path) -> str | None:
    """Why ``path`` is not a loadable GGUF file, or None when it looks like one."""
    path = Path(path).expanduser()
    if not path.exists():
        return f"there is no file {path}"
    if path.is_dir():
        found = sorted(p.name for p in path.glob("*.gguf"))
        hint = f" (it holds {', '.join(found[:3])}: give one of them)" if found else ""
        return f"{path} is a folder, not a .gguf file{hint}"
    if not os.access(path, os.R_OK):
        return f"{path} is not readable by this user"
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        return f"{path} cannot be read ({exc.strerror or exc})"
    if magic != GGUF_MAGIC:
        return f"{path} is not a GGUF file (it does not start with the GGUF magic bytes)"
    return None


def gguf_fingerprint(path: str | Path) -> str:
    """File name, size and a hash of its first and last MiB: stable across machines and install
    folders, and different when the weights change (a re-quantised file under the same name)."""
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        digest.update(handle.read(_FINGERPRINT_BYTES))
        if size > 2 * _FINGERPRINT_BYTES:
            handle.seek(size - _FINGERPRINT_BYTES)
            digest.update(handle.read(_FINGERPRINT_BYTES))
    return f"{path.name}@{size}:{digest.hexdigest()[:16]}"
