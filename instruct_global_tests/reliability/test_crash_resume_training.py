"""Crash and resume of the train stage: `dagster job execute` of ``finetuned_model`` SIGKILLed while it polls
a hosted fine-tuning job (the local OpenAI fine-tuning server), and while it trains a LoRA adapter locally
(a tiny model, checkpoints every 2 steps); each re-run resumes instead of paying or training again."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from dagster import materialize
from safetensors.torch import load_file

from instruct_global.assets.export import sft_dataset
from instruct_global.lib.train.checkpoints import checkpoint_step, complete_checkpoints
from instruct_global.resources.finetuning import HuggingFaceHubResource
from instruct_global.resources.parquet_io import PartitionedParquetIOManager
from instruct_global_tests.fixtures.openai_finetune_server import OpenAIFineTuningServer
from instruct_global_tests.fixtures.tiny_causal_lm import build_tiny_causal_lm
from instruct_global_tests.reliability.crash_harness import (
    CrashLog,
    job_env,
    release_killed_runs,
    run_job,
    torn_files,
    write_run_config,
)
from instruct_global_tests.reliability.fault_proxy import FaultProxy
from instruct_global_tests.reliability.stand_in_dataset import instruction_dataset

pytestmark = pytest.mark.reliability

MODULE = "instruct_global_tests.reliability.training_definitions"


def _export(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sft_dataset (and its chat JSONL files) for yor under ``root``/data, in-process."""
    monkeypatch.setenv("INSTRUCT_GLOBAL_DATA_DIR", str(root / "data"))
    result = materialize([instruction_dataset, sft_dataset], partition_key="yor",
                         resources={"io_manager": PartitionedParquetIOManager(), "hub": HuggingFaceHubResource()},
                         run_config={"ops": {"sft_dataset": {"config": {"validation_share": 0.15, "test_share": 0.15}}}})  # fmt: skip
    assert result.success


def _model_row(root: Path) -> dict:
    return pd.read_parquet(root / "data" / "finetuned_model" / "yor.parquet").iloc[0].to_dict()


def test_hosted_finetune_killed_while_polling_resumes_the_same_job(tmp_path: Path, monkeypatch) -> None:
    config = {"ops": {"finetuned_model": {"config": {"backend": "openai", "poll_interval_s": 0.05}}}}
    log = CrashLog()
    with OpenAIFineTuningServer() as server, FaultProxy(server.root_url, protocol="openai", seed=0, rate=0.0) as proxy:
        server.job_statuses = ["validating_files", "queued", "running", "running", "running", "succeeded"]
        env_extra = {"RELIABILITY_FINETUNE_URL": f"{proxy.url}/v1"}
        for root in (tmp_path / "reference", tmp_path / "crashed"):
            _export(root, monkeypatch)
        path = write_run_config(tmp_path / "finetune.yaml", config)

        reference = run_job(tmp_path / "reference", MODULE, "finetune_job", path, job_env(tmp_path / "reference", env_extra))
        assert reference.returncode == 0, reference.log[-4000:]
        creates, uploads = server.counts["fine_tuning.create"], server.counts["files.create"]
        assert creates == 1

        def polling(method: str, target: str, body: bytes) -> bool:
            return method == "GET" and target.split("?")[0].rstrip("/").count("/") == 4 and "/fine_tuning/jobs/" in target

        proxy.set_gate(polling, after=2)  # killed while the job is queued / running
        root = tmp_path / "crashed"
        env = job_env(root, env_extra)
        killed = run_job(root, MODULE, "finetune_job", path, env, kill_when=proxy.gate_settled)
        assert killed.killed, killed.log[-3000:]
        log.killed("hosted fine-tuning polling", killed)
        assert not torn_files(root / "data")
        assert "released run" in release_killed_runs(env)
        assert server.counts["fine_tuning.create"] == creates + 1
        job_ids = [jid for jid in server.jobs if jid not in {_model_row(tmp_path / "reference")["job_id"]}]
        assert len(job_ids) == 1 and server.jobs[job_ids[0]]["status"] != "succeeded"
        proxy.set_gate(None)
        resumed = run_job(root, MODULE, "finetune_job", path, env)
        log.resumed("hosted fine-tuning polling", resumed)
        assert resumed.returncode == 0, resumed.log[-4000:]

    # the re-run polled the job it had created; it neither uploaded nor created again
    print(f"\nkills {log.kills}; resumes {log.resumes}; seconds {log.seconds}; "
          f"jobs created {server.counts['fine_tuning.create']} for 2 trainings; uploads {server.counts['files.create']}")
    assert server.counts["fine_tuning.create"] == creates + 1
    assert server.counts["files.create"] == 2 * uploads
    row, expected = _model_row(root), _model_row(tmp_path / "reference")
    assert row["job_id"] == job_ids[0] and row["resumed_from"] == job_ids[0]
    assert row["finetuned_model"].endswith(job_ids[0][-6:])
    same = ("backend", "base_model", "train_loss", "global_step")
    assert {k: row[k] for k in same} == {k: expected[k] for k in same}


def test_local_training_killed_after_a_checkpoint_resumes_from_it(tmp_path: Path, monkeypatch) -> None:
    tiny_lm = build_tiny_causal_lm(tmp_path / "tiny_lm")
    config = {"ops": {"finetuned_model": {"config": {
        "backend": "local", "base_model": str(tiny_lm), "r": 8, "max_steps": 16, "save_steps": 2,
        "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1, "max_length": 256, "learning_rate": 5e-3,
    }}}}  # fmt: skip
    path = write_run_config(tmp_path / "train.yaml", config)
    log = CrashLog()
    for root in (tmp_path / "reference", tmp_path / "crashed"):
        _export(root, monkeypatch)
    reference = run_job(tmp_path / "reference", MODULE, "finetune_job", path, job_env(tmp_path / "reference", {}))
    assert reference.returncode == 0, reference.log[-4000:]

    root = tmp_path / "crashed"
    env = job_env(root, {})

    def checkpoint_four_saved() -> bool:
        return any(checkpoint_step(c) >= 4 for run in (root / "data" / "models" / "yor").glob("*/checkpoints")
                   for c in complete_checkpoints(run))  # fmt: skip

    # no slack: a checkpoint is complete once its trainer_state.json reads back
    killed = run_job(root, MODULE, "finetune_job", path, env, kill_when=checkpoint_four_saved, slack_s=0.0)
    assert killed.killed, killed.log[-3000:]
    log.killed("local training", killed)
    assert not torn_files(root / "data")
    assert "its pool slots freed" in release_killed_runs(env)
    assert not (root / "data" / "finetuned_model" / "yor.parquet").exists()
    resumed = run_job(root, MODULE, "finetune_job", path, env)
    log.resumed("local training", resumed)
    assert resumed.returncode == 0, resumed.log[-4000:]

    row, expected = _model_row(root), _model_row(tmp_path / "reference")
    print(f"\nkills {log.kills}; resumes {log.resumes}; seconds {log.seconds}; resumed from {row['resumed_from']}")
    # (the checkpoint itself is gone by now: save_total_limit keeps the newest only)
    resumed_name = Path(row["resumed_from"]).name
    assert resumed_name.startswith("checkpoint-") and int(resumed_name.split("-")[1]) >= 4
    assert row["global_step"] == expected["global_step"] == 16
    ours = load_file(str(Path(row["adapter_dir"]) / "adapter_model.safetensors"))
    theirs = load_file(str(Path(expected["adapter_dir"]) / "adapter_model.safetensors"))
    assert ours.keys() == theirs.keys()
    for name in theirs:  # resumed from the checkpoint's weights, optimizer and RNG state: the same adapter
        assert (ours[name] - theirs[name]).abs().max().item() < 1e-5, name
    assert json.loads((Path(row["adapter_dir"]) / "adapter_config.json").read_text())["r"] == 8
