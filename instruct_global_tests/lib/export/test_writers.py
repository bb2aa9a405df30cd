"""Every format written and readable; the dataset card's YAML header; push_to_hub fails clearly offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from instruct_global.lib.export.sft_dataset import build_export
from instruct_global.lib.export.writers import PushToHubError, dataset_card, push_to_hub, write_all_formats
from instruct_global_tests.fixtures.instruction_rows import contract_rows


def test_formats_round_trip(tmp_path: Path) -> None:
    frame = build_export(contract_rows(30)).frame
    card = dataset_card("yor", "Yoruba", frame["split"].value_counts().to_dict(), ["CC-BY-SA-4.0"])
    paths = write_all_formats(frame, tmp_path, card)
    for split in ("train", "validation", "test"):
        chat = [json.loads(x) for x in Path(paths[f"{split}_chat_jsonl"]).read_text("utf-8").splitlines()]
        assert len(chat) == (frame["split"] == split).sum()
        assert all(set(x) == {"messages"} for x in chat)
    from datasets import load_from_disk

    reloaded = load_from_disk(paths["hf_dataset"])
    assert sorted(reloaded) == ["test", "train", "validation"]
    header = yaml.safe_load((tmp_path / "README.md").read_text("utf-8").split("---")[1])
    assert header["language"] == ["yor"] and header["license"] == "cc-by-sa-4.0"
    # a second export replaces the folder whole
    write_all_formats(frame.head(20), tmp_path, card)
    assert sum(len(load_from_disk(paths["hf_dataset"])[s]) for s in ("train", "validation", "test")) == 20
    assert not list(tmp_path.glob("*.staging")) and not list(tmp_path.glob("*.old"))


def test_push_to_hub_offline_fails_clearly_without_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    frame = build_export(contract_rows(12)).frame
    token = "hf_secretTOKENvalue1234567890"
    with pytest.raises(PushToHubError, match="push_to_hub to me/instruct-yor failed") as info:
        push_to_hub(frame, "me/instruct-yor", token, "card")
    assert token not in str(info.value)
