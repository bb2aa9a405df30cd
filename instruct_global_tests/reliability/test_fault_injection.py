"""The dataset job for one partition against servers that fail about 30 % of requests.

A fault-free run and a faulty run with the same seeds, each on fresh servers and a fresh call cache,
the clients behind ``FaultProxy`` (the same ports both times, so URLs and document ids agree): the
faulty run completes, every item is kept or dropped with a reason, nothing is duplicated, and every
output equals the fault-free run's. The figures (faults by kind, survived) are printed.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from dagster import load_assets_from_modules, materialize

from instruct_global.assets import corpus, curate, export, generate, translate
from instruct_global_tests.reliability.dataset_harness import (
    PARTITION,
    dataset_servers,
    describe,
    export_files,
    read_outputs,
    resources,
    run_config,
    schema_with_licence,
)
from instruct_global_tests.reliability.fault_proxy import FAULT_KINDS, free_ports

pytestmark = pytest.mark.reliability

DATASET_ASSETS = load_assets_from_modules([corpus, generate, translate, curate, export])
# what a provider or network fault would leave in a drop reason, were one ever to become a drop
TRANSPORT_WORDS = re.compile(r"HTTP \d|timed? ?out|malformed|connection|overloaded|rate.?limit|50\d|529|429",
                             re.IGNORECASE)  # fmt: skip


def _run_dataset_job(root: Path, ports: list[int], seed: int, rate: float, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("INSTRUCT_GLOBAL_DATA_DIR", str(root / "data"))
    with dataset_servers(ports, seed=seed, rate=rate) as servers:
        schema = schema_with_licence(root / "schema")
        started = time.monotonic()
        result = materialize(DATASET_ASSETS, partition_key=PARTITION, resources=resources(servers, root / "calls.sqlite"),
                             run_config=run_config(servers, schema), raise_on_error=False)  # fmt: skip
        elapsed = time.monotonic() - started
        figures = {
            "injected": {name: Counter(p.injected) for name, p in servers.proxies.items()},
            "survived": {name: p.survived() for name, p in servers.proxies.items()},
            "arrivals": {name: sum(p.arrivals.values()) for name, p in servers.proxies.items()},
            "repaid_after_lost_answer": {name: p.paid_twice() for name, p in servers.proxies.items()},
            "paid": servers.paid(),
            "seconds": round(elapsed, 1),
        }
    return result, figures


def _ids(frame: pd.DataFrame, column: str = "id") -> set[str]:
    return set(frame[column]) if len(frame) else set()


def assert_every_item_accounted_for(out: dict[str, pd.DataFrame]) -> None:
    """Each filtering stage: what came in is what was kept plus what was dropped with a reason."""

    def split(kept: str, dropped: str, column: str, came_in: set[str]) -> None:
        kept_ids, dropped_ids = _ids(out[kept], column), _ids(out[dropped], column)
        assert kept_ids | dropped_ids == came_in, f"{kept}/{dropped}: items lost or invented"
        if "reason" in out[dropped]:
            assert out[dropped]["reason"].fillna("").str.len().gt(0).all(), f"{dropped}: a drop without a reason"

    documents = _ids(out["wikipedia_articles"], "doc_id") | _ids(out["bbc_articles"], "doc_id")
    split("clean_documents", "clean_document_rejects", "doc_id", documents)
    english = _ids(out["skeleton_questions"], "instruction_id") | _ids(out["self_instruct_instructions"], "instruction_id")
    split("translated_instructions", "translation_rejects", "instruction_id", english)
    split("curated_pairs", "curation_rejects", "id", _ids(out["backtranslated_pairs"]))
    candidates = _ids(out["diversified_pairs"]) | _ids(out["reviewed_instructions"])
    split("instruction_dataset", "instruction_dataset_rejects", "id", candidates)
    assert _ids(out["sft_dataset"]) == _ids(out["instruction_dataset"])
    # backtranslation: each candidate segment became a pair or a reject, never both
    assert not _ids(out["backtranslated_pairs"], "chunk_id") & _ids(out["backtranslation_rejects"], "chunk_id")
    assert out["backtranslation_rejects"]["reason"].str.len().gt(0).all()


def assert_no_duplicates(out: dict[str, pd.DataFrame]) -> None:
    for name, frame in out.items():
        if "id" in frame.columns and not name.endswith("rejects"):
            assert frame["id"].is_unique, f"{name}: duplicate id"
    assert out["clean_documents"]["chunk_id"].is_unique
    for name in ("backtranslated_pairs", "curated_pairs", "instruction_dataset"):
        chunks = out[name]["chunk_id"].replace("", pd.NA).dropna()  # template rows have no chunk
        assert chunks.is_unique, f"{name}: one segment made two pairs"


def test_dataset_job_survives_a_30_percent_fault_rate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ports = free_ports(4)
    clean_result, clean = _run_dataset_job(tmp_path / "clean", ports, seed=0, rate=0.0, monkeypatch=monkeypatch)
    assert clean_result.success
    faulty_result, faulty = _run_dataset_job(tmp_path / "faulty", ports, seed=11, rate=0.3, monkeypatch=monkeypatch)
    injected = sum((c for c in faulty["injected"].values()), Counter())
    survived = sum((c for c in faulty["survived"].values()), Counter())
    print(f"\nfault-free run: {clean['seconds']} s, requests {clean['arrivals']}, paid {clean['paid']}")
    print(f"faulty run: {faulty['seconds']} s, requests {faulty['arrivals']}, paid {faulty['paid']}")
    for name in faulty["injected"]:
        print(f"  {name}: injected {dict(faulty['injected'][name])}, survived {dict(faulty['survived'][name])}, "
              f"answers lost on the way and paid again {faulty['repaid_after_lost_answer'][name]}")
    print(f"  all: injected {sum(injected.values())} {dict(injected)}; survived {sum(survived.values())}")
    assert faulty_result.success

    # the mix really happened: every kind, about 30 % of the attempts (retries included) over all servers
    assert set(injected) == set(FAULT_KINDS), injected
    rate = sum(injected.values()) / sum(faulty["arrivals"].values())
    assert 0.15 < rate < 0.4, rate
    assert survived == injected  # every faulted request was answered on a later try

    clean_out, faulty_out = read_outputs(tmp_path / "clean" / "data"), read_outputs(tmp_path / "faulty" / "data")
    print("rows:", describe(faulty_out))
    assert len(faulty_out["instruction_dataset"]) > 20 and len(faulty_out["curated_pairs"]) > 0
    assert_every_item_accounted_for(faulty_out)
    assert_no_duplicates(faulty_out)
    for name, frame in faulty_out.items():
        if "reason" in frame.columns:
            leaked = frame["reason"].astype(str).str.contains(TRANSPORT_WORDS)
            assert not leaked.any(), f"{name}: a fault became a drop: {frame.loc[leaked, 'reason'].tolist()[:3]}"
    assert set(faulty_out) == set(clean_out)
    for name in clean_out:
        pd.testing.assert_frame_equal(faulty_out[name], clean_out[name], obj=name)
    assert export_files(tmp_path / "faulty" / "data") == export_files(tmp_path / "clean" / "data")
    # nothing was paid that the fault-free run did not pay for, bar answers the network lost on the way
    for name, paid in faulty["paid"].items():
        assert paid == clean["paid"][name] + faulty["repaid_after_lost_answer"][name], name
