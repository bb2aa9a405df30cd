"""The model card saved beside the adapter: base model, data, hyperparameters, losses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from instruct_global.lib.train.settings import LoraSettings


def model_card_text(*, base_model: str, settings: LoraSettings, result: Any, dataset_note: str) -> str:
    method = "QLoRA (4-bit NF4, double quantisation, bf16 compute)" if settings.qlora else "LoRA"
    hyper = {k: v for k, v in settings.as_dict().items() if k != "extra"}
    return "\n".join(
        [
            "---",
            f"base_model: {base_model}",
            "library_name: peft",
            "tags:\n- lora\n- sft\n- trl\n- instruct-global",
            "---",
            "",
            f"# {method} adapter for {base_model}",
            "",
            f"Fine-tuned with trl's SFTTrainer on {result.train_examples} conversational examples, loss on the "
            "assistant turns only.",
            "",
            dataset_note,
            "",
            "| measure | value |",
            "|---|---|",
            f"| optimizer steps | {result.global_step} |",
            f"| resumed from | {result.resumed_from or '-'} |",
            f"| train loss | {result.train_loss} |",
            f"| validation loss | {result.eval_loss} |",
            "",
            "## Hyperparameters",
            "",
            "```json",
            json.dumps(hyper, indent=2),
            "```",
            "",
        ]
    )


def write_model_card(folder: Path, **kwargs: Any) -> Path:
    path = Path(folder) / "README.md"
    path.write_text(model_card_text(**kwargs), encoding="utf-8")
    return path
