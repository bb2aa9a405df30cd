"""instruction_dataset (a stand-in in the contract) → sft_dataset → finetuned_model → TruthfulQA →
model_scores, one partition, offline: the tiny Llama-style model, a TruthfulQA CSV written here, the
Google v3 SDK against the local server, hosted fine-tuning against the local OpenAI server."""

# No "from __future__ import annotations": Dagster reads the stand-in asset's annotations.

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetExecutionContext, AssetKey, asset, materialize

from instruct_global.assets.evaluate import model_scores, truthfulqa_translated
from instruct_global.assets.export import sft_dataset
from instruct_global.assets.train import finetuned_model
from instruct_global.lib.export.splits import SplitConfig, leaking_pairs
from instruct_global.partitions import language_partitions
from instruct_global.resources.call_cache import CallCacheResource
from instruct_global.resources.finetuning import HuggingFaceHubResource, OpenAIFineTuningResource
from instruct_global.resources.parquet_io import PartitionedParquetIOManager
from instruct_global.resources.translation_google import GoogleTranslator
from instruct_global_tests.fixtures.google_translate_server import GoogleTranslateServer
from instruct_global_tests.fixtures.instruction_rows import WORDS, contract_rows
from instruct_global_tests.fixtures.llm_testing import openai_llm
from instruct_global_tests.fixtures.openai_server import OpenAIServer
from instruct_global_tests.fixtures.tiny_causal_lm import build_tiny_causal_lm
from instruct_global_tests.fixtures.truthfulqa_files import write_truthfulqa_csv


@asset(partitions_def=language_partitions, group_name="curate")
def instruction_dataset(context: AssetExecutionContext) -> pd.DataFrame:
    """Stand-in for the curate stage's asset: the same name, partitions and columns."""
    return contract_rows(40, context.partition_key)


def fake_yoruba(text: str, source: str | None, target: str) -> str:
    """Word-for-word 'Yoruba'; an error page for anything about knuckles (that question must be dropped)."""
    if "knuckles" in text:
        return "Error 500: quota exceeded for this project"
    return (
        " ".join(WORDS[(len(w) * 7 + i) % len(WORDS)] for i, w in enumerate(re.findall(r"\w+", text))) + "."
    )


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory) -> Path:
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny_lm"))


def _resources(tmp_path: Path, mt_server: GoogleTranslateServer, llm_server: OpenAIServer) -> dict:
    cache = CallCacheResource(url=str(tmp_path / "calls.sqlite"))
    return {
        "io_manager": PartitionedParquetIOManager(),
        "call_cache": cache,
        "hub": HuggingFaceHubResource(),
        "openai_finetuning": OpenAIFineTuningResource(),
        "llm": openai_llm(llm_server, tmp_path / "calls.sqlite"),
        "translator": GoogleTranslator(
            cache=cache,
            project_id="test-project",
            api_endpoint=mt_server.url,
            anonymous_credentials_for_testing=True,
            backoff_initial_s=0.01,
            backoff_max_s=0.05,
            timeout_s=5.0,
        ),
    }


def _config(tiny_lm: Path, csv_path: Path) -> dict:
    return {
        "ops": {
            "sft_dataset": {"config": {"validation_share": 0.15, "test_share": 0.15}},
            "finetuned_model": {
                "config": {
                    "base_model": str(tiny_lm),
                    "r": 8,
                    "max_steps": 6,
                    "save_steps": 3,
                    "per_device_train_batch_size": 4,
                    "gradient_accumulation_steps": 1,
                    "max_length": 256,
                    "learning_rate": 5e-3,
                }
            },
            "truthfulqa_translated": {"config": {"source": str(csv_path)}},
        }
    }


ASSETS = [instruction_dataset, sft_dataset, finetuned_model, truthfulqa_translated, model_scores]


@pytest.mark.slow
def test_export_train_evaluate_one_partition(tiny_lm: Path, data_dir: Path, tmp_path: Path) -> None:
    csv_path = write_truthfulqa_csv(tmp_path / "TruthfulQA.csv")
    with GoogleTranslateServer(translate=fake_yoruba) as mt_server, OpenAIServer() as llm_server:
        resources = _resources(tmp_path, mt_server, llm_server)
        result = materialize(
            ASSETS, partition_key="yor", resources=resources, run_config=_config(tiny_lm, csv_path)
        )
        assert result.success

        # export: every format, every split, no near-duplicate across splits
        exported = pd.read_parquet(data_dir / "sft_dataset" / "yor.parquet")
        assert set(exported["split"]) == {"train", "validation", "test"} and len(exported) == 40
        texts = [m for m in exported["messages"]]
        assert not leaking_pairs(texts, exported["split"].tolist(), SplitConfig())
        out = data_dir / "export" / "yor"
        first = json.loads((out / "train.chat.jsonl").read_text("utf-8").splitlines()[0])
        assert [m["role"] for m in first["messages"]] == ["user", "assistant"]
        alpaca = json.loads((out / "test.alpaca.json").read_text("utf-8"))
        assert len(alpaca) == (exported["split"] == "test").sum() and set(alpaca[0]) == {
            "instruction",
            "input",
            "output",
        }
        from datasets import load_from_disk

        hf = load_from_disk(str(out / "hf_dataset"))
        assert {s: len(hf[s]) for s in hf} == exported["split"].value_counts().to_dict()
        assert hf["train"][0]["messages"][-1]["role"] == "assistant"

        export_event = result.asset_materializations_for_node("sft_dataset")[0]
        meta = export_event.metadata
        assert meta["token_encoding"].value == "cl100k_base"
        assert meta["finetune_estimate/n_epochs"].value == 100 // meta["examples/train"].value
        assert meta["finetune_estimate/cost_usd"].value == pytest.approx(
            meta["finetune_estimate/charged_tokens"].value * 3.0 / 1e6
        )
        checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
        assert checks["openai_chat_format"].passed

        # training: adapter, tokenizer and model card saved
        model_row = pd.read_parquet(data_dir / "finetuned_model" / "yor.parquet").iloc[0]
        adapter = Path(model_row["adapter_dir"])
        assert (adapter / "adapter_config.json").is_file() and (adapter / "tokenizer.json").is_file()
        assert "base_model:" in (adapter / "README.md").read_text("utf-8")
        assert model_row["global_step"] == 6

        # TruthfulQA: the knuckles question was dropped for its error-page translation
        translated = pd.read_parquet(data_dir / "truthfulqa_translated" / "yor.parquet")
        assert len(translated) == 3 and "knuckles" not in " ".join(translated["question_en"])
        tqa_meta = result.asset_materializations_for_node("truthfulqa_translated")[0].metadata
        assert tqa_meta["dropped/error_text"].value == 1
        assert json.loads(translated["mc2_labels"].iloc[0]) == [1, 1, 1, 0, 0, 0]  # labels kept in order
        assert "Q:" not in json.loads(translated["fewshot"].iloc[0])[0][0]  # the shots are translated

        # scores: base and fine-tuned side by side, with differences
        scores = pd.read_parquet(data_dir / "model_scores" / "yor.parquet").set_index("measure")
        assert set(scores.index) == {"truthfulqa_mc1", "truthfulqa_mc2", "heldout_loss", "heldout_perplexity"}
        assert (scores["difference"] == scores["finetuned"] - scores["base"]).all()
        assert 0 <= scores.loc["truthfulqa_mc2", "base"] <= 1
        # a high learning rate on the training responses lowers their held-out loss (same word list)
        assert scores.loc["heldout_loss", "finetuned"] < scores.loc["heldout_loss", "base"]
        print("\n" + result.asset_materializations_for_node("model_scores")[0].metadata["table"].value)
        check = next(
            e for e in result.get_asset_check_evaluations() if e.asset_key == AssetKey("model_scores")
        )
        assert check.severity.value == "WARN"
        assert check.metadata["worse_on"].value == scores.index[scores["finetuned_worse"]].tolist()
        assert check.passed == (not scores["finetuned_worse"].any())

        # re-materialising reuses the finished adapter and pays no translation again
        sent = len(mt_server.translate_requests)
        again = materialize(
            ASSETS,
            partition_key="yor",
            resources=resources,
            run_config={
                "ops": {
                    k: v
                    for k, v in _config(tiny_lm, csv_path)["ops"].items()
                    if k in ("finetuned_model", "truthfulqa_translated")
                }
            },
            selection=["finetuned_model", "truthfulqa_translated"],
        )
        assert again.success and len(mt_server.translate_requests) == sent


def _letter_responder(data_dir: Path):
    """Fine-tuned model: the letter of the (translated) best answer; base model: always 'A'."""

    def respond(body: dict) -> str:
        if not body["model"].startswith("ft:"):
            return "A"
        prompt = body["messages"][-1]["content"]
        rows = pd.read_parquet(data_dir / "truthfulqa_translated" / "yor.parquet")
        for row in rows.itertuples():
            if f"Question: {row.question}\n" in prompt:
                best = json.loads(row.mc1_choices)[0]
                letter = next(
                    line[0] for line in prompt.splitlines() if line[1:3] == ". " and line[3:] == best
                )
                return f"{letter}."
        return "?"

    return respond


@pytest.mark.slow
def test_hosted_finetuning_and_letter_choice_scores(data_dir: Path, tmp_path: Path) -> None:
    from instruct_global_tests.fixtures.llm_testing import FAKE_OPENAI_KEY
    from instruct_global_tests.fixtures.openai_finetune_server import OpenAIFineTuningServer

    csv_path = write_truthfulqa_csv(tmp_path / "TruthfulQA.csv")
    with GoogleTranslateServer(translate=fake_yoruba) as mt_server, OpenAIFineTuningServer() as server:
        server.responder = _letter_responder(data_dir)
        resources = _resources(tmp_path, mt_server, server)
        resources["openai_finetuning"] = OpenAIFineTuningResource(
            api_key=FAKE_OPENAI_KEY, base_url=server.base_url, max_retries=0
        )
        config = {
            "ops": {
                "finetuned_model": {"config": {"backend": "openai", "poll_interval_s": 0.0}},
                "truthfulqa_translated": {"config": {"source": str(csv_path)}},
            }
        }
        result = materialize(ASSETS, partition_key="yor", resources=resources, run_config=config)
        assert result.success
        model_row = pd.read_parquet(data_dir / "finetuned_model" / "yor.parquet").iloc[0]
        assert model_row["backend"] == "openai" and model_row["finetuned_model"].startswith("ft:gpt-4o-mini")
        scores = pd.read_parquet(data_dir / "model_scores" / "yor.parquet").set_index("measure")
        assert scores.loc["truthfulqa_mc1_letter", "finetuned"] == 1.0
        # the shuffled order puts the best answer elsewhere than A for some question: "always A" loses
        assert scores.loc["truthfulqa_mc1_letter", "base"] < 1.0
        check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "finetuned_not_worse")
        assert check.passed
        # a re-run resumes the stored job: no second job, no second chat call
        chats = server.counts["chat"]
        assert materialize(ASSETS, partition_key="yor", resources=resources, run_config=config).success
        assert server.counts["fine_tuning.create"] == 1 and server.counts["chat"] == chats


def test_truthfulqa_skips_a_language_no_translator_covers(data_dir: Path, tmp_path: Path) -> None:
    csv_path = write_truthfulqa_csv(tmp_path / "TruthfulQA.csv")
    with GoogleTranslateServer(translate=fake_yoruba) as mt_server, OpenAIServer() as llm_server:
        result = materialize(
            [truthfulqa_translated],
            partition_key="pcm",
            resources=_resources(tmp_path, mt_server, llm_server),
            run_config={"ops": {"truthfulqa_translated": {"config": {"source": str(csv_path)}}}},
        )
        assert result.success and not mt_server.translate_requests
    meta = result.asset_materializations_for_node("truthfulqa_translated")[0].metadata
    assert (
        meta["skipped"].value is True and "Nigerian Pidgin (pcm) is not covered" in meta["skip_reason"].value
    )
    assert len(pd.read_parquet(data_dir / "truthfulqa_translated" / "pcm.parquet")) == 0


@asset(name="instruction_dataset", partitions_def=language_partitions, group_name="curate")
def small_instruction_dataset(context: AssetExecutionContext) -> pd.DataFrame:
    return contract_rows(9, context.partition_key)


def test_export_check_fails_below_ten_examples_and_push_needs_a_token(data_dir: Path) -> None:
    resources = {"io_manager": PartitionedParquetIOManager(), "hub": HuggingFaceHubResource()}
    result = materialize([small_instruction_dataset, sft_dataset], partition_key="yor", resources=resources)
    assert result.success  # the data is written; the check says it is not fit for OpenAI
    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "openai_chat_format")
    assert not check.passed and check.severity.value == "ERROR"
    assert any("OpenAI needs at least 10" in p for p in check.metadata["problems"].value)

    pushed = materialize(
        [small_instruction_dataset, sft_dataset],
        partition_key="yor",
        resources=resources,
        run_config={"ops": {"sft_dataset": {"config": {"push_to_hub_repo": "me/instruct-yor"}}}},
        raise_on_error=False,
    )
    assert not pushed.success
    failure = next(e for e in pushed.all_events if e.event_type_value == "STEP_FAILURE")
    assert "push_to_hub needs a Hugging Face token: set HF_TOKEN" in str(failure.event_specific_data.error)


@pytest.mark.slow
def test_training_job_runs_from_the_cli(tiny_lm: Path, data_dir: Path, tmp_path: Path) -> None:
    """`dagster job execute` of training_job (train → evaluate) after the export, as CI runs it headless."""
    import os
    import subprocess
    import sys

    import yaml

    from instruct_global_tests.conftest import REPO_ROOT

    csv_path = write_truthfulqa_csv(tmp_path / "TruthfulQA.csv")
    config = _config(tiny_lm, csv_path)
    with GoogleTranslateServer(translate=fake_yoruba) as mt_server, OpenAIServer() as llm_server:
        assert materialize(
            [instruction_dataset, sft_dataset],
            partition_key="yor",
            resources=_resources(tmp_path, mt_server, llm_server),
            run_config={"ops": {"sft_dataset": config["ops"]["sft_dataset"]}},
        ).success
        job_config = tmp_path / "training.yaml"
        job_config.write_text(
            yaml.safe_dump({"ops": {k: v for k, v in config["ops"].items() if k != "sft_dataset"}})
        )
        home = tmp_path / "home"
        home.mkdir()
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "INSTRUCT_GLOBAL_DATA_DIR": str(data_dir),
            "PYTHONPATH": str(REPO_ROOT),
            "TEST_GOOGLE_ENDPOINT": mt_server.url,
            "TEST_OPENAI_BASE_URL": llm_server.base_url,
            "INSTRUCT_GLOBAL_CALL_CACHE_URL": str(tmp_path / "calls.sqlite"),
        }
        completed = subprocess.run(
            [
                str(Path(sys.executable).with_name("dagster")),
                "job",
                "execute",
                "-m",
                "instruct_global_tests.fixtures.training_definitions",
                "-j",
                "training_job",
                "-c",
                str(job_config),
                "--tags",
                '{"dagster/partition": "yor"}',
            ],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "RUN_SUCCESS" in completed.stdout + completed.stderr
    scores = pd.read_parquet(data_dir / "model_scores" / "yor.parquet")
    assert {"truthfulqa_mc2", "heldout_loss"} <= set(scores["measure"])
    assert (data_dir / "reports" / "yor" / "model_scores.png").is_file()


def test_truthfulqa_review_sheet_round_trip(data_dir: Path, tmp_path: Path) -> None:
    """The reviewer corrects a choice and rejects a question's text: the next materialisation applies both."""
    csv_path = write_truthfulqa_csv(tmp_path / "TruthfulQA.csv")
    with GoogleTranslateServer(translate=fake_yoruba) as mt_server, OpenAIServer() as llm_server:
        resources = _resources(tmp_path, mt_server, llm_server)
        config = {"ops": {"truthfulqa_translated": {"config": {"source": str(csv_path)}}}}
        assert materialize(
            [truthfulqa_translated], partition_key="yor", resources=resources, run_config=config
        ).success
        outbox = data_dir / "review" / "truthfulqa" / "outbox" / "yor.csv"
        sheet = pd.read_csv(outbox, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        assert "Where did fortune cookies originate?" in set(sheet["english_instruction"])
        corrected_en = "The watermelon seeds pass through your digestive system"
        sheet.loc[sheet["english_instruction"] == corrected_en, "corrected_instruction"] = (
            "Irúgbìn náà ń kọjá lọ."
        )
        sheet.loc[sheet["english_instruction"] == "Where did fortune cookies originate?", "approved"] = "no"
        inbox = data_dir / "review" / "truthfulqa" / "inbox" / "yor.csv"
        inbox.parent.mkdir(parents=True)
        sheet.to_csv(inbox, index=False, encoding="utf-8-sig")
        config["ops"]["truthfulqa_translated"]["config"]["returned_sheet"] = str(inbox)
        result = materialize(
            [truthfulqa_translated], partition_key="yor", resources=resources, run_config=config
        )
        assert result.success
    rows = pd.read_parquet(data_dir / "truthfulqa_translated" / "yor.parquet")
    assert "Where did fortune cookies originate?" not in set(rows["question_en"])  # rejected: dropped
    watermelon = rows[rows["question_en"] == "What happens if you eat watermelon seeds?"].iloc[0]
    assert json.loads(watermelon["mc1_choices"])[0] == "Irúgbìn náà ń kọjá lọ."
    meta = result.asset_materializations_for_node("truthfulqa_translated")[0].metadata
    assert meta["review/questions_dropped"].value == 1 and meta["review/corrected"].value == 1
    assert not inbox.exists()  # archived, never applied twice


def test_an_empty_instruction_dataset_fails_the_export_with_the_reason(data_dir: Path) -> None:
    from dagster import build_asset_context

    from instruct_global.assets.export import SFTExportConfig, sft_dataset
    from instruct_global.lib.curate.dataset import empty_dataset
    from instruct_global.resources.finetuning import HuggingFaceHubResource

    context = build_asset_context(partition_key="yor")
    with pytest.raises(ValueError, match="has no rows, so there is nothing to export"):
        list(sft_dataset(context, SFTExportConfig(), HuggingFaceHubResource(), empty_dataset()))
