"""Load: the call cache under concurrent writer processes (SQLite, and PostgreSQL when configured),
and ten language partitions materialised at once on one instance against the local servers."""

from __future__ import annotations

import multiprocessing
import os
import time
import uuid
from pathlib import Path

import pytest

from instruct_global.lib.common.call_cache import open_call_cache

WRITERS = 6
KEYS_PER_WRITER = 400
SHARED_SHARE = 2  # every second key is also written by every other writer (racing for it)


def _keys(writer: int, prefix: str) -> list[str]:
    """Half of a writer's keys are its own, half are written by every writer (same names)."""
    own = [f"{prefix}own-{writer}-{i}" for i in range(KEYS_PER_WRITER // SHARED_SHARE)]
    shared = [f"{prefix}shared-{i}" for i in range(KEYS_PER_WRITER // SHARED_SHARE)]
    return [k for pair in zip(own, shared, strict=True) for k in pair]


def _writer(url: str, writer: int, prefix: str, start: float, out: multiprocessing.Queue) -> None:
    try:
        cache = open_call_cache(url)
        while time.time() < start:  # every process starts writing at the same moment
            time.sleep(0.001)
        keys = _keys(writer, prefix)
        seen: dict[str, int] = {}
        for i in range(0, len(keys), 7):  # small batches interleave the writers' transactions
            batch = keys[i : i + 7]
            cache.put_many({k: {"writer": writer, "key": k, "text": "ìdáhùn " * 20} for k in batch},
                           backend="load-test", model="m")  # fmt: skip
            # read back what is there now: whatever writer won, it must be a whole value for that key
            for key, value in cache.get_many(batch).items():
                assert value["key"] == key and value["text"] == "ìdáhùn " * 20
                seen[key] = value["writer"]
            cache.set_state(f"{prefix}state-{writer}", {"batches": i // 7 + 1})
        cache.close()
        out.put(("ok", writer, seen))
    except BaseException as exc:  # reported to the test, not lost in the child
        out.put(("error", writer, f"{type(exc).__name__}: {exc}"))


def _hammer(url: str) -> dict[str, int]:
    prefix = f"{uuid.uuid4().hex[:8]}-"
    open_call_cache(url).close()  # the schema exists before the race (as after any first run)
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters, like separate run workers
    queue: multiprocessing.Queue = ctx.Queue()
    start = time.time() + 2.0  # after every interpreter has started
    procs = [ctx.Process(target=_writer, args=(url, w, prefix, start, queue)) for w in range(WRITERS)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=180) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    errors = [r for r in results if r[0] == "error"]
    assert errors == [], errors
    cache = open_call_cache(url)
    every_key = sorted({k for w in range(WRITERS) for k in _keys(w, prefix)})
    stored = cache.get_many(every_key)
    # nothing lost, nothing torn, and the first answer for a key won for every reader
    assert sorted(stored) == every_key
    for _, _writer_id, seen in results:
        for key, writer in seen.items():
            assert stored[key]["writer"] == writer, key
    for key in every_key:
        if "-own-" in key:
            assert stored[key]["writer"] == int(key.split("-own-")[1].split("-")[0])
    states = [cache.get_state(f"{prefix}state-{w}") for w in range(WRITERS)]
    assert states == [{"batches": -(-KEYS_PER_WRITER // 7)}] * WRITERS
    figures = {"writers": WRITERS, "puts": WRITERS * KEYS_PER_WRITER, "distinct_keys": len(every_key),
               "stored": len(stored)}  # fmt: skip
    cache.close()
    return figures


@pytest.mark.reliability
def test_sqlite_call_cache_under_concurrent_writer_processes(tmp_path: Path) -> None:
    figures = _hammer(str(tmp_path / "calls.sqlite"))
    print(f"\ncall cache (SQLite): {figures}")


@pytest.mark.reliability
@pytest.mark.postgres
def test_postgres_call_cache_under_concurrent_writer_processes(postgres_url: str) -> None:
    figures = _hammer(postgres_url)
    print(f"\ncall cache (PostgreSQL): {figures}")


# --- ten partitions at once -------------------------------------------------------------------------

import json  # noqa: E402
import random  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from collections import Counter  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from instruct_global.languages import LANGUAGES  # noqa: E402
from instruct_global_tests.conftest import REPO_ROOT  # noqa: E402
from instruct_global_tests.fixtures.corpus_server import LATIN1_ARTICLE, BbcArticle, CorpusServer  # noqa: E402
from instruct_global_tests.fixtures.curate_llm import CurateResponder  # noqa: E402
from instruct_global_tests.fixtures.openai_server import OpenAIServer  # noqa: E402

LOAD_LANGUAGES = ("yor", "hau", "ibo", "pcm", "swh", "amh", "som", "zul", "kin", "tir")
# common words of each language, from which each tiny article is drawn (deterministically)
WORDS = {
    "yor": "àwọn ni ti ó sì jẹ́ fún pẹ̀lú ilé ọjà omi oúnjẹ ìlú ọmọdé ènìyàn ń lọ wá ṣe rí mọ̀ dára púpọ̀ náà yìí",
    "hau": "da na a ya ta su ba za mu ne ce gida kasuwa ruwa abinci gari yara mutane suna zuwa yin gani sani kyau",
    "ibo": "na ya ndị nke a ọ bụ maka ha ụlọ ahịa mmiri nri obodo ụmụaka mmadụ na-aga bịa mee hụ mara mma ukwuu",
    "pcm": "di dem na for wey go come don dey make house market water food town pikin people waka see sabi fine",
    "swh": "na ya wa kwa ni katika hii ile watu nyumba soko maji chakula mji watoto wanakwenda kuja kufanya kuona",
    "amh": "እና ነው ላይ ውስጥ ወደ ከ ቤት ገበያ ውሃ ምግብ ከተማ ልጆች ሰዎች ይሄዳሉ መጡ ሰሩ አዩ አወቁ ጥሩ በጣም ይህ",
    "som": "iyo waa ee ka ku oo guriga suuqa biyaha cuntada magaalada carruurta dadka way tagaan yimid sameeyay arkay",
    "zul": "futhi ukuthi kodwa uma abantu indlu imakethe amanzi ukudla idolobha izingane bayahamba beza benza babona",
    "kin": "kandi ni mu ku ya abantu inzu isoko amazi ibiryo umujyi abana baragenda baje bakoze babonye bazi neza",
    "tir": "ኣብ ካብ ምስ ናብ ገዛ ዕዳጋ ማይ መግቢ ከተማ ቆልዑ ሰባት ይኸዱ መጹ ገበሩ ረኣዩ ፈለጡ ጽቡቕ ብጣዕሚ እዚ",
}
WIKI_PER_LANGUAGE, BBC_PER_LANGUAGE = 5, 3
POOLS = ("wikipedia", "bbc", "llm_api", "translation_api")  # the pools the assets declare (besides gpu)


def _text(lang: str, seed: int, n_words: int = 70) -> str:
    rng = random.Random(f"{lang}-{seed}")
    words = WORDS[lang].split()
    sentences, out = [], []
    for i in range(n_words):
        out.append(rng.choice(words))
        if len(out) >= 9 and (rng.random() < 0.25 or i == n_words - 1):
            sentences.append(" ".join(out).capitalize() + ".")
            out = []
    return " ".join(sentences + ([" ".join(out) + "."] if out else []))


def _corpora() -> tuple[dict[str, list[tuple[str, str]]], dict[str, list[BbcArticle]]]:
    wiki, bbc = {}, {}
    for key in LOAD_LANGUAGES:
        lang = LANGUAGES[key]
        wiki[lang.wikipedia_code] = [(f"{key} àpilẹ̀kọ {i}", _text(key, i)) for i in range(WIKI_PER_LANGUAGE)]
        if lang.bbc_service is None:  # Zulu: no BBC service
            continue
        bbc[lang.bbc_service] = [
            BbcArticle(f"c{key}{i:07d}o", f"{key} ìròyìn {i}", "2025-05-01",
                       (_text(key, 100 + i, 40), _text(key, 200 + i, 40)))
            for i in range(BBC_PER_LANGUAGE)
        ]  # fmt: skip
    return wiki, bbc


def _run_config(server: CorpusServer) -> dict:
    return {
        "ops": {
            "wikipedia_articles": {"config": {"api_url": server.api_url_template, "max_articles": 50}},
            "bbc_articles": {"config": {"base_url": server.base_url, "max_articles": 20}},
            "clean_documents": {"config": {"workers": 1, "max_tokens": 48, "min_chars": 40, "min_words": 8,
                                           "check_min_documents": 0}},
            "backtranslated_pairs": {"config": {"min_tokens": 8, "max_per_document": 2}},
        },
        "resources": {"http": {"config": {"min_interval_seconds": 0.0, "backoff_base_seconds": 0.05,
                                          "max_backoff_seconds": 0.2}}},
        "execution": {"config": {"in_process": {}}},  # one process per run: ten runs, ten processes
    }  # fmt: skip


SELECTION = "wikipedia_articles,bbc_articles,source_records,clean_documents,clean_document_rejects," \
            "backtranslated_pairs,backtranslation_rejects,curated_pairs,curation_rejects"


def _step_windows(home: Path) -> list[tuple[str, float, float]]:
    """(step key, start, end) of every step of every run, from the instance's event log."""
    windows = []
    for db in (home / "history" / "runs").glob("*.db"):
        if db.name == "index.db":
            continue
        with sqlite3.connect(db) as conn:
            rows = conn.execute("SELECT dagster_event_type, step_key, timestamp FROM event_logs "
                                "WHERE dagster_event_type IN ('STEP_START','STEP_SUCCESS','STEP_FAILURE')").fetchall()
        starts = {}
        for kind, step, ts in rows:
            when = ts.timestamp() if hasattr(ts, "timestamp") else pd.Timestamp(ts).timestamp()
            if kind == "STEP_START":
                starts[step] = when
            elif step in starts:
                windows.append((step, starts[step], when))
    return windows


def _max_overlap(windows: list[tuple[float, float]]) -> int:
    edges = sorted([(s, 1) for s, _ in windows] + [(e, -1) for _, e in windows], key=lambda x: (x[0], x[1]))
    current = peak = 0
    for _, delta in edges:
        current += delta
        peak = max(peak, current)
    return peak


def _check_partitions(data: Path, home: Path, wiki: dict, bbc: dict, limit: int) -> dict[str, object]:
    """Every partition whole and only its own language; pools held. Returns the figures."""
    counts: dict[str, dict[str, int]] = {}
    for key in LOAD_LANGUAGES:
        lang = LANGUAGES[key]
        frames = {name: pd.read_parquet(data / name / f"{key}.parquet") for name in (
            "wikipedia_articles", "bbc_articles", "clean_documents", "clean_document_rejects",
            "backtranslated_pairs", "backtranslation_rejects", "curated_pairs", "curation_rejects")}  # fmt: skip
        # no lost rows: every article served reached its partition, every document is kept or rejected
        assert sorted(frames["wikipedia_articles"]["title"]) == sorted(t for t, _ in wiki[lang.wikipedia_code])
        served = {f"/{lang.bbc_service}/articles/{a.article_id}" for a in bbc.get(lang.bbc_service, [])}
        if lang.bbc_service == "hausa":  # the fixture's Hausa front page also links a Latin-1 page
            served.add(LATIN1_ARTICLE)
        assert {urlsplit(u).path for u in frames["bbc_articles"]["url"]} == served
        documents = set(frames["wikipedia_articles"]["doc_id"]) | set(frames["bbc_articles"]["doc_id"])
        assert set(frames["clean_documents"]["doc_id"]) | set(frames["clean_document_rejects"]["doc_id"]) == documents
        # no rows of one language in another's partition
        for name, frame in frames.items():
            if "lang" in frame.columns and len(frame):
                assert set(frame["lang"]) == {key}, (name, key, set(frame["lang"]))
        for url in [*frames["wikipedia_articles"]["url"], *frames["clean_documents"]["url"]]:
            assert f"//{lang.wikipedia_code}.wikipedia.org/" in url or f"/{lang.bbc_service}/articles/" in url, url
        assert all(f"/{lang.bbc_service}/articles/" in u for u in frames["bbc_articles"]["url"])
        counts[key] = {name: len(frame) for name, frame in frames.items()}

    windows = _step_windows(home)
    by_pool = {"wikipedia": [w[1:] for w in windows if w[0] == "wikipedia_articles"],
               "bbc": [w[1:] for w in windows if w[0] == "bbc_articles"],
               "llm_api": [w[1:] for w in windows if w[0] in ("backtranslated_pairs", "curated_pairs")]}  # fmt: skip
    peaks = {pool: _max_overlap(w) for pool, w in by_pool.items()}
    assert len(windows) == len(LOAD_LANGUAGES) * 6, len(windows)  # six steps per run, all finished
    assert all(1 <= peak <= limit for peak in peaks.values()), (peaks, limit)
    all_runs = max(_max_overlap([w[1:] for w in windows]), 1)
    totals = Counter()
    for per in counts.values():
        totals.update(per)
    return {"rows": dict(totals), "peaks": peaks, "all_steps_peak": all_runs}


@pytest.mark.reliability
def test_ten_partitions_at_once_on_one_instance(tmp_path: Path) -> None:
    wiki, bbc = _corpora()
    home, data = tmp_path / "home", tmp_path / "data"
    home.mkdir()
    instance_yaml = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())
    limit = instance_yaml["concurrency"]["pools"]["default_limit"]  # the configured pools, as shipped
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance_yaml))
    started = time.monotonic()
    with CorpusServer(wiki_articles=wiki, bbc_articles=bbc) as corpus, OpenAIServer() as llm:
        llm.responder = CurateResponder()
        config_path = tmp_path / "run.yaml"
        config_path.write_text(yaml.safe_dump(_run_config(corpus)))
        env = {**os.environ, "DAGSTER_HOME": str(home), "INSTRUCT_GLOBAL_DATA_DIR": str(data),
               "PYTHONPATH": str(REPO_ROOT), "INSTRUCT_GLOBAL_LLM": "openai-compatible",
               "INSTRUCT_GLOBAL_LLM_BASE_URL": llm.base_url, "INSTRUCT_GLOBAL_LLM_MODEL": "load-model",
               "INSTRUCT_GLOBAL_MODEL_CACHE": str(tmp_path / "models")}  # fmt: skip
        dagster = str(Path(sys.executable).with_name("dagster"))
        # the instance first, as `make instance` creates it: ten processes creating one SQLite instance
        # at the same moment race in its schema migrations (alembic "more than one head"); the slot
        # claims themselves are serialised by the shipped storage (test_instance_storage.py)
        for pool, pool_limit in [*((p, limit) for p in POOLS), ("gpu", 1)]:
            subprocess.run([dagster, "instance", "concurrency", "set", pool, str(pool_limit)], cwd=REPO_ROOT,
                           env=env, check=True, capture_output=True, timeout=120)  # fmt: skip
        procs = {
            key: subprocess.Popen(
                [dagster, "asset", "materialize", "-m", "instruct_global.definitions", "--select", SELECTION,
                 "--partition", key, "-c", str(config_path)],
                cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )
            for key in LOAD_LANGUAGES
        }
        outputs = {key: proc.communicate(timeout=900)[0] for key, proc in procs.items()}
        chat_calls = llm.counts["chat"]
    elapsed = time.monotonic() - started
    failed = {k: out[-2500:] for k, out in outputs.items() if procs[k].returncode != 0}
    assert failed == {}, failed

    figures = _check_partitions(data, home, wiki, bbc, limit)
    print(f"\nload: {len(LOAD_LANGUAGES)} partitions at once in {elapsed:.0f} s; rows {figures['rows']}; "
          f"LLM calls {chat_calls}; peak steps in flight per pool {figures['peaks']} (limit {limit}), "
          f"all steps {figures['all_steps_peak']}")
    assert figures["all_steps_peak"] > 1  # the runs really overlapped
    # one shared call cache, written by ten processes: one row per distinct request, each readable
    with sqlite3.connect(data / "cache" / "calls.sqlite") as conn:
        (n_cached,) = conn.execute("SELECT COUNT(*) FROM calls").fetchone()
        assert all(json.loads(v) for (v,) in conn.execute("SELECT value FROM calls"))
    assert 0 < n_cached <= chat_calls
