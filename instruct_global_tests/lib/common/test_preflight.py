"""The preflight's pure checks: each finds its problem, names the fix, and takes no time."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from instruct_global.lib.common.gguf import gguf_fingerprint, gguf_problem
from instruct_global.lib.common.preflight import (
    PreflightError,
    Problem,
    can_connect,
    env_problem,
    file_problem,
    format_problems,
    hf_model_problem,
    http_server_problem,
    hub_offline,
    raise_if_problems,
)
from instruct_global_tests.fixtures.openai_server import OpenAIServer


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once the socket closes


def test_hub_offline_honours_the_variable_without_connecting() -> None:
    start = time.perf_counter()
    assert hub_offline({"HF_HUB_OFFLINE": "1"})
    assert hub_offline({"HF_HUB_OFFLINE": "true"})
    assert time.perf_counter() - start < 0.1


def test_hub_offline_when_the_endpoint_refuses() -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    assert hub_offline({"HF_ENDPOINT": endpoint})
    with OpenAIServer() as server:
        assert not hub_offline({"HF_ENDPOINT": server.root_url})
        assert can_connect(server.root_url)


def test_http_server_problem_tells_a_listening_server_from_a_closed_port() -> None:
    with OpenAIServer() as server:
        assert http_server_problem(server.base_url, "server", "start it") is None
    closed = f"http://127.0.0.1:{_closed_port()}/v1"
    problem = http_server_problem(closed, "the OpenAI-compatible server", "start it")
    assert problem is not None and closed in problem.what and problem.fix == "start it"


def test_files_and_variables(tmp_path: Path) -> None:
    present = tmp_path / "seeds.jsonl"
    present.write_text("{}\n")
    assert file_problem(present, "seeds", "fix") is None
    missing = file_problem(tmp_path / "nope.jsonl", "seeds", "fix")
    assert missing is not None and "does not exist" in missing.what
    assert "is a folder" in file_problem(tmp_path, "seeds", "fix").what
    relative = file_problem("no/such/file.csv", "schema", "fix")
    assert "relative to the current folder" in relative.what
    assert env_problem({"K": "v"}, "K", "a key", "export K") is None
    unset = env_problem({"K": "  "}, "K", "a key", "export K")
    assert unset == Problem("K is not set (a key)", "export K")


def test_hf_model_problem_for_folders_and_hub_names(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    lacking = hf_model_problem(str(folder), "LLM", "fix", offline=True)
    assert lacking is not None and "weights" in lacking.what
    (folder / "model.safetensors").write_bytes(b"0")
    assert hf_model_problem(str(folder), "LLM", "fix", offline=True) is None
    assert "no folder" in hf_model_problem(str(tmp_path / "gone"), "LLM", "fix", offline=True).what
    # a hub name: fine when the hub answers (it downloads), a problem offline unless cached
    assert hf_model_problem("someone/not-cached-model", "LLM", "fix", offline=False) is None
    offline = hf_model_problem("someone/not-cached-model", "LLM", "fix", offline=True)
    assert offline is not None and "not in the local Hugging Face cache" in offline.what


def test_one_error_lists_every_problem_with_its_fix() -> None:
    problems = [Problem("the model is missing", "set INSTRUCT_GLOBAL_LLM_MODEL"), Problem("no key", "export K")]
    text = format_problems(problems, "dataset_job for partition yor")
    assert text.splitlines() == [
        "Preflight of dataset_job for partition yor: 2 problems; nothing was loaded or paid for.",
        "  1. the model is missing",
        "     Fix: set INSTRUCT_GLOBAL_LLM_MODEL",
        "  2. no key",
        "     Fix: export K",
    ]
    raise_if_problems([], "x")  # nothing missing: no error
    with pytest.raises(PreflightError) as caught:
        raise_if_problems(problems, "x")
    assert caught.value.problems == problems


def test_gguf_checks(tmp_path: Path) -> None:
    assert "there is no file" in gguf_problem(tmp_path / "m.gguf")
    (tmp_path / "inside.gguf").write_bytes(b"GGUF" + bytes(8))
    assert "is a folder" in gguf_problem(tmp_path) and "inside.gguf" in gguf_problem(tmp_path)
    not_gguf = tmp_path / "weights.gguf"
    not_gguf.write_bytes(b"PK\x03\x04 a zip")
    assert "not a GGUF file" in gguf_problem(not_gguf)
    assert gguf_problem(tmp_path / "inside.gguf") is None
    first = gguf_fingerprint(tmp_path / "inside.gguf")
    (tmp_path / "inside.gguf").write_bytes(b"GGUF" + bytes(7) + b"\x01")
    assert first.startswith("inside.gguf@12:") and gguf_fingerprint(tmp_path / "inside.gguf") != first


@pytest.mark.slow
def test_an_unreachable_hub_means_local_files_only_without_retries(tmp_path: Path) -> None:
    """No HF_HUB_OFFLINE, and a hub that refuses connections: the model loaders detect it and
    ask for local files only, so the load fails at once with its clear message instead of
    spending many seconds retrying downloads."""
    import os
    import subprocess
    import sys

    from instruct_global_tests.conftest import REPO_ROOT

    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(PYTHONPATH=str(REPO_ROOT), HF_ENDPOINT=f"http://127.0.0.1:{_closed_port()}", HF_HOME=str(tmp_path))
    script = (
        "import time; from instruct_global.resources.translation_nllb import NLLBTranslator, ModelNotAvailableError\n"
        "from instruct_global.resources.call_cache import CallCacheResource\n"
        "t = NLLBTranslator(cache=CallCacheResource(url='c.db'), model_name='facebook/nllb-200-distilled-600M')\n"
        "import transformers; transformers.AutoTokenizer  # imports are not the load\n"
        "start = time.perf_counter()\n"
        "try:\n    t.load()\nexcept ModelNotAvailableError as exc:\n    print('ERROR', exc)\n"
        "print('SECONDS', round(time.perf_counter() - start, 2))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    out = done.stdout
    assert "ERROR NLLB model 'facebook/nllb-200-distilled-600M' is not available locally" in out, done.stderr[-2000:]
    seconds = float(out.rsplit("SECONDS", 1)[1])
    assert seconds < 5, out
    assert "Retrying" not in done.stderr
