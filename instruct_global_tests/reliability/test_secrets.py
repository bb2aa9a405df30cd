"""No key ever leaks: runs with a sentinel key for every provider, one that succeeds and one that
fails on 401 answers that echo the key back, then every place a run writes is searched for the
sentinels: the instance (event log, run storage, captured compute logs), the data dir (parquet
outputs and their metadata, the call cache DB, review sheets, dataset card) and what the run
printed. Exception texts of each provider's error path are searched too."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import traceback
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from instruct_global_tests.conftest import REPO_ROOT
from instruct_global_tests.fixtures.anthropic_server import AnthropicServer
from instruct_global_tests.fixtures.curate_llm import CurateResponder
from instruct_global_tests.fixtures.fake_api_server import Fault
from instruct_global_tests.fixtures.openai_server import OpenAIServer

DAGSTER = str(Path(sys.executable).with_name("dagster"))


def _sentinel(name: str) -> str:
    # no provider's key shape (sk-..., AIza...): only knowing the secret can mask it, not a pattern
    return f"SENTINEL{name.upper()}{secrets.token_hex(12)}"


SENTINELS = {
    name: _sentinel(name)
    for name in ("openai", "anthropic", "generic", "judge", "google", "labelstudio", "hf")
}


def sentinel_env(tmp_path: Path) -> dict[str, str]:
    """Every provider's secret set to a sentinel (the Google one inside a credentials file)."""
    credentials = tmp_path / "google-credentials.json"
    credentials.write_text(json.dumps({
        "type": "authorized_user", "client_id": "instruct-global-test.apps.googleusercontent.com",
        "client_secret": SENTINELS["google"] + "-secret", "refresh_token": SENTINELS["google"],
        "token_uri": "http://127.0.0.1:9/token",
    }))  # fmt: skip
    return {
        "OPENAI_API_KEY": SENTINELS["openai"],
        "ANTHROPIC_API_KEY": SENTINELS["anthropic"],
        "INSTRUCT_GLOBAL_LLM_API_KEY": SENTINELS["generic"],
        "INSTRUCT_GLOBAL_JUDGE_LLM_API_KEY": SENTINELS["judge"],
        "GOOGLE_APPLICATION_CREDENTIALS": str(credentials),
        "GOOGLE_CLOUD_PROJECT": "instruct-global-test",  # an id, not a secret
        "LABEL_STUDIO_URL": "http://127.0.0.1:9",
        "LABEL_STUDIO_API_KEY": SENTINELS["labelstudio"],
        "HF_TOKEN": SENTINELS["hf"],
    }


def readable_bytes(path: Path) -> bytes:
    """The file's bytes plus what compression hides: zip members (XLSX) and parquet cell values."""
    data = path.read_bytes()
    if data.startswith(b"PK\x03\x04"):
        with zipfile.ZipFile(path) as archive:
            data += b"".join(archive.read(name) for name in archive.namelist())
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        data += json.dumps(table.to_pylist(), default=str, ensure_ascii=False).encode()
        data += json.dumps({str(k): str(v) for k, v in (table.schema.metadata or {}).items()}).encode()
    return data


def leaks_in_files(*roots: Path) -> dict[str, list[str]]:
    """sentinel name -> files (under the roots) whose bytes hold it; the credentials file is exempt."""
    found: dict[str, list[str]] = {}
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            if path.name == "google-credentials.json":
                continue
            data = readable_bytes(path)
            for name, value in SENTINELS.items():
                if value.encode() in data or value.encode("utf-16-le") in data:
                    found.setdefault(name, []).append(str(path.relative_to(root)))
    return found


def leaks_in_text(text: str) -> list[str]:
    return [name for name, value in SENTINELS.items() if value in text]


def _anthropic_responder(curate: CurateResponder):
    """The curate script over Anthropic's body: system apart, content as blocks or text."""

    def respond(params: dict) -> object:
        def text(content: object) -> str:
            if isinstance(content, str):
                return content
            return "\n".join(b.get("text", "") for b in content or [] if isinstance(b, dict))

        system = text(params.get("system"))
        messages = [{"role": "system", "content": system}] if system else []
        messages += [{"role": m["role"], "content": text(m.get("content"))} for m in params.get("messages", [])]
        return curate({"messages": messages})

    return respond


def _run_config(tmp_path: Path) -> Path:
    config = yaml.safe_load((REPO_ROOT / "instruct_global" / "configs" / "sample_run.yaml").read_text())
    config["ops"].update({
        "backtranslated_pairs": {"config": {"min_tokens": 8, "max_per_document": 2}},
        "instruction_dataset": {"config": {"allowed_licenses": ["CC-BY-SA-4.0", "BBC-copyright", "unspecified"]}},
    })  # fmt: skip
    config["execution"] = {"config": {"in_process": {}}}  # one process: torch loads once
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _execute(tmp_path: Path, home: Path, data: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text((REPO_ROOT / "dagster.yaml").read_text())
    full_env = {**os.environ, "DAGSTER_HOME": str(home), "INSTRUCT_GLOBAL_DATA_DIR": str(data),
                "PYTHONPATH": str(REPO_ROOT), "INSTRUCT_GLOBAL_MODEL_CACHE": str(tmp_path / "models"), **env}
    return subprocess.run(
        [DAGSTER, "job", "execute", "-m", "instruct_global.definitions", "-j", "curate_job",
         "-c", str(_run_config(tmp_path)), "--tags", '{"dagster/partition": "yor"}'],
        cwd=REPO_ROOT, env=full_env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def record_keys(server: AnthropicServer | OpenAIServer) -> set[str]:
    """The keys callers sent (Authorization: Bearer or x-api-key), as the server saw them."""
    seen: set[str] = set()
    handle = server._handle

    def recording(handler, method, path, body):  # type: ignore[no-untyped-def]
        seen.add(server.caller_key(handler))
        return handle(handler, method, path, body)

    server._handle = recording  # type: ignore[method-assign]
    return seen


@pytest.fixture
def servers() -> Iterator[tuple[AnthropicServer, OpenAIServer]]:
    with AnthropicServer() as generator, OpenAIServer() as judge:
        generator.responder = _anthropic_responder(CurateResponder())
        judge.responder = CurateResponder()
        yield generator, judge


@pytest.mark.reliability
def test_runs_with_sentinel_keys_leak_nothing(tmp_path: Path, servers) -> None:
    generator, judge = servers
    generator_keys, judge_keys = record_keys(generator), record_keys(judge)
    env = {
        **sentinel_env(tmp_path),
        "INSTRUCT_GLOBAL_LLM": "anthropic", "INSTRUCT_GLOBAL_LLM_MODEL": "claude-haiku-4-5",
        "INSTRUCT_GLOBAL_LLM_BASE_URL": generator.root_url,
        "INSTRUCT_GLOBAL_JUDGE_LLM": "openai-compatible", "INSTRUCT_GLOBAL_JUDGE_LLM_MODEL": "judge-model",
        "INSTRUCT_GLOBAL_JUDGE_LLM_BASE_URL": judge.base_url,
        "INSTRUCT_GLOBAL_TRANSLATOR": "google",
    }  # fmt: skip
    home, data = tmp_path / "home", tmp_path / "data"
    ok = _execute(tmp_path, home, data, env)
    assert ok.returncode == 0, ok.stdout[-3000:] + ok.stderr[-3000:]
    assert generator.counts["messages"] > 0 and judge.counts["chat"] > 0
    # the servers saw the sentinel keys: the run really used them
    # (a reachability probe before the first call carries no key)
    assert generator_keys - {""} == {SENTINELS["anthropic"]} and judge_keys - {""} == {SENTINELS["judge"]}
    assert (data / "instruction_dataset" / "yor.card.md").exists()

    # the same job again on a fresh instance and data dir, every provider answering 401 with the key
    # echoed in the error body (as a careless proxy does): every call fails, so the step fails (it
    # must not succeed with nothing), and its error text, the logs and the event log are searched too
    generator.fail_next(Fault.unauthorized(), times=10_000)
    judge.fail_next(Fault.unauthorized(), times=10_000)
    before = generator.counts["messages"]
    failed = _execute(tmp_path, tmp_path / "home_failed", tmp_path / "data_failed", env)
    failed_out = failed.stdout + failed.stderr
    assert generator.counts["messages"] > before  # the 401s were answered ...
    assert failed.returncode != 0 and "every one of the" in failed_out  # ... and the step failed on them
    # the echoed key sat in every 401 body; the leak search below covers what the failed run wrote and printed

    leaks = leaks_in_files(home, data, tmp_path / "home_failed", tmp_path / "data_failed")
    leaks_out = leaks_in_text(ok.stdout + ok.stderr + failed.stdout + failed.stderr)
    print(f"\nsecrets: {len(SENTINELS)} sentinels; files searched: "
          f"{sum(1 for r in (home, data, tmp_path / 'home_failed', tmp_path / 'data_failed') for p in r.rglob('*') if p.is_file())}"
          f"; leaks in files {leaks}; leaks in output {leaks_out}")
    assert leaks == {} and leaks_out == []


# --- each provider's error path, in process: what a raised or returned error says ----------------------

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402

from dagster import build_resources, build_sensor_context  # noqa: E402

from instruct_global.lib.common.llm_types import ChatRequest  # noqa: E402
from instruct_global.resources.selection import select_resources  # noqa: E402
from instruct_global_tests.fixtures.local_server import LocalHTTPServer  # noqa: E402


class EchoingDenyServer(LocalHTTPServer):
    """Answers every request 401, echoing the Authorization/x-api-key headers and the body back, as a
    careless proxy or a debug endpoint does."""

    def _build_httpd(self) -> ThreadingHTTPServer:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _deny(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
                seen = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "x-api-key")}
                message = f"invalid credentials: {seen} for {body}"
                # the error shape Google, OpenAI and Label Studio clients all read
                payload = json.dumps({"error": {"code": 401, "message": message, "status": "UNAUTHENTICATED"},
                                      "detail": message}).encode()  # fmt: skip
                self.send_response(401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _deny

        return ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _all_text(exc: BaseException) -> str:
    """The exception as Dagster stores a failure: the message and the whole chain's traceback."""
    return "".join(traceback.format_exception(exc))


def _llm_env(tmp_path: Path, backend: str, server_url: str) -> dict[str, str]:
    env = {**sentinel_env(tmp_path), "INSTRUCT_GLOBAL_DATA_DIR": str(tmp_path / "data"),
           "INSTRUCT_GLOBAL_LLM": backend, "INSTRUCT_GLOBAL_LLM_MODEL": "m", "INSTRUCT_GLOBAL_LLM_BASE_URL": server_url,
           "INSTRUCT_GLOBAL_LLM_MAX_RETRIES": "0"}  # fmt: skip
    if backend == "openai":
        env["OPENAI_BASE_URL"] = server_url  # the SDK's own variable: OpenAIChatLLM has no URL of its own
    return env


@pytest.mark.parametrize("backend", ["openai", "openai-compatible", "anthropic", "judge"])
@pytest.mark.parametrize("fault", ["unauthorized", "insufficient_quota", "echo_server"])
def test_llm_error_paths_leak_nothing(backend: str, fault: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    server_class = AnthropicServer if backend == "anthropic" else OpenAIServer
    with server_class() as server, EchoingDenyServer() as echo:
        url = echo.url + ("/v1" if backend != "anthropic" else "") if fault == "echo_server" else (
            server.root_url if backend == "anthropic" else server.base_url)  # fmt: skip
        env = _llm_env(tmp_path, "openai-compatible" if backend == "judge" else backend, url)
        if backend == "judge":
            env.update({"INSTRUCT_GLOBAL_LLM": "openai-compatible", "INSTRUCT_GLOBAL_JUDGE_LLM": "openai-compatible",
                        "INSTRUCT_GLOBAL_JUDGE_LLM_MODEL": "j", "INSTRUCT_GLOBAL_JUDGE_LLM_BASE_URL": url})  # fmt: skip
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        if fault != "echo_server":
            server.fail_next(getattr(Fault, fault)(), times=50)
        name = "judge_llm" if backend == "judge" else "llm"
        request = ChatRequest.from_prompt("Kí ni olú-ìlú Nàìjíríà?", max_tokens=8)
        errors: list[str] = []
        with caplog.at_level("DEBUG"), build_resources(select_resources(os.environ)) as resources:
            llm = getattr(resources, name)
            try:
                results = llm.complete([request])
                errors += [r.error or "" for r in results]
                assert all(r.error for r in results)  # the error path was taken
            except Exception as exc:  # a raised error is searched the same way
                errors.append(_all_text(exc))
        seen = " ".join(errors) + caplog.text
        assert "401" in seen or "429" in seen or "quota" in seen.lower()
        assert leaks_in_text(seen) == [], seen
        assert leaks_in_files(tmp_path / "data") == {}


def _service_account_file(path: Path, token_uri: str) -> tuple[str, list[str]]:
    """A real service-account key file (fresh RSA key) whose token endpoint is ``token_uri``; returns
    the path and the strings that must never appear: the key id and every line of the private key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()  # fmt: skip
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "instruct-global-test", "private_key_id": SENTINELS["google"],
        "private_key": pem, "client_email": "tests@instruct-global-test.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": token_uri,
    }))  # fmt: skip
    return str(path), [SENTINELS["google"], *(line for line in pem.splitlines()[1:-1] if len(line) > 20)]


def test_google_credentials_never_reach_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The API denies the request and echoes its Authorization header back (the client library signs a
    JWT with the key, carrying the key id): the translation error says why, without the JWT or any part
    of the key."""
    from instruct_global.resources.call_cache import CallCacheResource
    from instruct_global.resources.translation_google import GoogleTranslator

    with EchoingDenyServer() as echo:
        path, secret_parts = _service_account_file(tmp_path / "google-credentials.json", echo.url + "/token")
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", path)
        monkeypatch.setenv("INSTRUCT_GLOBAL_DATA_DIR", str(tmp_path / "data"))
        translator = GoogleTranslator(cache=CallCacheResource(url=str(tmp_path / "calls.sqlite")),
                                      project_id="instruct-global-test", api_endpoint=echo.url,
                                      max_retries=0, timeout_s=5.0)  # fmt: skip
        try:
            results = translator.translate(["Good morning."], target="yor")
            text = " ".join(r.error or "" for r in results)
            assert all(r.error for r in results)
        except Exception as exc:
            text = _all_text(exc)
    assert "401" in text and "invalid credentials" in text, text  # denied by the echoing server
    assert [part for part in secret_parts if part in text] == [], text
    assert "eyJ" not in text, text  # the signed assertion (JWT) is masked


def test_label_studio_errors_hide_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from instruct_global.lib.translate.review_paths import review_paths
    from instruct_global.resources.label_studio import LabelStudioResource
    from instruct_global.sensors import label_studio_sensor

    monkeypatch.setenv("INSTRUCT_GLOBAL_DATA_DIR", str(tmp_path / "data"))
    with EchoingDenyServer() as echo:
        resource = LabelStudioResource(url=echo.url, api_key=SENTINELS["labelstudio"], timeout_s=5.0)
        outbox = review_paths(tmp_path / "data", "yor").outbox_csv
        outbox.parent.mkdir(parents=True)
        outbox.write_text("id,lang\nx,yor\n")
        try:
            label_studio_sensor(build_sensor_context(resources={"label_studio": resource}))
            text = ""
        except Exception as exc:
            text = _all_text(exc)
    assert "401" in text, text  # the server was reached and refused
    assert leaks_in_text(text) == [], text


def test_hub_push_error_hides_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd

    from instruct_global.lib.export import writers

    token = SENTINELS["hf"]

    def refusing_dataset_dict(frame: pd.DataFrame):  # the hub's 401 as huggingface_hub raises it
        class Refusing:
            def push_to_hub(self, repo_id: str, token: str, private: bool) -> None:
                raise PermissionError(f"401 Client Error: Unauthorized for url https://hub/{repo_id} (token {token})")
        return Refusing()

    monkeypatch.setattr(writers, "build_dataset_dict", refusing_dataset_dict)
    with pytest.raises(writers.PushToHubError) as caught:
        writers.push_to_hub(pd.DataFrame({"a": [1]}), "org/ds", token, "card")
    assert "401" in str(caught.value) and leaks_in_text(_all_text(caught.value)) == []


def test_the_search_finds_a_key_inside_compressed_files(tmp_path: Path) -> None:
    """The scanner itself: a key inside an XLSX (deflated) or a parquet file (compressed) is found."""
    import openpyxl

    book = openpyxl.Workbook()
    book.active["A1"] = f"note: {SENTINELS['hf']}"
    book.save(tmp_path / "sheet.xlsx")
    pd.DataFrame({"error": [f"401 for key {SENTINELS['openai']}"] * 50}).to_parquet(
        tmp_path / "rejects.parquet", compression="zstd")
    (tmp_path / "clean.txt").write_text("nothing here")
    assert leaks_in_files(tmp_path) == {"hf": ["sheet.xlsx"], "openai": ["rejects.parquet"]}
