"""`dagster job execute` of dataset_job, as `make sample` runs it: the shipped sample configs, no
translator (the translate stages step aside visibly), the LLM an OpenAI-compatible server on
loopback answering the real prompts. A second run of the same job makes zero model calls.

The same job on the embedded model and a tiny NLLB model is the `e2e` tier
(test_dataset_job_e2e.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from dagster import AssetKey, DagsterInstance

from instruct_global.resources.translation_none import NO_TRANSLATOR_REASON
from instruct_global_tests.conftest import REPO_ROOT
from instruct_global_tests.fixtures.curate_llm import CurateResponder
from instruct_global_tests.fixtures.openai_server import OpenAIServer
from instruct_global_tests.fixtures.scripted_llm import GenerationResponder

pytestmark = pytest.mark.slow

CONFIGS = REPO_ROOT / "instruct_global" / "configs"
SAMPLE_CONFIGS = [CONFIGS / "sample_run.yaml", CONFIGS / "sample_dataset.yaml"]


class PipelineResponder:
    """Curate prompts (backtranslation, the rubric) to CurateResponder, the rest to GenerationResponder."""

    def __init__(self) -> None:
        self.curate = CurateResponder(hostile=False)
        self.generation = GenerationResponder(seed=3, hostile=False)

    def __call__(self, body: dict[str, Any]):
        prompt = "\n".join(m["content"] for m in body["messages"] if isinstance(m.get("content"), str))
        if "<segment>" in prompt or "5-point scale" in prompt:
            return self.curate(body)
        return self.generation(body)


def execute(job: str, env: dict[str, str], configs: list[Path]) -> subprocess.CompletedProcess:
    args = [str(Path(sys.executable).with_name("dagster")), "job", "execute", "-m", "instruct_global.definitions",
            "-j", job, "--tags", '{"dagster/partition": "yor"}']
    for config in configs:
        args += ["-c", str(config)]
    completed = subprocess.run(args, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    return completed


def latest_metadata(instance: DagsterInstance, asset: str) -> dict[str, Any]:
    event = instance.get_latest_materialization_event(AssetKey(asset))
    assert event is not None, f"{asset} was not materialised"
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def test_dataset_job_without_a_translator_steps_aside_and_reruns_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, data = tmp_path / "home", tmp_path / "data"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO_ROOT / "dagster.yaml").read_text())
    with OpenAIServer() as server:
        server.responder = PipelineResponder()
        env = {**os.environ, "DAGSTER_HOME": str(home), "INSTRUCT_GLOBAL_DATA_DIR": str(data),
               "INSTRUCT_GLOBAL_LLM": "openai-compatible", "INSTRUCT_GLOBAL_LLM_BASE_URL": server.base_url,
               "INSTRUCT_GLOBAL_LLM_MODEL": "local-model", "INSTRUCT_GLOBAL_TRANSLATOR": "none",
               "PYTHONPATH": str(REPO_ROOT), "INSTRUCT_GLOBAL_MODEL_CACHE": str(tmp_path / "models")}
        first = execute("dataset_job", env, SAMPLE_CONFIGS)
        calls_first = server.counts["chat"]
        assert calls_first > 0
        execute("dataset_job", env, SAMPLE_CONFIGS)
        assert server.counts["chat"] == calls_first  # every answer came from the call cache
    log = first.stdout + first.stderr
    assert "translation steps aside" in log

    monkeypatch.setenv("DAGSTER_HOME", str(home))  # the instance's event logs live under $DAGSTER_HOME
    instance = DagsterInstance.from_config(str(home))
    translated = latest_metadata(instance, "translated_instructions")
    assert translated["skipped"] is True and translated["skip_reason"] == NO_TRANSLATOR_REASON
    assert translated["rows_in"] > 0 and translated["translated"] == 0  # English rows were generated
    assert len(pd.read_parquet(data / "translated_instructions" / "yor.parquet")) == 0

    dataset = pd.read_parquet(data / "instruction_dataset" / "yor.parquet")
    assert len(dataset) > 0 and set(dataset["origin"]) == {"backtranslation"}
    card = (data / "instruction_dataset" / "yor.card.md").read_text(encoding="utf-8")
    assert "template and self-instruct rows need" in card and "English-instruction / Yoruba-response" in card

    export = data / "export" / "yor"
    for split in ("train", "validation", "test"):
        for suffix in ("chat.jsonl", "alpaca.json", "parquet"):
            assert (export / f"{split}.{suffix}").is_file(), f"{split}.{suffix}"
    assert (export / "hf_dataset").is_dir()
    train = [json.loads(line) for line in (export / "train.chat.jsonl").read_text("utf-8").splitlines()]
    assert train and all(m["messages"][-1]["role"] == "assistant" for m in train)
    sft = latest_metadata(instance, "sft_dataset")
    assert sum(sft[f"examples/{s}"] for s in ("train", "validation", "test")) == len(dataset)
