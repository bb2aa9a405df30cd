"""Benchmark: NoveltyFilter against the naive Alpaca/self-instruct ROUGE-L loop.

Run from the repository root:

    python benchmarks/bench_novelty.py          # full run, a few minutes on one core
    python benchmarks/bench_novelty.py --quick  # smoke run, fewer probes, up to 10,000 kept

One deterministic stream of instruction-like English (openers such as "Write a short", a body
drawn from a ~4,000-word vocabulary with Zipf-like frequencies, optional closers, and ~15%
near-duplicates of earlier instructions) feeds both sides, threshold 0.7:

(a) the naive loop, pre-tokenised, ``rouge_scorer._score_lcs`` against every kept instruction;
(b) ``NoveltyFilter.check`` (tokenisation included) on the same probe candidates and kept set.

At 1,000 / 2,000 / 4,000 kept, the kept set is built with NoveltyFilter, then the next probe
candidates of the stream are timed both ways (decisions must agree). Then NoveltyFilter alone
runs the stream up to 50,000 kept. Everything runs single-threaded; times are CPU seconds of
this process (steadier than wall time on a shared machine), with wall time for the long run.

Targets: at least 1,000x faster per candidate than the naive loop at 4,000 kept; 50,000 kept in
under 60 s on one core.
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from rouge_score import rouge_scorer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from instruct_global.lib.common.text_tokens import rouge_tokenize
from instruct_global.lib.generate.novelty import NoveltyFilter

THRESHOLD = 0.7
SEED = 20240601

_OPENERS = [
    "write a short", "write a", "explain how", "explain why", "describe the", "give me a list of",
    "summarize the", "generate three ideas for", "create a plan for", "what are the benefits of",
    "compare the", "suggest a few", "draft an email about", "write a poem about", "tell me about",
    "how can i improve", "classify the following", "rewrite this sentence about",
    "provide step by step instructions for", "list five facts about", "what is the difference between",
    "design a", "come up with a", "brainstorm names for", "outline an essay on",
]  # fmt: skip
_CLOSERS = [
    "in simple terms", "for a beginner", "in one paragraph", "in less than 100 words",
    "with examples", "for a ten year old", "as a bulleted list", "in a formal tone", "briefly",
]  # fmt: skip
# Most frequent first: function words, then common instruction and content words.
_COMMON_WORDS = """
the of and a to in for on with about that is your how what this from as by an be or it are at
which you can their should new best good simple small local first main other more most people
time way day year world life work school city home family company team product service market
history science health food water energy money data story book music game country student
teacher customer business plan idea problem question answer example reason list step change
important different popular healthy modern traditional digital online social public personal
environment climate technology computer software website app phone internet email letter report
article essay poem song recipe meal breakfast dinner garden travel trip vacation holiday weekend
morning night summer winter weather rain river ocean mountain forest animal dog cat bird tree
flower car bus train road house room office meeting project job career interview skill habit
exercise sport football running sleep stress management budget saving investment price
cost sale shop store brand advertisement campaign event party birthday wedding friend child
parent doctor nurse hospital medicine law government election policy community culture language
art painting movie film television news media war peace king village farm farmer
"""
_SYLLABLES = "ka lo mi ne ru sa to vi ba de fi go hu ja ke li mo nu pa qi re su ta ve wo xi yo za"


def _vocabulary(size: int, rng: random.Random) -> list[str]:
    """Real common words first, then pronounceable made-up words for the long tail."""
    words = list(dict.fromkeys(_COMMON_WORDS.split()))
    seen = set(words)
    syllables = _SYLLABLES.split()
    while len(words) < size:
        word = "".join(rng.choices(syllables, k=rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def instruction_stream(seed: int = SEED, vocab_size: int = 4000) -> Iterator[str]:
    """Endless deterministic stream of instruction-like sentences with near-duplicates."""
    rng = random.Random(seed)
    vocab = _vocabulary(vocab_size, rng)
    # Zipf-Mandelbrot weights: rank r has weight 1 / (r + 2.7).
    cum_weights = list(itertools.accumulate(1.0 / (r + 2.7) for r in range(len(vocab))))
    history: list[str] = []
    while True:
        if history and rng.random() < 0.15:
            text = _near_duplicate(rng, rng.choice(history[-2000:]), vocab, cum_weights)
        else:
            body = rng.choices(vocab, cum_weights=cum_weights, k=rng.randint(4, 14))
            parts = [rng.choice(_OPENERS), *body]
            if rng.random() < 0.4:
                parts.append(rng.choice(_CLOSERS))
            text = " ".join(parts).capitalize() + rng.choice([".", "?", ""])
        history.append(text)
        yield text


def _near_duplicate(rng: random.Random, text: str, vocab: list[str], cum_weights: list[float]) -> str:
    """What an LLM repeats: the same instruction with a word or two changed, added or dropped."""
    words = text.split()
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(words))
        op = rng.randrange(3)
        if op == 0 and len(words) > 3:
            del words[i]
        elif op == 1:
            words.insert(i, rng.choices(vocab, cum_weights=cum_weights)[0])
        else:
            words[i] = rng.choices(vocab, cum_weights=cum_weights)[0]
    return " ".join(words)


def naive_max(candidate: list[str], kept: list[list[str]]) -> float:
    """The Alpaca loop's inner step, single process: LCS against every kept instruction."""
    return max((rouge_scorer._score_lcs(candidate, k).fmeasure for k in kept), default=0.0)


def build_to(novelty: NoveltyFilter, stream: Iterator[str], kept_tokens: list[list[str]], target: int) -> int:
    """Feed the stream until ``target`` texts are kept; return how many candidates it took."""
    seen = 0
    while len(novelty) < target:
        text = next(stream)
        seen += 1
        if novelty.add_if_novel(text):
            kept_tokens.append(rouge_tokenize(text))
    return seen


def compare_at_sizes(sizes: list[int], probes: int) -> list[tuple[int, float, float, int]]:
    """Per-candidate seconds (naive, filter) and decision disagreements at each kept size."""
    stream = instruction_stream()
    novelty = NoveltyFilter(THRESHOLD)
    kept_tokens: list[list[str]] = []
    rows = []
    for size in sizes:
        build_to(novelty, stream, kept_tokens, size)
        probe_texts = [next(stream) for _ in range(probes)]
        probe_tokens = [rouge_tokenize(t) for t in probe_texts]

        start = time.process_time()
        naive_scores = [naive_max(tokens, kept_tokens) for tokens in probe_tokens]
        naive_s = (time.process_time() - start) / probes

        # Best of several passes: the filter is fast enough for timer noise to matter.
        filter_s = float("inf")
        for _ in range(5):
            start = time.process_time()
            results = [novelty.check(t) for t in probe_texts]
            filter_s = min(filter_s, (time.process_time() - start) / probes)

        disagreements = sum(
            r.novel != (not s > THRESHOLD) or (r.exact and r.max_score != s)
            for r, s in zip(results, naive_scores, strict=True)
        )
        rows.append((size, naive_s, filter_s, disagreements))
    return rows


def run_filter_alone(checkpoints: list[int]) -> list[tuple[int, int, float, float]]:
    """(kept, candidates seen, CPU s, wall s) when NoveltyFilter alone reaches each size.

    The stream is generated up front so that only the filter is timed.
    """
    stream = instruction_stream()
    texts = [next(stream) for _ in range(int(checkpoints[-1] * 1.4))]
    novelty = NoveltyFilter(THRESHOLD)
    seen = 0
    rows = []
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    for target in checkpoints:
        while len(novelty) < target:
            novelty.add_if_novel(texts[seen])
            seen += 1
        rows.append((target, seen, time.process_time() - cpu_start, time.perf_counter() - wall_start))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer probes, stop at 10,000 kept")
    args = parser.parse_args()
    probes = 20 if args.quick else 100
    checkpoints = [5_000, 10_000] if args.quick else [5_000, 10_000, 20_000, 50_000]

    print(f"threshold {THRESHOLD}, {probes} probe candidates per size, single thread\n")
    print("(a) naive loop vs (b) NoveltyFilter, CPU time per candidate")
    print(f"{'kept':>6}  {'naive ms':>10}  {'filter us':>10}  {'speed-up':>9}  {'disagree':>8}")
    for size, naive_s, filter_s, bad in compare_at_sizes([1_000, 2_000, 4_000], probes):
        ratio = naive_s / filter_s
        print(f"{size:>6}  {naive_s * 1e3:>10.2f}  {filter_s * 1e6:>10.1f}  {ratio:>8.0f}x  {bad:>8}")

    print("\nNoveltyFilter alone (add_if_novel on the stream, tokenisation included), cumulative")
    print(f"{'kept':>7}  {'candidates':>10}  {'CPU s':>7}  {'wall s':>7}  {'us/candidate':>12}")
    for kept, seen, cpu_s, wall_s in run_filter_alone(checkpoints):
        print(f"{kept:>7}  {seen:>10}  {cpu_s:>7.1f}  {wall_s:>7.1f}  {cpu_s / seen * 1e6:>12.0f}")


if __name__ == "__main__":
    main()
