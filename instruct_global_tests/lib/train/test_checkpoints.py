"""Which checkpoint a crashed run resumes from: the last one whose trainer state was fully written."""

from __future__ import annotations

import json
from pathlib import Path

from instruct_global.lib.train.checkpoints import checkpoint_step, complete_checkpoints, last_checkpoint


def _checkpoint(folder: Path, step: int, state: str | None) -> None:
    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "adapter_model.safetensors").write_bytes(b"weights")
    if state is not None:
        (path / "trainer_state.json").write_text(state, encoding="utf-8")


def test_torn_or_missing_trainer_state_is_skipped(tmp_path: Path) -> None:
    _checkpoint(tmp_path, 4, json.dumps({"global_step": 4}))
    _checkpoint(tmp_path, 8, json.dumps({"global_step": 8}))
    _checkpoint(tmp_path, 12, "")  # SIGKILL while the state was being written
    _checkpoint(tmp_path, 16, '{"global_step": 1')  # cut mid-file
    _checkpoint(tmp_path, 20, None)  # killed before the state
    (tmp_path / "checkpoint-x").mkdir()
    assert [p.name for p in complete_checkpoints(tmp_path)] == ["checkpoint-4", "checkpoint-8"]
    last = last_checkpoint(tmp_path)
    assert last is not None and checkpoint_step(last) == 8


def test_no_folder_means_no_checkpoint(tmp_path: Path) -> None:
    assert last_checkpoint(tmp_path / "missing") is None
