"""Secrets never survive ``redact``."""

from __future__ import annotations

import pytest

from instruct_global.lib.common.redact import REDACTED, redact


def test_known_secret_is_masked_everywhere() -> None:
    key = "my-private-token-1234"
    out = redact(f"key={key} and again {key}", [key])
    assert key not in out
    assert out.count(REDACTED) == 2


@pytest.mark.parametrize(
    "text",
    [
        "Incorrect API key provided: sk-proj-abcdefghijklmnop1234.",
        "invalid x-api-key sk-ant-api03-AbCdEfGhIjKlMnOp-qrstu",
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig",
        'request failed: {"api_key": "abcd1234efgh"}',
        "https://translation.googleapis.com/?key=AIzaSyA1234567890abcdefghijklmnop",
    ],
)
def test_credential_shapes_are_masked(text: str) -> None:
    out = redact(text)
    assert REDACTED in out
    for secret in (
        "abcdefghijklmnop1234",
        "AbCdEfGhIjKlMnOp",
        "eyJhbGciOiJIUzI1NiJ9",
        "abcd1234efgh",
        "AIzaSyA123",
    ):
        assert secret not in out


def test_ordinary_text_is_untouched() -> None:
    text = "HTTP 429 rate_limit_exceeded: Rate limit reached for requests; task-specific risk-free"
    assert redact(text) == text


def test_empty_and_short_secrets_are_ignored() -> None:
    assert redact("abc", [None, "", "ab"]) == "abc"


def test_longer_secret_masked_whole() -> None:
    out = redact("token abcdef123456XYZ", ["abcdef", "abcdef123456XYZ"])
    assert "123456XYZ" not in out
