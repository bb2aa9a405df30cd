"""The Dagster UI in a real browser: every group and asset renders with its language partitions, and a
partition launched through the webserver's GraphQL API materialises.

Starts `dagster-webserver` on loopback from the repository's workspace, renders pages in headless
Chromium (Debian's `chromium`) and keeps screenshots in ``$INSTRUCT_GLOBAL_TEST_ARTIFACTS/ui``
(default ``test-artifacts/ui`` in the repository, which git ignores and CI keeps).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from instruct_global.languages import language_keys
from instruct_global_tests.conftest import REPO_ROOT, require_service

pytestmark = pytest.mark.slow

ARTIFACTS = Path(os.environ.get("INSTRUCT_GLOBAL_TEST_ARTIFACTS", REPO_ROOT / "test-artifacts")) / "ui"
WEBSERVER = str(Path(sys.executable).with_name("dagster-webserver"))
LOCATION = "instruct_global"


@dataclass
class Webserver:
    url: str
    dagster_home: Path
    data_dir: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser") or ""
    require_service(bool(path), "chromium (apt-get install --no-install-recommends chromium)")
    return path


def _graphql(server: Webserver, query: str, variables: dict | None = None) -> dict:
    response = httpx.post(f"{server.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=60)
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


@pytest.fixture(scope="module")
def webserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webserver]:
    root = tmp_path_factory.mktemp("ui")
    home, data = root / "home", root / "data"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO_ROOT / "dagster.yaml").read_text())
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "INSTRUCT_GLOBAL_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1"}
    log = (root / "webserver.log").open("w")
    process = subprocess.Popen(
        [WEBSERVER, "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"],
        cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    server = Webserver(f"http://127.0.0.1:{port}", home, data)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{server.url}/server_info", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("webserver did not start:\n" + (root / "webserver.log").read_text()[-3000:])
            time.sleep(0.5)
        _graphql(server, "mutation { setNuxSeen }")  # the first-visit pop-up would cover the pages
        yield server
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


def _render(url: str, screenshot: Path | None = None) -> str:
    """The page's DOM after its scripts ran (and a screenshot, when asked), from headless Chromium."""
    with tempfile.TemporaryDirectory() as profile:
        flags = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}", "--virtual-time-budget=15000", "--window-size=1600,1000"]
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run([*flags, f"--screenshot={screenshot}", url], capture_output=True, timeout=120, check=True)
        done = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


def _groups(server: Webserver) -> dict[str, list[str]]:
    data = _graphql(server, "{ assetNodes { assetKey { path } groupName isPartitioned } }")
    groups: dict[str, list[str]] = {}
    for node in data["assetNodes"]:
        assert node["isPartitioned"], f"{node['assetKey']} has no language partitions"
        groups.setdefault(node["groupName"], []).append("/".join(node["assetKey"]["path"]))
    return groups


def test_every_group_and_asset_renders_with_its_language_partitions(webserver: Webserver) -> None:
    groups = _groups(webserver)
    assert {"corpus", "generate", "translate"} <= set(groups)
    for group, assets in sorted(groups.items()):
        dom = _render(f"{webserver.url}/locations/{LOCATION}/asset-groups/{group}/list",
                      ARTIFACTS / f"group-{group}.png")
        missing = [a for a in assets if a not in dom]
        assert not missing, f"group {group}: {missing} not rendered"
    dom = _render(f"{webserver.url}/assets/clean_documents?view=partitions", ARTIFACTS / "partitions.png")
    missing = [key for key in language_keys() if key not in dom]
    assert not missing, f"partitions not shown: {missing}"


def test_a_partition_launched_from_the_webserver_materialises(webserver: Webserver) -> None:
    import yaml
    from dagster_graphql import DagsterGraphQLClient

    client = DagsterGraphQLClient("127.0.0.1", port_number=int(webserver.url.rsplit(":", 1)[1]), timeout=120)
    run_config = yaml.safe_load((REPO_ROOT / "instruct_global" / "configs" / "sample_run.yaml").read_text())
    run_id = client.submit_job_execution(
        "sample_corpus_job", repository_location_name=LOCATION, run_config=run_config,
        tags={"dagster/partition": "yor"},
    )
    deadline = time.monotonic() + 300
    status = client.get_run_status(run_id)
    while status.value not in ("SUCCESS", "FAILURE", "CANCELED") and time.monotonic() < deadline:
        time.sleep(2)
        status = client.get_run_status(run_id)
    assert status.value == "SUCCESS", f"run {run_id} ended {status.value}"
    assert (webserver.data_dir / "clean_documents" / "yor.parquet").exists()
    dom = _render(f"{webserver.url}/runs/{run_id}", ARTIFACTS / "run-yor.png")
    assert "clean_documents" in dom
    asset = _render(f"{webserver.url}/assets/clean_documents?view=partitions&partition=yor",
                    ARTIFACTS / "clean_documents-yor.png")
    assert "Materialized" in asset and "documents_kept" in asset  # the partition's metadata is shown
