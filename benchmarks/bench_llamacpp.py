"""Tokens per second of the embedded model (SmolLM2-135M-Instruct, Q4_1 GGUF) through ``LlamaCppLLM``.

Run:  python benchmarks/bench_llamacpp.py [--requests 8] [--max-tokens 128] [--threads N] [--model PATH]

Side by side in one run, the same prompts, seeds and settings:
1. reference: xllamacpp's ``Server.handle_chat_completions`` called directly, one request at a time;
2. ``LlamaCppLLM`` with one slot (our cache, stats and retries around the same call), each request
   right after its reference call, so that a shared machine's load weighs on both alike;
3. ``LlamaCppLLM`` with two slots fed by two threads (llama.cpp's continuous batching);
4. ``LlamaCppLLM`` with a JSON schema (llama.cpp samples under a grammar);
5. the cache-hit path: the run of (2) again, no model call.

Output tokens per second of wall time (prompt processing included: that is what a stage waits for).
Target: (2) within 10 % of (1): our resource adds no measurable cost per call.
Exits non-zero when the target is missed. Figures depend on the machine's load.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from instruct_global.lib.common.embedded_model import EMBEDDED_MODEL  # noqa: E402
from instruct_global.lib.common.llm_types import ChatRequest  # noqa: E402
from instruct_global.resources.call_cache import CallCacheResource  # noqa: E402
from instruct_global.resources.llm_llamacpp import LlamaCppLLM  # noqa: E402

TOPICS = ["farming in the rainy season", "a market day", "saving money with a mobile wallet", "a school exam",
          "a family wedding", "the harmattan wind", "a football match", "cooking jollof rice"]  # fmt: skip
SCHEMA = {
    "type": "json_schema",
    "json_schema": {"name": "task", "schema": {
        "type": "object", "additionalProperties": False, "required": ["instruction", "output"],
        "properties": {"instruction": {"type": "string", "maxLength": 300},
                       "output": {"type": "string", "maxLength": 300}}}},
}  # fmt: skip


def requests(n: int, max_tokens: int, response_format: dict | None = None, offset: int = 0) -> list[ChatRequest]:
    return [
        ChatRequest.from_prompt(
            f"Write a short paragraph about {TOPICS[(i + offset) % len(TOPICS)]}.", temperature=0.7,
            max_tokens=max_tokens, seed=1000 + i + offset, response_format=response_format,
        )
        for i in range(n)
    ]  # fmt: skip


def run_resource(llm: LlamaCppLLM, batch: list[ChatRequest]) -> tuple[float, int]:
    llm.server()  # loading is not part of the rate
    start = time.perf_counter()
    results = llm.complete(batch)
    elapsed = time.perf_counter() - start
    failed = [r.error for r in results if not r.ok]
    if failed:
        raise SystemExit(f"{len(failed)} requests failed: {failed[0]}")
    return elapsed, sum(r.output_tokens for r in results)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: every core)")
    parser.add_argument("--model", default=EMBEDDED_MODEL)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench_llamacpp_"))
    common = {"model": args.model, "n_threads": args.threads}

    def resource(name: str, slots: int) -> LlamaCppLLM:
        cache = CallCacheResource(url=str(folder / f"{name}.sqlite"))
        return LlamaCppLLM(cache=cache, n_parallel=slots, max_concurrency=slots, **common)

    plain = requests(args.requests, args.max_tokens)
    rows: list[tuple[str, float, int]] = []

    # 1. the reference: the binding alone, on the server our one-slot resource loads; and
    # 2. our resource with one slot, the same request right after: paired, so that the load of
    # a shared machine weighs on both alike
    one_slot = resource("one_slot", 1)
    server = one_slot.server()
    # one short call first: the first decode allocates llama.cpp's compute buffers
    server.handle_chat_completions({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4})
    direct_seconds = ours_seconds = 0.0
    direct_tokens = ours_tokens = 0
    # the two sides get different prompts, so neither reuses the other's prompt from the slot's KV cache
    for request, other in zip(plain, requests(args.requests, args.max_tokens, offset=3), strict=True):
        start = time.perf_counter()
        answer = server.handle_chat_completions(one_slot.chat_params(other))
        direct_seconds += time.perf_counter() - start
        direct_tokens += int(answer["usage"]["completion_tokens"])
        elapsed, produced = run_resource(one_slot, [request])
        ours_seconds += elapsed
        ours_tokens += produced
    rows.append(("xllamacpp directly, sequential", direct_seconds, direct_tokens))
    rows.append(("LlamaCppLLM, 1 slot", ours_seconds, ours_tokens))
    # 5. the same requests again: from the cache
    cached_elapsed, cached_tokens = run_resource(one_slot, plain)
    one_slot.teardown_after_execution(None)

    # 3. two slots, two threads
    two = resource("two_slots", 2)
    rows.append(("LlamaCppLLM, 2 slots", *run_resource(two, plain)))
    # 4. JSON schema (grammar-constrained sampling), two slots
    rows.append(("LlamaCppLLM, 2 slots, JSON schema", *run_resource(two, requests(args.requests, args.max_tokens, SCHEMA))))
    two.teardown_after_execution(None)

    print(f"model: {one_slot.model_path().name}; {args.requests} requests, max_tokens {args.max_tokens}")
    print(f"{'path':<36} {'seconds':>8} {'tokens':>7} {'tokens/s':>9}")
    for name, elapsed, produced in rows:
        print(f"{name:<36} {elapsed:>8.2f} {produced:>7} {produced / elapsed:>9.1f}")
    print(f"{'cache hits (run 2 again)':<36} {cached_elapsed:>8.3f} {cached_tokens:>7} {'(no model call)':>9}")

    reference = rows[0][2] / rows[0][1]
    ours = rows[1][2] / rows[1][1]
    ok = ours >= 0.9 * reference
    print(f"target: LlamaCppLLM 1 slot >= 0.9 x direct: {ours:.1f} vs {reference:.1f} tokens/s: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
