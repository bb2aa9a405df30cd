"""Suite-wide settings: nothing reaches the network or the model hub; outputs go to temp folders."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# tiny CPU models run several times faster on one thread than on two busy cores
os.environ.setdefault("OMP_NUM_THREADS", "1")
# a failing step fails at once in tests (the definitions read this when they load)
os.environ.setdefault("INSTRUCT_GLOBAL_STEP_RETRIES", "0")

REPO_ROOT = Path(__file__).resolve().parents[1]
REQUIRE_SERVICES = os.environ.get("INSTRUCT_GLOBAL_REQUIRE_SERVICES") == "1"


def require_service(available: bool, what: str) -> None:
    """Skip when a service is missing locally; fail in CI, where .ci/run provides it."""
    if available:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required in CI (INSTRUCT_GLOBAL_REQUIRE_SERVICES=1) but is not available")
    pytest.skip(f"{what} is not available here")


@pytest.fixture
def postgres_url() -> str:
    url = os.environ.get("INSTRUCT_GLOBAL_TEST_POSTGRES_URL", "")
    require_service(bool(url), "PostgreSQL (INSTRUCT_GLOBAL_TEST_POSTGRES_URL, see scripts/start_test_postgres.sh)")
    return url


@pytest.fixture
def docker_compose_bin() -> str:
    path = shutil.which("docker-compose") or ""
    require_service(bool(path), "docker-compose")
    return path


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh data dir for asset outputs."""
    folder = tmp_path / "data"
    monkeypatch.setenv("INSTRUCT_GLOBAL_DATA_DIR", str(folder))
    return folder
