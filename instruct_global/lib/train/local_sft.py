"""Local LoRA / QLoRA supervised fine-tuning with trl's SFTTrainer, resumable after a crash.

Data are conversational prompt-completion examples (``prompt``: system and user turns,
``completion``: the assistant turn), so trl computes the loss on the assistant turn only
(``completion_only_loss``) with any chat template, also a template without generation markers.
Sequences are packed (best-fit decreasing) or, without packing, batched by length.

Checkpoints go to ``<output>/checkpoints``; a re-run with the same output folder resumes from the
last complete one (optimizer, scheduler, RNG and step). The adapter, tokenizer and a model card
go to ``<output>/adapter``; merged weights to ``<output>/merged`` when asked for.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instruct_global.lib.train.checkpoints import checkpoint_step, last_checkpoint
from instruct_global.lib.train.hardware import qlora_quantization_config, require_gpu
from instruct_global.lib.train.model_card import write_model_card
from instruct_global.lib.train.settings import LoraSettings


class TrainingDataError(ValueError):
    pass


@dataclass
class TrainResult:
    adapter_dir: str
    merged_dir: str
    resumed_from: str  # checkpoint path, "" for a fresh start
    resumed_step: int
    first_step_run: int  # the first optimizer step this run executed (resumed_step + 1 when resuming)
    global_step: int
    train_loss: float | None
    eval_loss: float | None
    train_examples: int
    seconds: float
    log_history: list[dict[str, Any]] = field(default_factory=list)


def to_prompt_completion(
    messages_list: Sequence[Sequence[dict[str, str]]], source: str
) -> list[dict[str, Any]]:
    """Chat examples as conversational prompt-completion rows; the last turn must be the assistant's."""
    rows = []
    for index, messages in enumerate(messages_list):
        if (
            not messages
            or messages[-1].get("role") != "assistant"
            or not str(messages[-1].get("content", "")).strip()
        ):
            raise TrainingDataError(f"{source}: example {index} does not end with a non-empty assistant turn")
        rows.append({"prompt": [dict(m) for m in messages[:-1]], "completion": [dict(messages[-1])]})
    return rows


def _check_tokenizer(tokenizer: Any, base_model: str) -> None:
    if not getattr(tokenizer, "chat_template", None):
        raise TrainingDataError(
            f"{base_model} has no chat template: the conversational format needs one "
            "(use an instruct/chat model or set tokenizer.chat_template)"
        )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token


def load_base(base_model: str, settings: LoraSettings) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if settings.bf16:
        require_gpu("bf16 training")
    kwargs: dict[str, Any] = {}
    if settings.qlora:
        kwargs["quantization_config"] = qlora_quantization_config()
        kwargs["dtype"] = torch.bfloat16
        kwargs["device_map"] = {"": 0}
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    _check_tokenizer(tokenizer, base_model)
    model = AutoModelForCausalLM.from_pretrained(base_model, **kwargs)
    if settings.qlora:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=settings.gradient_checkpointing
        )
    return model, tokenizer


def _sft_config(settings: LoraSettings, checkpoints: Path, has_eval: bool) -> Any:
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(checkpoints),
        learning_rate=settings.learning_rate,
        # QLoRA's "constant" schedule with its 3 % warm-up (plain "constant" would ignore the warm-up)
        lr_scheduler_type=settings.lr_scheduler_type,
        num_train_epochs=settings.num_train_epochs,
        max_steps=settings.max_steps,
        per_device_train_batch_size=settings.per_device_train_batch_size,
        per_device_eval_batch_size=settings.per_device_train_batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation_steps,
        max_length=settings.max_length,
        weight_decay=settings.weight_decay,
        max_grad_norm=settings.max_grad_norm,
        seed=settings.seed,
        data_seed=settings.seed,
        packing=settings.packing,
        **_version_args(SFTConfig, settings),
        completion_only_loss=True,
        **_checkpointing_args(SFTConfig, settings.gradient_checkpointing),
        save_strategy="steps",
        save_steps=settings.save_steps,
        save_total_limit=settings.save_total_limit,
        logging_steps=settings.logging_steps,
        eval_strategy="no",
        bf16=settings.bf16 or settings.qlora,
        use_cpu=not _cuda(),
        report_to=[],
        dataset_num_proc=None,
        disable_tqdm=True,
        **settings.extra,
    )


def _version_args(config_cls: Any, settings: LoraSettings) -> dict[str, Any]:
    """Warm-up and length grouping under the names this transformers uses (5.x renamed both)."""
    fields = config_cls.__dataclass_fields__
    grouped = settings.group_by_length and not settings.packing  # batches of similar length pad less
    out: dict[str, Any] = {}
    if "warmup_ratio" in fields:
        out["warmup_ratio"] = settings.warmup_ratio
    else:  # transformers 5: a float below 1 is a share of the steps
        out["warmup_steps"] = settings.warmup_ratio
    if "train_sampling_strategy" in fields:
        out["train_sampling_strategy"] = "group_by_length" if grouped else "random"
    else:
        out["group_by_length"] = grouped
    return out


def _checkpointing_args(config_cls: Any, enabled: bool) -> dict[str, Any]:
    """Gradient checkpointing under the name this transformers uses (5.x renamed it)."""
    name = (
        "activation_checkpointing"
        if "activation_checkpointing" in config_cls.__dataclass_fields__
        else ("gradient_checkpointing")
    )
    return {name: enabled, f"{name}_kwargs": {"use_reentrant": False} if enabled else None}


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def build_trainer(
    base_model: str,
    train_messages: Sequence[Sequence[dict[str, str]]],
    checkpoints: Path,
    settings: LoraSettings = LoraSettings(),
    *,
    eval_messages: Sequence[Sequence[dict[str, str]]] = (),
    callbacks: Sequence[Any] = (),
) -> tuple[Any, Any]:
    """trl's SFTTrainer with a fresh LoRA adapter on the base model, and the tokenizer."""
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTTrainer

    train_rows = to_prompt_completion(train_messages, "train split")
    if not train_rows:
        raise TrainingDataError("the train split is empty: nothing to fine-tune on")
    eval_rows = to_prompt_completion(eval_messages, "validation split") if eval_messages else []
    model, tokenizer = load_base(base_model, settings)
    peft_config = LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=settings.target_modules,
        bias="none",
        task_type="CAUSAL_LM",
    )
    trainer = SFTTrainer(
        model=model,
        args=_sft_config(settings, checkpoints, bool(eval_rows)),
        train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=list(callbacks),
    )
    return trainer, tokenizer


def train_lora(
    base_model: str,
    train_messages: Sequence[Sequence[dict[str, str]]],
    output_dir: str | Path,
    settings: LoraSettings = LoraSettings(),
    *,
    eval_messages: Sequence[Sequence[dict[str, str]]] = (),
    dataset_note: str = "",
    callbacks: Sequence[Any] = (),
) -> TrainResult:
    """Train (or resume) the adapter in ``output_dir``; see the module docstring for the layout."""
    from transformers import TrainerCallback

    started = time.monotonic()
    output = Path(output_dir)
    checkpoints = output / "checkpoints"
    first_step: list[int] = []

    class _FirstStep(TrainerCallback):  # records where this run actually started
        def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            if not first_step:
                first_step.append(int(state.global_step))

    trainer, tokenizer = build_trainer(
        base_model,
        train_messages,
        checkpoints,
        settings,
        eval_messages=eval_messages,
        callbacks=[_FirstStep(), *callbacks],
    )
    resume = last_checkpoint(checkpoints)
    resumed_step = checkpoint_step(resume) if resume else 0
    outcome = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    eval_loss = None
    if trainer.eval_dataset is not None:
        eval_loss = float(trainer.evaluate().get("eval_loss", float("nan")))

    adapter_dir = output / "adapter"
    staging = output / "adapter.staging"
    shutil.rmtree(staging, ignore_errors=True)
    trainer.model.save_pretrained(str(staging))
    tokenizer.save_pretrained(str(staging))
    result = TrainResult(
        adapter_dir=str(adapter_dir),
        merged_dir="",
        resumed_from=str(resume) if resume else "",
        resumed_step=resumed_step,
        first_step_run=first_step[0] if first_step else resumed_step,
        global_step=int(trainer.state.global_step),
        train_loss=float(outcome.training_loss) if outcome.training_loss is not None else None,
        eval_loss=eval_loss,
        train_examples=len(train_messages),
        seconds=round(time.monotonic() - started, 2),
        log_history=list(trainer.state.log_history),
    )
    write_model_card(
        staging, base_model=base_model, settings=settings, result=result, dataset_note=dataset_note
    )
    shutil.rmtree(adapter_dir, ignore_errors=True)
    staging.rename(adapter_dir)
    if settings.merge_weights:
        result.merged_dir = str(merge_adapter(base_model, adapter_dir, output / "merged"))
    return result


def merge_adapter(base_model: str, adapter_dir: Path, merged_dir: Path) -> Path:
    """Base weights with the adapter folded in (full precision: a 4-bit base cannot be merged in place)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(base_model)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    shutil.rmtree(merged_dir, ignore_errors=True)
    merged.save_pretrained(str(merged_dir))
    AutoTokenizer.from_pretrained(str(adapter_dir)).save_pretrained(str(merged_dir))
    return merged_dir
