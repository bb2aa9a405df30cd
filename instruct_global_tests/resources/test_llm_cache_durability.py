"""The call cache under the LLM backends: concurrent writers, a killed run, PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from instruct_global.lib.common.call_cache import open_call_cache
from instruct_global.lib.common.llm_types import ChatRequest
from instruct_global.resources.call_cache import CallCacheResource
from instruct_global_tests.conftest import REPO_ROOT
from instruct_global_tests.fixtures.llm_testing import compatible_llm
from instruct_global_tests.fixtures.openai_server import Fault, OpenAIServer


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as running:
        yield running


WRITER = textwrap.dedent(
    """
    import sys
    from instruct_global.lib.common.call_cache import open_call_cache
    cache = open_call_cache(sys.argv[1])
    who = sys.argv[2]
    for i in range(40):
        cache.put(f"shared-{i}", {"writer": who, "i": i}, backend="b", model="m")
        cache.put(f"{who}-{i}", {"writer": who, "i": i}, backend="b", model="m")
    cache.put_many({f"{who}-bulk-{i}": {"writer": who} for i in range(50)}, backend="b", model="m")
    """
)


def test_concurrent_threads_and_processes_keep_sqlite_consistent(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    open_call_cache(str(path)).close()  # schema first, as a run's resource would
    processes = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), f"proc{n}"], cwd=REPO_ROOT)
        for n in range(3)
    ]
    cache = open_call_cache(str(path))

    def thread_writer(who: str) -> None:
        for i in range(40):
            cache.put(f"shared-{i}", {"writer": who, "i": i}, backend="b", model="m")
            cache.put(f"{who}-{i}", {"writer": who, "i": i}, backend="b", model="m")

    threads = [threading.Thread(target=thread_writer, args=(f"thread{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [p.wait(timeout=60) for p in processes] == [0, 0, 0]

    writers = [f"proc{n}" for n in range(3)] + [f"thread{n}" for n in range(4)]
    assert cache.count() == 40 + 7 * 40 + 3 * 50
    shared = cache.get_many([f"shared-{i}" for i in range(40)])
    assert len(shared) == 40
    assert all(v["writer"] in writers and v["i"] == int(k.split("-")[1]) for k, v in shared.items())
    own = cache.get_many([f"{w}-{i}" for w in writers for i in range(40)])
    assert all(v["writer"] == k.rsplit("-", 1)[0] for k, v in own.items()) and len(own) == 280
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_concurrent_llm_calls_write_every_answer(server: OpenAIServer, tmp_path: Path) -> None:
    llm = compatible_llm(server, tmp_path / "c.db", max_concurrency=16)
    requests = [ChatRequest.from_prompt(f"q{i}") for i in range(64)]
    results = llm.complete(requests)
    assert all(r.ok for r in results)
    assert CallCacheResource(url=str(tmp_path / "c.db")).get_cache().count() == 64


KILLED_RUN = textwrap.dedent(
    """
    import sys
    from instruct_global.lib.common.llm_types import ChatRequest
    from instruct_global.resources.call_cache import CallCacheResource
    from instruct_global.resources.llm_openai import OpenAICompatibleLLM

    llm = OpenAICompatibleLLM(
        model="local-model", base_url=sys.argv[1], cache=CallCacheResource(url=sys.argv[2]),
        max_concurrency=6, max_retries=0, timeout_seconds=120,
    )
    llm.complete([ChatRequest.from_prompt(p) for p in sys.argv[3].split(",")])
    print("finished: the test meant to kill this run")
    """
)


def test_a_killed_run_loses_no_answered_call(server: OpenAIServer, tmp_path: Path) -> None:
    cache_path = tmp_path / "c.db"
    texts = ["fast 0", "fast 1", "fast 2", "slow 3", "slow 4", "slow 5"]
    server.fault_hook = lambda body: Fault.slow(60) if "slow" in body["messages"][-1]["content"] else None
    run = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, server.base_url, str(cache_path), ",".join(texts)],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if (
                server.counts["chat"] == 6
                and cache_path.exists()
                and open_call_cache(str(cache_path)).count() == 3
            ):
                break
            assert run.poll() is None, "the run ended on its own"
            time.sleep(0.05)
        else:
            pytest.fail("the fast answers never reached the cache")
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=30)
    assert run.returncode == -signal.SIGKILL

    server.fault_hook = None
    llm = compatible_llm(server, cache_path)
    results = llm.complete([ChatRequest.from_prompt(t) for t in texts])
    assert [r.cached for r in results] == [True, True, True, False, False, False]
    assert [r.text for r in results] == [f"echo: {t}" for t in texts]
    resent = [body["messages"][-1]["content"] for _, body in server.requests[6:]]
    assert sorted(resent) == ["slow 3", "slow 4", "slow 5"]


@pytest.mark.postgres
def test_postgres_cache_backend(server: OpenAIServer, postgres_url: str) -> None:
    model = f"pg-test-{uuid.uuid4().hex[:8]}"  # fresh keys on a shared database
    cache = CallCacheResource(url=postgres_url)
    llm = compatible_llm(server, "unused.db", model=model).model_copy(update={"cache": cache})
    requests = [ChatRequest.from_prompt(f"q{i}") for i in range(5)]
    first = llm.complete(requests)
    assert all(r.ok and not r.cached for r in first) and server.counts["chat"] == 5

    again = compatible_llm(server, "unused.db", model=model).model_copy(update={"cache": cache})
    second = again.complete(requests)
    assert all(r.cached for r in second) and server.counts["chat"] == 5
    assert [r.text for r in second] == [r.text for r in first]

    store = cache.get_cache()
    store.set_state(f"llm-batch/test/{model}", {"batch_id": "batch_1", "status": "submitted"})
    assert store.get_state(f"llm-batch/test/{model}") == {"batch_id": "batch_1", "status": "submitted"}
    # concurrent writers of the same key: the first answer wins, nobody fails
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            store.put(f"{model}-race", {"n": n}, backend="b", model=model)
        except BaseException as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and json.dumps(store.get(f"{model}-race")) in {json.dumps({"n": n}) for n in range(8)}
