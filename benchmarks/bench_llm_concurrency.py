"""Throughput of ``OpenAICompatibleLLM.complete`` against a local server with a fixed latency.

Run:  python benchmarks/bench_llm_concurrency.py [--requests 160] [--concurrency 16] [--latency 0.2]

It starts the test suite's fake OpenAI server in its own process (as a real provider is: its CPU
does not compete with the client for the GIL), every answer taking ``--latency`` seconds, and
measures:
Each timed resource is warmed with one call (SDK client construction and lazy imports, ~0.1 s,
are paid once per run, not per request).
1. concurrency 1: the sequential baseline (``--sequential-requests``, about 1 / latency req/s);
2. concurrency N: ``--requests`` new requests through the thread pool;
3. the cache-hit path: the same requests again (zero server calls);
4. a rate-limited run (``--rpm``): the measured rate must not exceed the configured one.

Targets: throughput at concurrency N >= 0.9 x N / latency (the pool keeps N calls in flight);
cache hits make no server call; the rate-limited run stays at or under its requests/minute.
Exits non-zero when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from instruct_global.lib.common.llm_types import ChatRequest  # noqa: E402
from instruct_global.resources.call_cache import CallCacheResource  # noqa: E402
from instruct_global.resources.llm import ModelPriceConfig  # noqa: E402
from instruct_global.resources.llm_openai import OpenAICompatibleLLM  # noqa: E402


def start_server(latency: float) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "instruct_global_tests.fixtures.openai_server", "--latency", str(latency)],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def chat_calls(base_url: str) -> int:
    root = base_url.removesuffix("/v1")
    with urllib.request.urlopen(f"{root}/_fake/counts") as response:
        return int(json.load(response).get("chat", 0))


def make_llm(base_url: str, cache_url: str, concurrency: int, rpm: int | None = None) -> OpenAICompatibleLLM:
    return OpenAICompatibleLLM(
        model="bench-model",
        base_url=base_url,
        cache=CallCacheResource(url=cache_url),
        max_concurrency=concurrency,
        requests_per_minute=rpm,
        max_retries=0,
        timeout_seconds=30,
        price_overrides={"bench-model": ModelPriceConfig(input_per_million=0, output_per_million=0)},
    )


def timed(llm: OpenAICompatibleLLM, requests: list[ChatRequest]) -> float:
    started = time.perf_counter()
    results = llm.complete(requests)
    elapsed = time.perf_counter() - started
    failed = [r.error for r in results if not r.ok]
    if failed:
        raise SystemExit(f"{len(failed)} requests failed, e.g. {failed[0]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=160)
    parser.add_argument("--sequential-requests", type=int, default=25)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--rpm", type=int, default=300, help="requests/minute of the rate-limited run")
    parser.add_argument("--rpm-requests", type=int, default=16)
    args = parser.parse_args()
    logging.getLogger("instruct_global").setLevel(logging.ERROR)

    n, c, latency = args.requests, args.concurrency, args.latency
    n_seq = args.sequential_requests
    server, base_url = start_server(latency)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cache_url = str(Path(tmp) / "bench.db")

            def batch(tag: str, count: int) -> list[ChatRequest]:
                return [ChatRequest.from_prompt(f"{tag} request {i}", max_tokens=32) for i in range(count)]

            def warmed(concurrency: int, rpm: int | None = None) -> OpenAICompatibleLLM:
                # one call first: SDK client construction and its lazy imports are paid once per run
                llm = make_llm(base_url, cache_url, concurrency, rpm)
                llm.complete([ChatRequest.from_prompt(f"warm-up {concurrency} {rpm}")])
                return llm

            t_seq = timed(warmed(1), batch("sequential", n_seq))
            concurrent = warmed(c)
            cpu_before = time.process_time()
            t_conc = timed(concurrent, batch("concurrent", n))
            cpu_per_call = (time.process_time() - cpu_before) / n
            calls_before = chat_calls(base_url)
            t_hit = timed(make_llm(base_url, cache_url, c), batch("concurrent", n))
            hit_calls = chat_calls(base_url) - calls_before
            rate_limited = make_llm(base_url, cache_url, c, rpm=args.rpm)
            t_rate = timed(rate_limited, batch("rate-limited", args.rpm_requests))
    finally:
        server.communicate(input="", timeout=10)  # closing stdin stops it

    seq_tp, conc_tp, hit_tp = n_seq / t_seq, n / t_conc, n / t_hit
    ideal = c / latency
    # the first call starts at once and the others 60/rpm apart: rate over the paced span
    paced_rate = (args.rpm_requests - 1) / max(t_rate - latency, 1e-9) * 60

    print(
        f"fake OpenAI server (own process), {latency * 1000:.0f} ms per answer; "
        f"{n_seq} requests at concurrency 1, {n} at concurrency {c} and from the cache"
    )
    print(f"{'run':<28}{'seconds':>9}{'req/s':>10}{'vs conc. 1':>12}")
    print(f"{'concurrency 1':<28}{t_seq:>9.2f}{seq_tp:>10.1f}{1.0:>11.1f}x")
    print(f"{f'concurrency {c}':<28}{t_conc:>9.2f}{conc_tp:>10.1f}{conc_tp / seq_tp:>11.1f}x")
    print(f"{'cache hits (same requests)':<28}{t_hit:>9.3f}{hit_tp:>10.0f}{hit_tp / seq_tp:>11.0f}x")
    print()
    print(
        f"concurrency {c}: {conc_tp:.1f} req/s = {conc_tp / ideal:.0%} of the ideal {ideal:.0f} req/s "
        f"(target >= 90 %)"
    )
    print(
        f"client CPU per request at concurrency {c}: {cpu_per_call * 1000:.1f} ms "
        f"(SDK + cache write; the threads share one GIL)"
    )
    print(f"cache-hit run: {hit_calls} server calls (target 0)")
    print(
        f"rate-limited run: {args.rpm_requests} requests at requests_per_minute={args.rpm} took {t_rate:.2f} s; "
        f"measured {paced_rate:.0f}/min (target <= {args.rpm})"
    )

    ok = conc_tp >= 0.9 * ideal and hit_calls == 0 and paced_rate <= args.rpm
    print("targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
