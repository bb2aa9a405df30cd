"""Hosted fine-tuning through the real openai SDK against the local server with the fine-tuning endpoints."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest

from instruct_global.lib.common.call_cache import SQLiteCallCache
from instruct_global.lib.train.openai_finetune import (
    HostedFineTuningError,
    StateStore,
    run_hosted_finetune,
    supervised_method,
)
from instruct_global_tests.fixtures.llm_testing import FAKE_OPENAI_KEY
from instruct_global_tests.fixtures.openai_finetune_server import OpenAIFineTuningServer


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    line = json.dumps(
        {"messages": [{"role": "user", "content": "Bawo ni?"}, {"role": "assistant", "content": "Dáadáa"}]}
    )
    train, val = tmp_path / "train.chat.jsonl", tmp_path / "validation.chat.jsonl"
    train.write_text((line + "\n") * 12)
    val.write_text(line + "\n")
    return train, val


@pytest.fixture
def server():
    with OpenAIFineTuningServer() as srv:
        srv.n_checkpoints = 3
        yield srv


def _client(server: OpenAIFineTuningServer) -> openai.OpenAI:
    return openai.OpenAI(api_key=FAKE_OPENAI_KEY, base_url=server.base_url, max_retries=0)


def _run(server, store, files, **kwargs):
    train, val = files
    return run_hosted_finetune(
        _client(server),
        store,
        model="gpt-4o-mini-2024-07-18",
        train_path=train,
        validation_path=val,
        method=supervised_method(n_epochs=3),
        suffix="yor",
        poll_interval_s=0.0,
        secrets=[FAKE_OPENAI_KEY],
        **kwargs,
    )


def _store(path: Path) -> StateStore:
    cache = SQLiteCallCache(path)
    return StateStore(cache.get_state, cache.set_state)


def test_job_runs_to_success_with_events_and_checkpoints(server, files, tmp_path: Path) -> None:
    result = _run(server, _store(tmp_path / "c.sqlite"), files)
    assert result.status == "succeeded" and result.fine_tuned_model.startswith("ft:gpt-4o-mini-2024-07-18:")
    assert not result.resumed
    assert [c["step_number"] for c in result.checkpoints] == [30, 20, 10]
    assert any("successfully completed" in e["message"] for e in result.events)
    create = next(body for route, body in server.requests if route == "fine_tuning.create")
    assert create["method"] == {
        "type": "supervised",
        "supervised": {
            "hyperparameters": {"n_epochs": 3, "batch_size": "auto", "learning_rate_multiplier": "auto"}
        },
    }
    uploads = [body for route, body in server.requests if route == "files.create"]
    assert uploads == [{"purpose": "fine-tune"}, {"purpose": "fine-tune"}]


def test_events_are_paged(server, files, tmp_path: Path) -> None:
    server.job_statuses = ["validating_files", *["running"] * 1, "succeeded"]
    client = _client(server)
    result = _run(server, _store(tmp_path / "c.sqlite"), files)
    page = client.fine_tuning.jobs.list_events(result.job_id, limit=2)
    assert page.has_more and len(list(page)) == len(result.events)  # the SDK follows the cursor
    assert server.counts["fine_tuning.events"] > 2


def test_a_rerun_resumes_polling_the_stored_job(server, files, tmp_path: Path) -> None:
    server.job_statuses = ["validating_files", "queued", "running", "running", "running", "succeeded"]
    store = _store(tmp_path / "c.sqlite")
    with pytest.raises(HostedFineTuningError, match=r"still .* run again to resume"):
        _run(server, store, files, timeout_s=0.0)  # the first process dies while the job runs
    assert server.counts["fine_tuning.create"] == 1
    result = _run(server, store, files)
    assert result.resumed and result.status == "succeeded"
    assert (
        server.counts["fine_tuning.create"] == 1 and server.counts["files.create"] == 2
    )  # nothing paid twice
    # changed data is a new job
    train = files[0]
    train.write_text(train.read_text() + train.read_text().splitlines()[0] + "\n")
    _run(server, store, files)
    assert server.counts["fine_tuning.create"] == 2


def test_closed_platform_fails_with_the_providers_message(server, files, tmp_path: Path) -> None:
    server.refuse_fine_tuning = f"Fine-tuning is not available for new organizations (key {FAKE_OPENAI_KEY})."
    with pytest.raises(
        HostedFineTuningError, match=r"HTTP 403.*Fine-tuning is not available for new organizations"
    ) as info:
        _run(server, _store(tmp_path / "c.sqlite"), files)
    assert FAKE_OPENAI_KEY not in str(info.value)


def test_failed_job_reports_its_error(server, files, tmp_path: Path) -> None:
    server.job_statuses = ["validating_files", "failed"]
    with pytest.raises(HostedFineTuningError, match="failed: The job failed due to an invalid training file"):
        _run(server, _store(tmp_path / "c.sqlite"), files)


@pytest.mark.parametrize("kind", ["reset", "truncated", "timeout", "server_error"])
def test_a_create_whose_answer_is_lost_makes_one_job(kind: str, files, tmp_path: Path) -> None:
    """The provider made the job but the answer never arrived (reset, cut short) or the request failed
    before it (500, timeout): the retry must take the existing job, never pay for a second one."""
    from instruct_global.lib.common.retry import RetryPolicy
    from instruct_global.lib.train.openai_finetune import create_job_once
    from instruct_global_tests.reliability.fault_proxy import FaultProxy

    with OpenAIFineTuningServer() as server, FaultProxy(
        server.root_url, protocol="openai", seed=0, rate=1.0, kinds=(kind,), max_faults_per_payload=1, timeout_s=0.5,
        exempt=lambda method, path: not (method == "POST" and path.rstrip("/").endswith("/fine_tuning/jobs")),
    ) as proxy:  # fmt: skip
        client = openai.OpenAI(api_key=FAKE_OPENAI_KEY, base_url=f"{proxy.url}/v1", max_retries=0, timeout=0.5)
        upload = client.files.create(file=files[0].open("rb"), purpose="fine-tune")
        kwargs = {"model": "gpt-4o-mini-2024-07-18", "training_file": upload.id,
                  "method": supervised_method(n_epochs=3), "suffix": "yor"}  # fmt: skip
        job = create_job_once(client, kwargs, policy=RetryPolicy(backoff_base_seconds=0.001))
        assert proxy.injected[kind] == 1
        # a reset or cut-short answer reached the provider, which made the job; the retry found it by its
        # training file. A 500 or a timeout never reached it (the proxy answered): the retry created it.
        assert server.counts["fine_tuning.create"] == 1 and server.counts["fine_tuning.list"] == 1
        assert list(server.jobs) == [job.id]
