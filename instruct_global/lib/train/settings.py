"""Hyperparameters of local LoRA / QLoRA fine-tuning, with the QLoRA paper's Guanaco defaults."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class LoraSettings:
    # adapter (QLoRA / Guanaco: r 64, alpha 16, dropout 0.1 on all linear layers)
    r: int = 64
    alpha: int = 16
    dropout: float = 0.1
    target_modules: str | list[str] = "all-linear"
    # optimisation (QLoRA: lr 2e-4, constant schedule, 3 % warm-up)
    learning_rate: float = 2e-4
    lr_scheduler_type: str = "constant_with_warmup"
    warmup_ratio: float = 0.03
    num_train_epochs: float = 3.0
    max_steps: int = -1  # > 0 overrides epochs
    per_device_train_batch_size: int = 4
    gradient_accumulation_steps: int = 4
    max_length: int = 1024
    weight_decay: float = 0.0
    max_grad_norm: float = 0.3
    seed: int = 42
    # batching: QLoRA/Guanaco group batches by length; packing (best-fit decreasing, padding-free) pays
    # with FlashAttention on a GPU, while on CPU/SDPA it is slower (benchmarks/bench_training.py)
    packing: bool = False
    group_by_length: bool = True
    gradient_checkpointing: bool = True
    # checkpoints (kept so a crashed run resumes)
    save_steps: int = 50
    save_total_limit: int = 3
    logging_steps: int = 10
    # hardware
    qlora: bool = False  # 4-bit NF4 + double quantisation, bf16 compute: GPU only
    bf16: bool = False  # GPU only
    merge_weights: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> LoraSettings:
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        return cls(**known)
