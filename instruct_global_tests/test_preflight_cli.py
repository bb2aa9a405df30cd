"""Preflight of a whole job: several things missing fail in seconds, in one message with every fix;
and a run launched through Dagster fails at resource setup, before any stage loads or pays."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from dagster import materialize

from instruct_global.assets.generate import self_instruct_instructions
from instruct_global.preflight import job_problems
from instruct_global.resources.call_cache import CallCacheResource
from instruct_global.resources.llm_llamacpp import LlamaCppLLM
from instruct_global.resources.parquet_io import PartitionedParquetIOManager
from instruct_global_tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow  # a subprocess that imports the definitions


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _preflight(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("INSTRUCT_GLOBAL_", "OPENAI_", "ANTHROPIC_"))}
    full = {**base, "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1", **env}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "instruct_global.preflight", *args],
        cwd=tmp_path, env=full, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    return done, time.perf_counter() - start


def test_everything_missing_is_listed_at_once(tmp_path: Path) -> None:
    config = {"ops": {
        "wikipedia_articles": {"config": {"source": "dump", "dump_path": str(tmp_path / "{wiki}wiki.xml.bz2")}},
        "bbc_articles": {"config": {"source": "saved", "saved_pages_dir": str(tmp_path / "bbc/{service}")}},
        "source_records": {"config": {"schema_csv": str(tmp_path / "{lang}.csv"), "required": True}},
        "self_instruct_instructions": {"config": {"seed_tasks_path": str(tmp_path / "seeds.jsonl")}},
    }}  # fmt: skip
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    env = {
        "INSTRUCT_GLOBAL_LLM": "llamacpp",
        "INSTRUCT_GLOBAL_LLM_MODEL": str(tmp_path / "missing.gguf"),
        "INSTRUCT_GLOBAL_NLLB_MODEL": str(tmp_path / "nllb"),
    }
    done, elapsed = _preflight(tmp_path, env, "--job", "dataset_job", "--partition", "pcm", "-c", "run.yaml")
    message = done.stderr
    assert done.returncode == 1, message
    assert "Preflight of dataset_job for partition pcm: 7 problems" in message
    expected = [
        f"there is no file {tmp_path / 'missing.gguf'}",  # the LLM model
        "INSTRUCT_GLOBAL_LLM_MODEL",  # ... with the variable that sets it
        "INSTRUCT_GLOBAL_LLM=openai-compatible",  # ... and the server / API alternatives
        f"there is no folder {tmp_path / 'nllb'}",  # the translation model
        "Nigerian Pidgin (pcm) is not covered by the translator 'nllb'",  # the translator's language coverage
        f"{tmp_path / 'pcmwiki.xml.bz2'} does not exist",
        f"{tmp_path / 'bbc' / 'pidgin'} does not exist",
        f"{tmp_path / 'pcm.csv'} does not exist",
        f"{tmp_path / 'seeds.jsonl'} does not exist",
    ]
    for fragment in expected:
        assert fragment in message, fragment
    assert message.count("Fix: ") == 7
    assert elapsed < 90  # seconds, most of it importing Dagster; nothing is loaded


def test_a_server_that_does_not_answer_an_unknown_job_and_a_ready_job(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO_ROOT)  # the sample config's paths are relative to it
    base_url = f"http://127.0.0.1:{_closed_port()}/v1"
    env = {"INSTRUCT_GLOBAL_LLM": "openai-compatible", "INSTRUCT_GLOBAL_LLM_MODEL": "qwen2.5",
           "INSTRUCT_GLOBAL_LLM_BASE_URL": base_url, "INSTRUCT_GLOBAL_NLLB_MODEL": str(REPO_ROOT)}  # fmt: skip
    sample = yaml.safe_load((REPO_ROOT / "instruct_global" / "configs" / "sample_run.yaml").read_text())
    problems = job_problems("dataset_job", "yor", env, sample)
    whats = [p.what for p in problems]
    assert f"the OpenAI-compatible server at {base_url} does not answer (ConnectError)" in whats
    assert any("vllm serve" in p.fix for p in problems)
    assert any("lacks config.json" in w for w in whats)  # the NLLB folder is no model
    # the sample job needs no model: from the repository root it is ready
    assert job_problems("sample_corpus_job", "yor", env) == []
    [unknown] = job_problems("no_such_job", "yor", env)
    assert "no_such_job" in unknown.what and "dataset_job" in unknown.fix
    [language] = job_problems("dataset_job", "xyz", env)
    assert "unknown language partition 'xyz'" in language.what


def test_a_dagster_run_fails_at_resource_setup_before_loading(tmp_path: Path) -> None:
    llm = LlamaCppLLM(model=str(tmp_path / "gone.gguf"), cache=CallCacheResource(url=str(tmp_path / "c.db")))
    start = time.perf_counter()
    result = materialize(
        [self_instruct_instructions], partition_key="yor", raise_on_error=False,
        resources={"io_manager": PartitionedParquetIOManager(data_dir=str(tmp_path / "data")), "llm": llm},
        run_config={"ops": {"self_instruct_instructions": {"config": {
            "seed_tasks_path": str(REPO_ROOT / "data" / "seed_tasks" / "seed_tasks.jsonl")}}}},
    )  # fmt: skip
    assert not result.success
    failures = [e for e in result.all_events if e.is_failure]
    text = "\n".join(str(e.event_specific_data.error.to_string()) for e in failures if e.event_specific_data.error)
    assert "Preflight of the LLM backend LlamaCppLLM: 1 problem" in text
    assert f"there is no file {tmp_path / 'gone.gguf'}" in text and "INSTRUCT_GLOBAL_LLM_MODEL" in text
    assert not (tmp_path / "data" / "self_instruct_instructions").exists()
    assert time.perf_counter() - start < 30


def _sample_config(*names: str) -> dict:
    config: dict = {}
    for name in names:
        loaded = yaml.safe_load((REPO_ROOT / "instruct_global" / "configs" / name).read_text())
        config = {**config, **loaded, "ops": {**config.get("ops", {}), **loaded.get("ops", {})}}
    return config


def test_the_offline_sample_is_ready_and_what_the_training_job_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO_ROOT)
    env = {"INSTRUCT_GLOBAL_LLM": "llamacpp", "INSTRUCT_GLOBAL_TRANSLATOR": "none", "HF_HUB_OFFLINE": "1"}
    dataset = _sample_config("sample_run.yaml", "sample_dataset.yaml")
    assert job_problems("dataset_job", "yor", env, dataset) == []  # no translator: its stages step aside
    assert job_problems("training_job", "yor", env, _sample_config("sample_training.yaml")) == []

    # a hub base model offline, and hosted training without a key: both named, with the fixes
    hub = {"ops": {"finetuned_model": {"config": {"base_model": "no-such-org/no-such-model"}}}}
    [base] = job_problems("training_job", "yor", env, hub)
    assert "no-such-org/no-such-model" in base.what and "embedded:smollm2" in base.fix
    hosted = {"ops": {"finetuned_model": {"config": {"backend": "openai"}}}}
    [key] = job_problems("training_job", "yor", env, hosted)
    assert "OPENAI_API_KEY" in key.what + key.fix
    # backtranslation that needs machine translation, with none configured
    mt = {**dataset, "ops": {**dataset["ops"], "backtranslated_pairs": {"config": {"mode": "target_instruction"}}}}
    [needs_mt] = job_problems("dataset_job", "yor", env, mt)
    assert "INSTRUCT_GLOBAL_TRANSLATOR=none" in needs_mt.what
