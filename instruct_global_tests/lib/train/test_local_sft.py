"""Local LoRA through trl's SFTTrainer on the tiny model: loss on assistant turns only, artefacts, GPU-only
options refused on CPU, and a training subprocess killed with SIGKILL resumes from its last checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from instruct_global.lib.train.checkpoints import complete_checkpoints, last_checkpoint
from instruct_global.lib.train.hardware import GPURequiredError
from instruct_global.lib.train.local_sft import (
    TrainingDataError,
    build_trainer,
    to_prompt_completion,
    train_lora,
)
from instruct_global.lib.train.settings import LoraSettings
from instruct_global_tests.conftest import REPO_ROOT
from instruct_global_tests.fixtures.tiny_causal_lm import build_tiny_causal_lm

SMALL = {
    "r": 4,
    "alpha": 8,
    "per_device_train_batch_size": 2,
    "gradient_accumulation_steps": 1,
    "max_length": 128,
    "save_steps": 2,
    "logging_steps": 1,
    "learning_rate": 1e-3,
}


def examples(n: int) -> list[list[dict[str, str]]]:
    return [
        [
            {"role": "system", "content": "SYSTEMTEXT"},
            {"role": "user", "content": f"USERTEXT {i} kí ni?"},
            {"role": "assistant", "content": f"Ìdáhùn {i} ni yìí."},
        ]
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory) -> Path:
    path = build_tiny_causal_lm(tmp_path_factory.mktemp("tiny_lm"))
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(path).chat_template  # the conversational format needs one
    return path


@pytest.mark.parametrize("packing", [True, False])
def test_loss_only_on_assistant_turns(tiny_lm: Path, tmp_path: Path, packing: bool) -> None:
    trainer, tokenizer = build_trainer(
        str(tiny_lm), examples(6), tmp_path / "ck", LoraSettings(**SMALL, packing=packing, max_steps=1)
    )
    batch = next(iter(trainer.get_train_dataloader()))
    ids, labels = batch["input_ids"].flatten().tolist(), batch["labels"].flatten().tolist()
    trained = tokenizer.decode([t for t, label in zip(ids, labels, strict=True) if label != -100])
    everything = tokenizer.decode(ids)
    assert "USERTEXT" in everything and "SYSTEMTEXT" in everything
    assert "USERTEXT" not in trained and "SYSTEMTEXT" not in trained
    assert "Ìdáhùn" in trained


def test_train_saves_adapter_tokenizer_card_and_merged(tiny_lm: Path, tmp_path: Path) -> None:
    result = train_lora(
        str(tiny_lm),
        examples(8),
        tmp_path / "run",
        LoraSettings(**SMALL, max_steps=2, merge_weights=True),
        eval_messages=examples(2),
    )
    adapter = Path(result.adapter_dir)
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["r"] == 4 and config["lora_alpha"] == 8
    names = {m.split(".")[-1] for m in config["target_modules"]}
    assert names == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    }  # all linear layers
    assert (adapter / "tokenizer.json").is_file() and "# LoRA adapter" in (adapter / "README.md").read_text()
    assert result.global_step == 2 and result.eval_loss is not None and result.resumed_from == ""
    assert (Path(result.merged_dir) / "model.safetensors").is_file()
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(result.merged_dir)  # loads as a plain model


def test_guanaco_defaults() -> None:
    s = LoraSettings()
    assert (s.r, s.alpha, s.dropout, s.learning_rate, s.warmup_ratio, s.target_modules) == (
        64,
        16,
        0.1,
        2e-4,
        0.03,
        "all-linear",
    )
    assert s.lr_scheduler_type == "constant_with_warmup" and s.gradient_checkpointing


@pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="checks the refusal on a machine without CUDA"
)
@pytest.mark.parametrize(("option", "message"), [("qlora", "QLoRA"), ("bf16", "bf16")])
def test_gpu_only_options_fail_clearly_on_cpu(
    tiny_lm: Path, tmp_path: Path, option: str, message: str
) -> None:
    with pytest.raises(GPURequiredError, match=rf"{message}.*torch.cuda.is_available\(\) is False"):
        train_lora(str(tiny_lm), examples(4), tmp_path, LoraSettings(**SMALL, **{option: True}))


def test_bad_examples_are_named() -> None:
    with pytest.raises(TrainingDataError, match="example 1 does not end with a non-empty assistant turn"):
        to_prompt_completion([examples(1)[0], [{"role": "user", "content": "x"}]], "train split")


def test_incomplete_checkpoint_is_skipped(tmp_path: Path) -> None:
    for step, complete in ((2, True), (4, True), (6, False)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        if complete:
            (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    assert [p.name for p in complete_checkpoints(tmp_path)] == ["checkpoint-2", "checkpoint-4"]
    assert last_checkpoint(tmp_path).name == "checkpoint-4"


TRAIN_SCRIPT = textwrap.dedent("""
    import json, sys, time
    from transformers import TrainerCallback
    from instruct_global.lib.train.local_sft import train_lora
    from instruct_global.lib.train.settings import LoraSettings

    class Slow(TrainerCallback):  # slows the steps so the parent can kill us mid-run
        def on_step_end(self, args, state, control, **kwargs):
            time.sleep(float(sys.argv[4]))

    job = json.loads(open(sys.argv[1]).read())
    result = train_lora(job["base"], job["examples"], sys.argv[2], LoraSettings(**job["settings"]), callbacks=[Slow()])
    open(sys.argv[3], "w").write(json.dumps({k: v for k, v in result.__dict__.items() if k != "log_history"}))
""")


@pytest.mark.slow
def test_killed_training_resumes_from_its_last_checkpoint(tiny_lm: Path, tmp_path: Path) -> None:
    job = tmp_path / "job.json"
    job.write_text(
        json.dumps({"base": str(tiny_lm), "examples": examples(8), "settings": {**SMALL, "max_steps": 12}})
    )
    script = tmp_path / "train.py"
    script.write_text(TRAIN_SCRIPT)
    out, result_file = tmp_path / "run", tmp_path / "result.json"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(script), str(job), str(out), str(result_file)]
    proc = subprocess.Popen([*command, "0.3"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(
        c.name == "checkpoint-4" for c in complete_checkpoints(out / "checkpoints")
    ):
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL and not result_file.exists()
    reached = last_checkpoint(out / "checkpoints")
    killed_at = int(reached.name.split("-")[1])
    assert 4 <= killed_at < 12

    rerun = subprocess.run([*command, "0"], env=env, capture_output=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr.decode()[-2000:]
    result = json.loads(result_file.read_text())
    assert result["resumed_from"].endswith(f"checkpoint-{killed_at}")
    assert result["resumed_step"] == killed_at
    assert result["first_step_run"] == killed_at + 1  # it went on from there, not from step 1
    assert result["global_step"] == 12
