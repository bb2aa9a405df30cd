"""Where a local training run lives: one folder per (base model, settings, training data).

The same data and settings map to the same folder, so a crashed run finds its checkpoints and a
finished one its adapter; changed data or settings start a fresh folder.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DONE_FILE = "training_result.json"


def run_key(base_model: str, settings: dict[str, Any], train_messages: Sequence[Any]) -> str:
    material = json.dumps([base_model, settings, list(train_messages)], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:16]


def finished_result(folder: Path) -> dict[str, Any] | None:
    path = folder / DONE_FILE
    if not path.is_file() or not (folder / "adapter" / "adapter_config.json").is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def record_finished(folder: Path, result: dict[str, Any]) -> None:
    from instruct_global.lib.common.atomic import atomic_write

    body = json.dumps(result, indent=2, default=str).encode("utf-8")
    atomic_write(folder / DONE_FILE, lambda handle: handle.write(body))
