"""MC1/MC2 on a tiny model: our shared-prefix scorer against the one-pass reference and against
lm-evaluation-harness itself (its HF model's loglikelihood, its task prompt, its MC2 function)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from instruct_global.lib.evaluate.fewshot import FEWSHOT_QA, continuation, mc_context
from instruct_global.lib.evaluate.heldout import heldout_loss, response_token_split
from instruct_global.lib.evaluate.mc_scoring import (
    loglikelihoods_one_pass_per_choice,
    loglikelihoods_shared_prefix,
    mc1_score,
    mc2_score,
    score_question,
)
from instruct_global.lib.evaluate.truthfulqa import choices_and_labels, load_truthfulqa_csv
from instruct_global_tests.fixtures.tiny_causal_lm import build_tiny_causal_lm
from instruct_global_tests.fixtures.truthfulqa_files import write_truthfulqa_csv


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = build_tiny_causal_lm(tmp_path_factory.mktemp("tiny_lm"), seed=3)
    return path, AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


@pytest.fixture(scope="module")
def questions(tmp_path_factory):
    return load_truthfulqa_csv(write_truthfulqa_csv(tmp_path_factory.mktemp("tqa") / "TruthfulQA.csv"))


def test_shared_prefix_equals_one_pass_per_choice(tiny, questions) -> None:
    _, model, tokenizer = tiny
    for row in questions.to_dict("records"):
        context = mc_context(row["question"])
        choices, _ = choices_and_labels(row, "mc2")
        ref = loglikelihoods_one_pass_per_choice(model, tokenizer, context, choices)
        ours = loglikelihoods_shared_prefix(
            model, tokenizer, context, [*choices, choices[0]]
        )  # a duplicate too
        assert ours[:-1] == pytest.approx(ref, rel=1e-6, abs=1e-4)
        assert ours[-1] == ours[0]
        fast = score_question(
            model, tokenizer, row["question"], choices_and_labels(row, "mc1"), choices_and_labels(row, "mc2")
        )
        slow = score_question(
            model,
            tokenizer,
            row["question"],
            choices_and_labels(row, "mc1"),
            choices_and_labels(row, "mc2"),
            shared_prefix=False,
        )
        assert fast.mc1 == slow.mc1 and fast.mc2 == pytest.approx(slow.mc2, abs=1e-5)


def test_a_context_too_long_for_the_window_falls_back_to_truncation(tiny) -> None:
    _, model, tokenizer = tiny
    context = mc_context("ọ̀rọ̀ " * 400)  # over the tiny model's 1024 positions
    choices = ["Bẹ́ẹ̀ni.", "Rárá, kò rí bẹ́ẹ̀."]
    assert loglikelihoods_shared_prefix(
        model, tokenizer, context, choices
    ) == loglikelihoods_one_pass_per_choice(model, tokenizer, context, choices)


def test_mc_metrics() -> None:
    assert mc1_score([-1.0, -2.0, -3.0]) == 1.0
    assert mc1_score([-2.0, -1.0]) == 0.0
    assert mc1_score([-1.0, -1.0]) == 1.0  # ties go to the first, as numpy's argmax
    assert mc2_score([math.log(0.2), math.log(0.3), math.log(0.5)], [1, 1, 0]) == pytest.approx(0.5)
    assert mc2_score([-2000.0, -2001.0], [1, 0]) == pytest.approx(1 / (1 + math.exp(-1)))  # no underflow


lm_eval = pytest.importorskip("lm_eval")


def test_prompt_is_lm_evals_task_prompt() -> None:
    import jinja2
    import yaml

    task_dir = Path(lm_eval.__file__).parent / "tasks" / "truthfulqa"
    spec = yaml.safe_load((task_dir / "truthfulqa_mc1.yaml").read_text())
    rendered = jinja2.Template(spec["doc_to_text"]).render(question="Why do veins appear blue?")
    assert rendered == mc_context("Why do veins appear blue?", FEWSHOT_QA)
    assert spec["doc_to_target"] == 0 and spec["output_type"] == "multiple_choice"


@pytest.mark.slow
def test_scores_match_lm_evaluation_harness(tiny, questions) -> None:
    import numpy as np
    from lm_eval.api.instance import Instance
    from lm_eval.api.metrics import mean
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks.truthfulqa.utils import process_results_mc2

    path, model, tokenizer = tiny
    harness = HFLM(pretrained=str(path), batch_size=4, device="cpu")
    mc1_ours, mc1_theirs, mc2_ours, mc2_theirs = [], [], [], []
    for row in questions.to_dict("records"):
        context = mc_context(row["question"])
        for task in ("mc1", "mc2"):
            choices, labels = choices_and_labels(row, task)
            requests = [
                Instance("loglikelihood", {}, (context, continuation(c)), i) for i, c in enumerate(choices)
            ]
            theirs = harness.loglikelihood(requests, disable_tqdm=True)
            ours = loglikelihoods_shared_prefix(model, tokenizer, context, choices)
            assert ours == pytest.approx([ll for ll, _ in theirs], rel=1e-6, abs=1e-4)
            if task == "mc1":
                lls = np.array([ll for ll, _ in theirs])
                mc1_theirs.append(1.0 if int(np.argmax(lls)) == 0 else 0.0)  # lm-eval's acc with gold 0
                mc1_ours.append(mc1_score(ours))
            else:
                doc = {"mc2_targets": {"choices": choices, "labels": labels}}
                mc2_theirs.append(process_results_mc2(doc, theirs)["acc"])
                mc2_ours.append(mc2_score(ours, labels))
    assert mc1_ours == mc1_theirs
    assert mean(mc2_ours) == pytest.approx(mean(mc2_theirs), abs=1e-5)


def test_heldout_loss_scores_only_the_response(tiny) -> None:
    _, model, tokenizer = tiny
    messages = [{"role": "user", "content": "Kí ni orúkọ rẹ?"}, {"role": "assistant", "content": "Adé ni."}]
    prompt_ids, response_ids = response_token_split(tokenizer, messages)
    assert tokenizer.decode(response_ids) == "Adé ni.</s>"
    assert "Kí ni" in tokenizer.decode(prompt_ids)
    one = heldout_loss(model, tokenizer, [messages])
    assert one.tokens == len(response_ids) and one.perplexity == pytest.approx(math.exp(one.loss))
    two = heldout_loss(model, tokenizer, [messages, messages])
    assert two.loss == pytest.approx(one.loss) and two.tokens == 2 * one.tokens
    assert json.dumps(heldout_loss(model, tokenizer, []).__dict__)  # empty split: NaN, no crash


@pytest.mark.parametrize("context", ["Q: Kí ni?\nA:", "Q: trailing space \nA: ", "", "ọ̀rọ̀"])
def test_encode_pairs_equals_lm_evals_pair_encoding(tiny, context: str) -> None:
    from instruct_global.lib.evaluate.tokenization import encode_pair, encode_pairs

    _, _, tokenizer = tiny
    continuations = [" Bẹ́ẹ̀ni.", " Rárá", "x"]
    assert encode_pairs(tokenizer, context, continuations) == [
        encode_pair(tokenizer, context, c) for c in continuations
    ]
