"""Load the base and the fine-tuned causal LM for scoring (CPU or one GPU, eval mode)."""

from __future__ import annotations

from typing import Any


def load_causal_lm(name_or_path: str, adapter_dir: str = "") -> tuple[Any, Any]:
    """The model (with the LoRA adapter merged in memory when given) and its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(adapter_dir or name_or_path)
    model = AutoModelForCausalLM.from_pretrained(name_or_path)
    if adapter_dir:
        from peft import PeftModel

        # merging changes nothing in the outputs and makes every forward pass cheaper
        model = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    return model.to(device).eval(), tokenizer
