"""GPU-only options (4-bit QLoRA, bf16) fail clearly on a machine without CUDA.

bitsandbytes imports on CPU and accepts 4-bit settings there without complaint, so the check is
ours: ``torch.cuda.is_available()``.
"""

from __future__ import annotations

from typing import Any


class GPURequiredError(RuntimeError):
    pass


def require_gpu(what: str) -> None:
    import torch

    if not torch.cuda.is_available():
        raise GPURequiredError(
            f"{what} needs a CUDA GPU, and torch.cuda.is_available() is False on this machine "
            f"(torch {torch.__version__}). Train with qlora=False and bf16=False here, or run on a GPU."
        )


def qlora_quantization_config() -> Any:
    """4-bit NF4 with double quantisation and bf16 compute (the QLoRA recipe)."""
    require_gpu("QLoRA (bitsandbytes 4-bit NF4)")
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )
