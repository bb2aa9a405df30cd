"""GoogleTranslator through the real google-cloud-translate SDK (REST) against a local fake server."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from instruct_global.languages import UnsupportedLanguageError, get_language
from instruct_global.resources.call_cache import CallCacheResource
from instruct_global.resources.translation import TranslatorResource
from instruct_global.resources.translation_google import GoogleTranslator, redact_secrets
from instruct_global_tests.fixtures.google_translate_server import Fault, GoogleTranslateServer

YOR = get_language("yor")


@pytest.fixture
def server() -> Iterator[GoogleTranslateServer]:
    with GoogleTranslateServer() as fake:
        yield fake


@pytest.fixture
def make_translator(server: GoogleTranslateServer, tmp_path: Path) -> Callable[..., GoogleTranslator]:
    def make(**overrides: Any) -> GoogleTranslator:
        settings: dict[str, Any] = {
            "project_id": "test-project",
            "api_endpoint": server.url,
            "anonymous_credentials_for_testing": True,
            "backoff_initial_s": 0.01,
            "backoff_max_s": 0.05,
            "timeout_s": 5.0,
            **overrides,
        }
        return GoogleTranslator(cache=CallCacheResource(url=str(tmp_path / "calls.db")), **settings)

    return make


def test_happy_path_keeps_layout_order_and_bills_characters(
    make_translator: Callable[..., GoogleTranslator], server: GoogleTranslateServer
) -> None:
    translator = make_translator()
    texts = ["Hello there. How are you?\n\nWrite about {variable_1}.", "", "  ", "Good morning!"]
    results = translator.translate(texts, target=YOR)

    assert [r.text for r in results] == [
        "[yo] Hello there. [yo] How are you?\n\n[yo] Write about {variable_1}.",
        "",
        "  ",
        "[yo] Good morning!",
    ]
    assert [r.n_segments for r in results] == [3, 0, 0, 1]
    [request] = server.translate_requests
    assert request.path == "/v3/projects/test-project/locations/global:translateText"
    assert request.body == {
        "contents": ["Hello there.", "How are you?", "Write about {variable_1}.", "Good morning!"],
        "mimeType": "text/plain",
        "sourceLanguageCode": "en",
        "targetLanguageCode": "yo",
    }
    stats = translator.stats()
    chars = sum(len(c) for c in request.contents)
    assert stats.characters == chars and stats.calls == 1
    assert stats.cost_usd == pytest.approx(chars * 20 / 1_000_000)


def test_segments_without_words_are_copied_not_sent(
    make_translator: Callable[..., GoogleTranslator], server: GoogleTranslateServer
) -> None:
    """MT models hallucinate on "---" or a lone sentinel; such segments never reach the backend."""
    translator = make_translator()
    texts = ["Steps:\n1.\n__V1__\n---\nDone.", "2 + 2 = 4", "{variable_1} {variable_2}?"]
    results = translator.translate(texts, target=YOR)
    assert [r.text for r in results] == [
        "[yo] Steps:\n1.\n__V1__\n---\n[yo] Done.", "2 + 2 = 4", "{variable_1} {variable_2}?"
    ]
    assert all(r.ok for r in results)
    [request] = server.translate_requests
    assert request.contents == ["Steps:", "Done."]


def test_source_language_model_and_price_are_configurable(
    make_translator: Callable[..., GoogleTranslator], server: GoogleTranslateServer
) -> None:
    translator = make_translator(
        model="general/translation-llm", location="us-central1", usd_per_million_chars=80.0
    )
    [result] = translator.translate(["Bawo ni?"], source="yor", target="hau")
    assert result.text == "[ha] Bawo ni?"
    [request] = server.translate_requests
    assert request.path == "/v3/projects/test-project/locations/us-central1:translateText"
    assert request.body["sourceLanguageCode"] == "yo"
    assert (
        request.body["model"] == "projects/test-project/locations/us-central1/models/general/translation-llm"
    )
    assert translator.stats().cost_usd == pytest.approx(len("Bawo ni?") * 80 / 1_000_000)


@pytest.mark.parametrize(
    ("settings", "segment", "n_texts", "max_segments", "max_codepoints"),
    [
        ({}, "Item number {i} is here.", 1500, 1024, 5_000),  # the codepoint budget binds
        ({"max_codepoints_per_request": 30_000}, "N{i}.", 2500, 1024, 30_000),  # the 1024-string limit binds
        ({"max_segments_per_request": 7, "concurrency": 3}, "Short {i}.", 50, 7, 5_000),
    ],
)
def test_requests_stay_within_limits_and_order_is_kept(
    make_translator: Callable[..., GoogleTranslator],
    server: GoogleTranslateServer,
    settings: dict[str, Any],
    segment: str,
    n_texts: int,
    max_segments: int,
    max_codepoints: int,
) -> None:
    texts = [segment.format(i=i) for i in range(n_texts)]
    results = make_translator(**settings).translate(texts, target=YOR)

    assert [r.text for r in results] == [f"[yo] {t}" for t in texts]
    requests = server.translate_requests
    assert all(r.answered_status == 200 for r in requests)  # the server enforces the real API limits too
    assert all(len(r.contents) <= max_segments for r in requests)
    assert all(sum(len(c) for c in r.contents) <= max_codepoints for r in requests)
    assert sum(len(r.contents) for r in requests) == n_texts
    assert len(requests) > 1
    if "max_codepoints_per_request" in settings:
        assert max(len(r.contents) for r in requests) == 1024


def test_limits_beyond_the_api_are_refused() -> None:
    cache = CallCacheResource(url="unused.db")
    with pytest.raises(Exception, match="max_segments_per_request"):
        GoogleTranslator(cache=cache, project_id="p", max_segments_per_request=2000)
    with pytest.raises(Exception, match="max_codepoints_per_request"):
        GoogleTranslator(cache=cache, project_id="p", max_codepoints_per_request=40_000)


@pytest.mark.parametrize(
    "fault",
    [
        Fault(status=429, times=2),
        Fault(status=500, times=2),
        Fault(status=503, times=2, retry_after_s=0.01),
        Fault(status=403, times=2, message="User Rate Limit Exceeded"),
    ],
    ids=["429", "500", "503", "403-rate-limit"],
)
def test_transient_errors_are_retried(
    make_translator: Callable[..., GoogleTranslator], server: GoogleTranslateServer, fault: Fault
) -> None:
    server.inject(fault)
    translator = make_translator()
    [result] = translator.translate(["Hello."], target=YOR)
    assert result.text == "[yo] Hello."
    assert [r.answered_status for r in server.translate_requests] == [fault.status, fault.status, 200]
    stats = translator.stats()
    assert stats.retries == 2 and stats.calls == 3 and stats.failures == 0
    assert stats.characters == len("Hello.")  # failed attempts are not billed


def test_timeout_is_retried(
    make_translator: Callable[..., GoogleTranslator], server: GoogleTranslateServer
) -> None:
    server.inject(Fault(delay_s=1.0))
    translator = make_translator(timeout_s=0.3)
    [result] = translator.translate(["Hello."], target=YOR)
    assert result.text == "[yo] Hello."
    assert translator.stats().retries == 1


def test_retries_are_bounded_and_failures_are_not_cached(
    make_translator: Callable[..., GoogleTranslator], server: GoogleTranslateServer
) -> None:
    server.inject(Fault(status=503, times=None, message="backend unavailable"))
    translator = make_translator(max_retries=2)
    [result] = translator.translate(["Hello. World."], target=YOR)
    assert result.text is None
    assert "503" in result.error and "backend unavailable" in result.error
    assert len(server.translate_requests) == 3
    assert translator.stats().failures == 2  # both segments of the text

    server.clear_faults()
    [retry] = make_translator().translate(["Hello. World."], target=YOR)
    assert retry.text == "[yo] Hello. [yo] World." and retry.cached_segments == 0


def test_invalid_argument_fails_the_request_without_retry(
    make_translator: Callable[..., GoogleTranslator], server: GoogleTranslateServer
) -> None:
    server.inject(
        Fault(status=400, times=None, message="Invalid text", match=lambda b: "BAD" in str(b["contents"]))
    )
    translator = make_translator(max_segments_per_request=1)
    results = translator.translate(["Good text.", "BAD text.", "Also good."], target=YOR)

    assert [r.text for r in results] == ["[yo] Good text.", None, "[yo] Also good."]
    assert "400" in results[1].error and "Invalid text" in results[1].error
    assert sum(1 for r in server.translate_requests if r.answered_status == 400) == 1  # no retry
    assert translator.stats().retries == 0 and translator.stats().failures == 1


@pytest.mark.parametrize(
    ("raw_body", "expected"),
    [
        ("{not json", "not valid TranslateTextResponse JSON"),
        ("<html><body>502 Bad Gateway</body></html>", "not valid TranslateTextResponse JSON"),
        ('{"translations": []}', "0 translations for 1 inputs"),
        ('{"translations": [{"translatedText": "  "}]}', "empty translation"),
    ],
)
def test_malformed_answers_fail_the_item_and_are_never_stored_as_translations(
    make_translator: Callable[..., GoogleTranslator],
    server: GoogleTranslateServer,
    raw_body: str,
    expected: str,
) -> None:
    server.inject(Fault(raw_body=raw_body, times=None))  # for good
    translator = make_translator()
    [result] = translator.translate(["Hello."], target=YOR)
    assert result.text is None and expected in result.error
    # a body that does not parse is retried (a proxy cut it short); a parsed but wrong answer is not
    unparsable = "JSON" in expected
    assert len(server.translate_requests) == (1 + translator.max_retries if unparsable else 1)
    server.clear_faults()
    assert make_translator().translate(["Hello."], target=YOR)[0].text == "[yo] Hello."  # nothing was cached


def test_a_body_cut_short_once_is_retried(
    make_translator: Callable[..., GoogleTranslator], server: GoogleTranslateServer
) -> None:
    server.inject(Fault(raw_body='{"translations": [{"translatedText": "[yo] Hel'))
    translator = make_translator()
    assert translator.translate(["Hello."], target=YOR)[0].text == "[yo] Hello."
    assert len(server.translate_requests) == 2 and translator.stats().retries == 1


def test_cache_makes_a_repeat_free(
    make_translator: Callable[..., GoogleTranslator], server: GoogleTranslateServer
) -> None:
    texts = ["One. Two.", "Two.", "Three."]
    first = make_translator().translate(texts, target=YOR)
    assert sum(len(r.contents) for r in server.translate_requests) == 3  # "Two." sent once

    rerun = make_translator()
    second = rerun.translate(texts, target=YOR)
    assert [r.text for r in second] == [r.text for r in first]
    assert [r.cached_segments for r in second] == [2, 1, 1]
    assert len(server.translate_requests) == 1
    stats = rerun.stats()
    assert stats.calls == 0 and stats.characters == 0 and stats.cost_usd == 0 and stats.cache_hits == 3

    make_translator().translate(["Three."], target="hau")  # a new target is a new entry
    assert len(server.translate_requests) == 2


def test_unsupported_language_names_language_and_backend(
    make_translator: Callable[..., GoogleTranslator],
) -> None:
    translator = make_translator()
    assert not translator.supports(get_language("pcm"))
    with pytest.raises(UnsupportedLanguageError, match=r"Nigerian Pidgin \(pcm\).*Google Cloud Translation"):
        translator.translate(["Hello."], target="pcm")


def _service_account_file(path: Path, token_uri: str) -> tuple[Path, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "test-project",
        "private_key_id": "0123456789abcdef",
        "private_key": pem,
        "client_email": "translator@test-project.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": token_uri,
    }
    path.write_text(json.dumps(info))
    return path, pem


def test_credentials_from_the_environment_never_reach_error_text(
    make_translator: Callable[..., GoogleTranslator],
    server: GoogleTranslateServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    creds, pem = _service_account_file(tmp_path / "sa.json", f"{server.url}/token")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(creds))
    translator = make_translator(anonymous_credentials_for_testing=False)

    [ok] = translator.translate(["Hello."], target=YOR)
    assert ok.text == "[yo] Hello."
    authorization = server.translate_requests[-1].header("Authorization")
    assert authorization and authorization.startswith("Bearer ")  # real credentials were sent

    # a hostile or buggy server echoes the credential back in its error message
    server.inject(Fault(status=400, echo_authorization=True, message="denied"))
    [failed] = translator.translate(["Goodbye."], target=YOR)
    token = server.translate_requests[-1].header("Authorization").split(" ", 1)[1]
    assert "denied" in failed.error and "[REDACTED]" in failed.error
    assert token not in failed.error and token[:20] not in failed.error
    assert "PRIVATE KEY" not in failed.error and pem[40:80] not in failed.error
    assert str(creds) not in repr(translator)


def test_redact_secrets() -> None:
    text = (
        "Authorization: Bearer abc.def-ghi token ya29.a0AfH6SM key=AIzaSyA1234567890abcdefghijk "
        '"client_secret": "s3cr3t" access_token=zzzz1234 -----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----'
    )
    cleaned = redact_secrets(text, ("my-known-secret",)) + redact_secrets(
        "x my-known-secret y", ("my-known-secret",)
    )
    for secret in (
        "abc.def-ghi",
        "ya29.a0AfH6SM",
        "AIzaSyA1234567890",
        "s3cr3t",
        "zzzz1234",
        "MIIE",
        "my-known-secret",
    ):
        assert secret not in cleaned


def test_asset_typed_with_the_base_class_runs_with_google(
    make_translator: Callable[..., GoogleTranslator],
    server: GoogleTranslateServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dagster import EnvVar, asset, materialize

    @asset
    def translated(translator: TranslatorResource) -> list[str | None]:
        return [r.text for r in translator.translate(["Hello. Bye."], target=YOR)]

    monkeypatch.setenv("TEST_GOOGLE_PROJECT", "env-project")
    resource = make_translator(project_id=EnvVar("TEST_GOOGLE_PROJECT"))
    result = materialize([translated], resources={"translator": resource})
    assert result.success
    assert result.output_for_node("translated") == ["[yo] Hello. [yo] Bye."]
    assert server.translate_requests[0].path.startswith("/v3/projects/env-project/")
