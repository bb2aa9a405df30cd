"""Benchmark: LoRA fine-tuning throughput and padding, with and without sequence packing.

Run from the repository root:

    python benchmarks/bench_training.py           # 240 examples, one epoch each way
    python benchmarks/bench_training.py --quick   # 64 examples

The same conversational examples (responses from a few words to a few hundred characters, as in
instruction data) train the tiny Llama-style test model through trl's SFTTrainer with LoRA:
(a) without packing, batches grouped by length, padded to the longest in the batch;
(b) with packing (best-fit decreasing into ``max_length`` bins, padding-free).
Printed per run: real (non-padding) tokens per second of training, and the share of padding
positions in the batches the trainer builds. CPU, one thread. Padding-free packing flattens a batch
into one row; off FlashAttention (CPU, SDPA) transformers then masks the packed sequences apart
with a dense block-diagonal mask over the whole row, so fewer tokens are wasted but each is dearer.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from instruct_global.lib.train.local_sft import build_trainer
from instruct_global.lib.train.settings import LoraSettings
from instruct_global_tests.fixtures.instruction_rows import WORDS
from instruct_global_tests.fixtures.tiny_causal_lm import build_tiny_causal_lm


def examples(n: int, seed: int = 0) -> list[list[dict[str, str]]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        length = int(rng.paretovariate(1.2) * 4)  # many short answers, a long tail
        out.append(
            [
                {"role": "user", "content": " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 16)))},
                {
                    "role": "assistant",
                    "content": " ".join(rng.choice(WORDS) for _ in range(min(length, 120))),
                },
            ]
        )
    return out


def run(model_path: Path, data: list, packing: bool, workdir: Path) -> tuple[float, float, int, int]:
    """One epoch: (real tokens per second, padding share, real tokens, optimizer steps)."""
    settings = LoraSettings(
        r=8,
        alpha=16,
        per_device_train_batch_size=8,
        gradient_accumulation_steps=1,
        max_length=512,
        packing=packing,
        group_by_length=True,
        num_train_epochs=1,
        save_steps=10_000,
        logging_steps=10_000,
        gradient_checkpointing=False,
    )
    trainer, _ = build_trainer(str(model_path), data, workdir / ("packed" if packing else "padded"), settings)
    real = total = 0
    for batch in trainer.get_train_dataloader():
        mask = batch.get("attention_mask")
        n = batch["input_ids"].numel()
        real += int(mask.sum()) if mask is not None else n
        total += n
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    return real / seconds, 1 - real / total, real, int(trainer.state.global_step)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    n = 64 if args.quick else 240
    data = examples(n)
    with tempfile.TemporaryDirectory() as tmp:
        model_path = build_tiny_causal_lm(Path(tmp) / "tiny")
        print(f"{n} examples, one epoch each way, batches of 8 sequences (max_length 512)")
        for packing in (False, True):
            tokens_per_s, padding, real, steps = run(model_path, data, packing, Path(tmp))
            label = "packing (bfd, padding-free)" if packing else "no packing, length-grouped"
            print(
                f"{label:30s} {tokens_per_s:8.0f} real tokens/s   padding {100 * padding:5.1f} %   "
                f"{steps:3d} steps   {real} real tokens"
            )


if __name__ == "__main__":
    main()
