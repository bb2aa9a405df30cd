"""The code location as users run it: `dagster job execute` in a subprocess, on SQLite and PostgreSQL
instance storage, the definitions loading, and the compose file validating."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pytest
import yaml

from instruct_global_tests.conftest import REPO_ROOT

DAGSTER = str(Path(sys.executable).with_name("dagster"))


def _execute_sample_job(dagster_home: Path, data_dir: Path, extra_env: dict[str, str] | None = None) -> None:
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "INSTRUCT_GLOBAL_DATA_DIR": str(data_dir),
           **(extra_env or {})}
    completed = subprocess.run(
        [DAGSTER, "job", "execute", "-m", "instruct_global.definitions", "-j", "sample_corpus_job",
         "-c", "instruct_global/configs/sample_run.yaml", "--tags", '{"dagster/partition": "hau"}'],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "RUN_SUCCESS" in completed.stdout + completed.stderr
    clean = pd.read_parquet(data_dir / "clean_documents" / "hau.parquet")
    assert len(clean) > 0 and set(clean["lang"]) == {"hau"}
    for asset in ("wikipedia_articles", "bbc_articles", "source_records", "clean_document_rejects"):
        assert (data_dir / asset / "hau.parquet").exists()


def test_sample_corpus_job_runs_from_the_cli(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO_ROOT / "dagster.yaml").read_text())
    data = tmp_path / "data"
    _execute_sample_job(home, data)
    assert (home / "history" / "runs.db").exists() or (home / "storage").exists()
    # the summary `make sample` prints: a line per asset with its rows, drops and file, then the checks
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    summary = subprocess.run(
        [sys.executable, "-m", "instruct_global.run_summary", "--job", "sample_corpus_job", "--partition", "hau"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    rows = {line.split()[0]: line.split()[1:] for line in summary.splitlines() if line.strip()}
    clean = pd.read_parquet(data / "clean_documents" / "hau.parquet")
    assert rows["clean_documents"][:1] == [str(len(clean))]
    assert rows["clean_documents"][2] == str(data / "clean_documents" / "hau.parquet")
    assert int(rows["clean_documents"][1]) > 0  # the samples hold deliberate duplicates and an English page
    assert "passed  clean_documents: min_documents" in summary
    assert "SUCCESS" in summary.splitlines()[0]


def test_instance_on_postgres_storage_records_the_run(tmp_path: Path, postgres_url: str) -> None:
    """The storage block of the compose instance (deploy/dagster.yaml), against a real PostgreSQL."""
    import psycopg2

    deploy = yaml.safe_load((REPO_ROOT / "deploy" / "dagster.yaml").read_text())
    home = tmp_path / "home"
    home.mkdir()
    # the run launcher and coordinator need Docker and a daemon; the storage is what is under test
    (home / "dagster.yaml").write_text(yaml.safe_dump({"storage": deploy["storage"], "telemetry": {"enabled": False}}))
    url = urlparse(postgres_url)
    admin = postgres_url.rsplit("/", 1)[0] + "/dagster_test"
    conn = psycopg2.connect(admin)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    env = {"DAGSTER_POSTGRES_HOST": url.hostname or "127.0.0.1", "DAGSTER_POSTGRES_USER": url.username or "",
           "DAGSTER_POSTGRES_PASSWORD": url.password or "", "DAGSTER_POSTGRES_DB": "dagster_test"}
    _execute_sample_job(home, tmp_path / "data", env)
    with conn.cursor() as cur:
        cur.execute("SELECT pipeline_name, status FROM runs")
        assert ("sample_corpus_job", "SUCCESS") in cur.fetchall()
        cur.execute("SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'")
        assert cur.fetchone()[0] >= 5
    conn.close()


def test_definitions_load_with_every_backend_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    from instruct_global.resources.selection import BackendSelectionError, select_resources

    cases = {
        (): ("LocalTransformersLLM", "NLLBTranslator"),
        (("INSTRUCT_GLOBAL_LLM", "openai"),): ("OpenAIChatLLM", "NLLBTranslator"),
        (("INSTRUCT_GLOBAL_LLM", "anthropic"), ("INSTRUCT_GLOBAL_TRANSLATOR", "google"),
         ("GOOGLE_CLOUD_PROJECT", "p")): ("AnthropicLLM", "GoogleTranslator"),
        (("INSTRUCT_GLOBAL_LLM", "openai-compatible"), ("INSTRUCT_GLOBAL_LLM_MODEL", "llama3"),
         ("INSTRUCT_GLOBAL_LLM_BASE_URL", "http://127.0.0.1:11434/v1")): ("OpenAICompatibleLLM", "NLLBTranslator"),
    }
    for env, (llm, translator) in cases.items():
        resources = select_resources(dict(env))
        assert (type(resources["llm"]).__name__, type(resources["translator"]).__name__) == (llm, translator)
    with pytest.raises(BackendSelectionError, match="INSTRUCT_GLOBAL_LLM='gpt' is not one of"):
        select_resources({"INSTRUCT_GLOBAL_LLM": "gpt"})
    with pytest.raises(BackendSelectionError, match="needs INSTRUCT_GLOBAL_LLM_BASE_URL"):
        select_resources({"INSTRUCT_GLOBAL_LLM": "openai-compatible", "INSTRUCT_GLOBAL_LLM_MODEL": "m"})
    # secrets stay EnvVar references: no key is read when definitions load
    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-read-at-load-0123456789abcdef")
    resources = select_resources({"INSTRUCT_GLOBAL_LLM": "openai"})
    assert "sk-never" not in repr(resources["llm"])


def test_compose_file_validates(docker_compose_bin: str) -> None:
    completed = subprocess.run([docker_compose_bin, "-f", "docker-compose.yml", "config"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    config = yaml.safe_load(completed.stdout)
    assert set(config["services"]) == {"instruct_global_postgres", "instruct_global_user_code",
                                       "instruct_global_webserver", "instruct_global_daemon"}
    assert "healthcheck" in config["services"]["instruct_global_postgres"]
    deploy = yaml.safe_load((REPO_ROOT / "deploy" / "dagster.yaml").read_text())
    assert deploy["run_launcher"]["class"] == "DockerRunLauncher" and "postgres" in deploy["storage"]


def test_gpu_compose_override_validates_and_only_adds_gpus(docker_compose_bin: str) -> None:
    completed = subprocess.run(
        [docker_compose_bin, "-f", "docker-compose.yml", "-f", "docker-compose.gpu.yml", "config"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    services = yaml.safe_load(completed.stdout)["services"]
    devices = services["instruct_global_user_code"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    # the GPU instance config is the CPU one plus device requests on the run containers
    cpu = yaml.safe_load((REPO_ROOT / "deploy" / "dagster.yaml").read_text())
    gpu = yaml.safe_load((REPO_ROOT / "deploy" / "dagster.gpu.yaml").read_text())
    requests = gpu["run_launcher"]["config"]["container_kwargs"].pop("device_requests")
    assert requests == [{"driver": "nvidia", "count": -1, "capabilities": [["gpu"]]}]
    assert gpu == cpu
    assert cpu["run_monitoring"]["enabled"] and cpu["run_retries"]["enabled"]


@pytest.mark.slow
def test_a_cli_backfill_of_three_languages_is_waited_for_and_reported(tmp_path: Path) -> None:
    home, data = tmp_path / "home", tmp_path / "data"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO_ROOT / "dagster.yaml").read_text())
    env = {**os.environ, "DAGSTER_HOME": str(home), "INSTRUCT_GLOBAL_DATA_DIR": str(data)}
    launched = subprocess.run(
        [DAGSTER, "job", "backfill", "-m", "instruct_global.definitions", "-j", "sample_corpus_job",
         "--partitions", "yor,hau,swh", "--noprompt"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    report = subprocess.run(
        # three runs share the machine's cores: a generous wait, reached only when something hangs
        [sys.executable, "-m", "instruct_global.backfill_report", "--job", "sample_corpus_job", "--timeout", "600"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=660,
    )
    assert report.returncode == 0, report.stdout + report.stderr
    lines = report.stdout.splitlines()
    assert lines[0].endswith("sample_corpus_job: 3 runs")
    assert [line.split()[:2] for line in lines[1:]] == [["hau", "SUCCESS"], ["swh", "SUCCESS"], ["yor", "SUCCESS"]]
    for lang in ("yor", "hau", "swh"):  # each language's rows stay in its own partition
        clean = pd.read_parquet(data / "clean_documents" / f"{lang}.parquet")
        assert set(clean["lang"]) == {lang}
