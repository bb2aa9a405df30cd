"""Benchmark: TruthfulQA MC1/MC2 scoring, one forward pass per (context, choice) against a shared prefix.

Run from the repository root:

    python benchmarks/bench_mc_scoring.py            # 60 questions
    python benchmarks/bench_mc_scoring.py --quick    # 15 questions

The same questions, on the same tiny Llama-style model (the test fixture, byte-level tokenizer, so
the 6-shot prompt is ~600 tokens), are scored:

(a) as lm-evaluation-harness does: MC1 and MC2 as two tasks, one forward pass over
    context + " " + choice for every choice (our reference implementation of its HF path);
(b) lm-eval itself (``HFLM.loglikelihood``, batch size 1) where lm-eval is installed;
(c) ours: the context (6-shot prompt + question) encoded once per question, its KV cache repeated
    over one batch holding every distinct choice of MC1 and MC2.

Question sizes follow TruthfulQA's (MC1 ~5 choices, MC2 ~7-8, MC1's answers among MC2's). Scores
must agree to 1e-5; CPU seconds of this process, one thread. Target: (c) at least 3x faster than (a).
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

from instruct_global.lib.evaluate.fewshot import continuation, mc_context
from instruct_global.lib.evaluate.mc_scoring import score_question
from instruct_global_tests.fixtures.tiny_causal_lm import build_tiny_causal_lm

VOCAB = [
    "people",
    "water",
    "city",
    "light",
    "year",
    "sleep",
    "eat",
    "grow",
    "cold",
    "heart",
    "blood",
    "moon",
    "seeds",
    "ghost",
    "cat",
    "money",
    "law",
    "country",
    "always",
    "never",
    "because",
    "nothing",
    "happens",
    "true",
    "false",
    "president",
    "science",
    "doctor",
    "vaccine",
    "brain",
    "right",
    "left",
    "wall",
    "great",
    "china",
    "visible",
    "space",
    "glass",
    "red",
    "blue",
    "bird",
    "fly",
    "sun",
    "hot",
]


def _sentence(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(VOCAB) for _ in range(rng.randint(low, high))).capitalize() + "."


def make_questions(
    n: int, seed: int = 0
) -> list[tuple[str, tuple[list[str], list[int]], tuple[list[str], list[int]]]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        question = _sentence(rng, 6, 14).rstrip(".") + "?"
        correct = [_sentence(rng, 4, 12) for _ in range(rng.randint(2, 4))]
        incorrect = [_sentence(rng, 4, 12) for _ in range(rng.randint(3, 5))]
        mc1 = ([correct[0], *incorrect], [1] + [0] * len(incorrect))
        mc2 = ([*correct, *incorrect], [1] * len(correct) + [0] * len(incorrect))
        out.append((question, mc1, mc2))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    questions = make_questions(15 if args.quick else 60)
    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_causal_lm(Path(tmp) / "tiny")
        model, tokenizer = (
            AutoModelForCausalLM.from_pretrained(path).eval(),
            AutoTokenizer.from_pretrained(path),
        )
        n_choices = sum(len(q[1][0]) + len(q[2][0]) for q in questions)
        print(
            f"{len(questions)} questions, {n_choices} (context, choice) pairs, context "
            f"~{len(tokenizer.encode(mc_context(questions[0][0])))} tokens"
        )

        score_question(model, tokenizer, *questions[0])  # warm-up
        started = time.process_time()
        ref = [score_question(model, tokenizer, *q, shared_prefix=False) for q in questions]
        t_ref = time.process_time() - started
        started = time.process_time()
        ours = [score_question(model, tokenizer, *q, shared_prefix=True) for q in questions]
        t_ours = time.process_time() - started

        worst = max(max(abs(a.mc2 - b.mc2), abs(a.mc1 - b.mc1)) for a, b in zip(ref, ours, strict=True))
        worst_ll = max(
            abs(x - y) / max(1.0, abs(x))
            for a, b in zip(ref, ours, strict=True)
            for x, y in zip(a.mc2_loglikelihoods, b.mc2_loglikelihoods, strict=True)
        )
        mc1 = sum(s.mc1 for s in ours) / len(ours)
        mc2 = sum(s.mc2 for s in ours) / len(ours)
        print(
            f"(a) one pass per (context, choice): {t_ref:7.2f} s CPU  ({1000 * t_ref / n_choices:.2f} ms per choice)"
        )

        t_harness = None
        try:
            from lm_eval.api.instance import Instance
            from lm_eval.models.huggingface import HFLM

            harness = HFLM(pretrained=str(path), batch_size=1, device="cpu")
            requests = [
                Instance("loglikelihood", {}, (mc_context(q), continuation(c)), i)
                for q, mc1_t, mc2_t in questions
                for i, c in enumerate([*mc1_t[0], *mc2_t[0]])
            ]
            started = time.process_time()
            harness.loglikelihood(requests, disable_tqdm=True)
            t_harness = time.process_time() - started
            print(f"(b) lm-eval HFLM.loglikelihood, batch 1: {t_harness:7.2f} s CPU")
        except ImportError:
            print("(b) lm-eval not installed: skipped")
        print(f"(c) shared prefix, one batch per question: {t_ours:7.2f} s CPU")
        print(
            f"MC1 {mc1:.4f}  MC2 {mc2:.4f}; largest score difference {worst:.2e}, "
            f"largest relative log-likelihood difference {worst_ll:.2e}"
        )
        print(
            f"speed-up (a)/(c): {t_ref / t_ours:.1f}x"
            + (f"; (b)/(c): {t_harness / t_ours:.1f}x" if t_harness else "")
        )
        assert worst <= 1e-5, "scores differ"
        status = "met" if t_ref / t_ours >= 3 else "NOT met"
        print(f"target >= 3x: {status}")


if __name__ == "__main__":
    main()
