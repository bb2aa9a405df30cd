"""Crash and resume: `dagster job execute` of the dataset job, SIGKILLed in the middle of each paid stage
(generation, translation, backtranslation, curation), re-run each time; then the training job killed while
polling a hosted fine-tuning job, and while training locally.

After every kill no output file is torn; at the end the outputs equal an uninterrupted run's, and no
answered request was paid twice (the servers count answers per distinct payload; translations per
segment).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from instruct_global_tests.reliability.crash_harness import (
    CrashLog,
    job_env,
    leftover_temp_files,
    release_killed_runs,
    run_job,
    torn_files,
    write_run_config,
)
from instruct_global_tests.reliability.dataset_harness import (
    SERVER_NAMES,
    Servers,
    dataset_servers,
    describe,
    export_files,
    read_outputs,
    run_config,
    schema_with_licence,
)
from instruct_global_tests.reliability.fault_proxy import free_ports

pytestmark = pytest.mark.reliability

MODULE = "instruct_global_tests.reliability.reliability_definitions"


def _chat(body: bytes) -> str:
    try:
        return json.dumps(json.loads(body), ensure_ascii=False)
    except ValueError:
        return ""


def _generation(method: str, target: str, body: bytes) -> bool:
    return method == "POST" and target.endswith("/chat/completions") and "<segment>" not in _chat(body)


def _backtranslation(method: str, target: str, body: bytes) -> bool:
    return method == "POST" and target.endswith("/chat/completions") and "<segment>" in _chat(body)


def _to_yoruba(method: str, target: str, body: bytes) -> bool:
    return method == "POST" and ":translateText" in target and json.loads(body).get("targetLanguageCode") == "yo"


def _judge(method: str, target: str, body: bytes) -> bool:
    return method == "POST" and target.startswith("/v1/messages")


# (stage, server, requests of the stage, answers before the kill)
DATASET_KILLS = [
    ("generation", "openai", _generation, 3),
    ("translation", "google", _to_yoruba, 3),
    ("backtranslation", "openai", _backtranslation, 10),
    ("curation", "anthropic", _judge, 8),
]


def _paid_per_payload(servers: Servers) -> Counter[str]:
    """Answers the upstreams gave, per distinct payload (model calls) and per segment (translations)."""
    paid: Counter[str] = Counter()
    for name in ("openai", "anthropic"):
        for key, n in servers.proxies[name].upstream_answers.items():
            paid[f"{name}:{key}"] += n
    for request in servers.google.translate_requests:
        if request.answered_status == 200:
            for text in request.contents:
                paid[f"google:{request.body.get('targetLanguageCode')}:{text}"] += 1
    return paid


def _reset_counts(servers: Servers) -> None:
    for proxy in servers.proxies.values():
        proxy.upstream_answers.clear()
        proxy.set_gate(None)
    servers.google.reset()


def test_dataset_job_killed_in_each_paid_stage_resumes_without_paying_twice(tmp_path: Path) -> None:
    ports = free_ports(len(SERVER_NAMES))
    log = CrashLog()
    with dataset_servers(ports) as servers:
        urls = {"RELIABILITY_URLS": json.dumps({name: servers.url(name) for name in SERVER_NAMES})}
        schema = schema_with_licence(tmp_path / "schema")
        config = write_run_config(tmp_path / "run.yaml", run_config(servers, schema))

        # the uninterrupted reference
        reference = run_job(tmp_path / "reference", MODULE, "dataset_job", config, job_env(tmp_path / "reference", urls))
        assert reference.returncode == 0, reference.log[-4000:]
        reference_paid = sum(_paid_per_payload(servers).values())
        _reset_counts(servers)

        # killed in each paid stage in turn, each kill's re-run being the run that is killed next
        root = tmp_path / "crashed"
        env = job_env(root, urls)
        previous = None
        for stage, server, matches, after in DATASET_KILLS:
            proxy = servers.proxies[server]
            proxy.set_gate(matches, after)
            run = run_job(root, MODULE, "dataset_job", config, env, kill_when=proxy.gate_settled)
            if previous:
                log.resumed(previous, run)
            assert run.killed, f"{stage}: the run ended (rc {run.returncode}) before its gate closed:\n{run.log[-3000:]}"
            assert proxy.gate_passed == after
            log.killed(stage, run)
            assert not torn_files(root / "data"), torn_files(root / "data")
            # the killed run still holds its pool slots (the next run would wait for them forever)
            assert "its pool slots freed" in release_killed_runs(env)
            proxy.set_gate(None)
            previous = stage
        final = run_job(root, MODULE, "dataset_job", config, env)
        log.resumed(previous, final)
        assert final.returncode == 0, final.log[-4000:]

        paid = _paid_per_payload(servers)
        twice = {key: n for key, n in paid.items() if n > 1}
        print(f"\nkills per stage {log.kills}; resumes {sum(log.resumes.values())}; seconds {log.seconds}")
        print(f"answers paid: uninterrupted run {reference_paid}, killed and resumed {sum(paid.values())}; "
              f"paid twice: {len(twice)}; temp files left by the kills: {len(leftover_temp_files(root / 'data'))}")
        assert not twice, twice
        assert sum(paid.values()) == reference_paid

    assert not torn_files(root / "data")
    ours, theirs = read_outputs(root / "data"), read_outputs(tmp_path / "reference" / "data")
    print("rows:", describe(ours))
    assert set(ours) == set(theirs)
    for name in theirs:
        pd.testing.assert_frame_equal(ours[name], theirs[name], obj=name)
    assert export_files(root / "data") == export_files(tmp_path / "reference" / "data")
