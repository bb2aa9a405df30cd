"""Find the checkpoint a crashed run resumes from.

A run killed while writing ``checkpoint-N`` leaves a folder without ``trainer_state.json`` (Trainer
writes it last), or with that file cut short (it is not written atomically): such a folder is
skipped, the one before it is used.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


def complete_checkpoints(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    found = []
    for child in folder.iterdir():
        match = _CHECKPOINT_RE.match(child.name)
        if match and child.is_dir() and _readable_state(child) is not None:
            found.append((int(match.group(1)), child))
    return [path for _, path in sorted(found)]


def _readable_state(checkpoint: Path) -> dict | None:
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and isinstance(state.get("global_step"), int) else None


def last_checkpoint(folder: Path) -> Path | None:
    checkpoints = complete_checkpoints(folder)
    return checkpoints[-1] if checkpoints else None


def checkpoint_step(checkpoint: Path) -> int:
    state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    return int(state.get("global_step", 0))
