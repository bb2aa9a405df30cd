"""The shipped local instance holds its pool limits when many runs claim slots at the same moment.

Dagster's own SQLite storage hands out slots past the limit then (9 to 12 of 12 claims won against a
limit of 4 when this was written); `instruct_global.instance_storage` serialises the claims.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

import pytest
from dagster import DagsterInstance

from instruct_global.instance_storage import PoolSafeSqliteEventLogStorage

REPO_ROOT = Path(__file__).resolve().parents[1]
CLAIMANTS = 12
LIMIT = 4


def _claim_at_once(home: str, index: int, barrier, results) -> None:
    os.environ["DAGSTER_HOME"] = home
    storage = DagsterInstance.get().event_log_storage
    barrier.wait(timeout=60)
    status = storage.claim_concurrency_slot("bbc", f"run-{index}", "bbc_articles")
    results.put(status.is_claimed)


@pytest.fixture
def shipped_instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DagsterInstance:
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO_ROOT / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    instance = DagsterInstance.get()
    assert isinstance(instance.event_log_storage, PoolSafeSqliteEventLogStorage)
    return instance


def test_simultaneous_claims_get_no_more_slots_than_the_limit(shipped_instance: DagsterInstance) -> None:
    shipped_instance.event_log_storage.set_concurrency_slots("bbc", LIMIT)
    context = mp.get_context("fork")
    barrier, results = context.Barrier(CLAIMANTS), context.Queue()
    home = os.environ["DAGSTER_HOME"]
    procs = [
        context.Process(target=_claim_at_once, args=(home, i, barrier, results)) for i in range(CLAIMANTS)
    ]
    for proc in procs:
        proc.start()
    claims = [results.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    assert sum(claims) == LIMIT
    info = shipped_instance.event_log_storage.get_concurrency_info("bbc")
    assert len(info.claimed_slots) == LIMIT and info.pending_step_count == CLAIMANTS - LIMIT


def test_a_freed_slot_goes_to_a_waiting_step_and_the_limit_still_holds(
    shipped_instance: DagsterInstance,
) -> None:
    storage = shipped_instance.event_log_storage
    storage.set_concurrency_slots("llm_api", 2)
    first = [
        storage.claim_concurrency_slot("llm_api", f"run-{i}", "curated_pairs").is_claimed for i in range(3)
    ]
    assert first == [True, True, False]
    storage.free_concurrency_slot_for_step("run-0", "curated_pairs")
    assert storage.claim_concurrency_slot("llm_api", "run-2", "curated_pairs").is_claimed
    assert not storage.claim_concurrency_slot("llm_api", "run-3", "curated_pairs").is_claimed
    storage.free_concurrency_slots_for_run("run-1")
    assert len(storage.get_concurrency_info("llm_api").claimed_slots) == 1


def test_without_dagster_home_or_a_base_dir_the_error_says_what_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    with pytest.raises(RuntimeError, match="DAGSTER_HOME"):
        PoolSafeSqliteEventLogStorage()


def test_an_explicit_base_dir_is_used(tmp_path: Path) -> None:
    storage = PoolSafeSqliteEventLogStorage(base_dir=str(tmp_path / "events"))
    storage.set_concurrency_slots("wikipedia", 1)
    assert storage.get_concurrency_info("wikipedia").slot_count == 1
    assert (tmp_path / "events" / "index.db").exists()


def test_an_instance_opened_from_another_folder_than_dagster_home_is_refused(
    shipped_instance: DagsterInstance, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "dagster.yaml").write_text((REPO_ROOT / "dagster.yaml").read_text())
    with pytest.raises(RuntimeError, match=f"dagster.yaml is in {other}.*set DAGSTER_HOME={other}"):
        DagsterInstance.from_config(str(other))
