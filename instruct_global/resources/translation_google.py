"""Google Cloud Translation (Advanced, v3) ``translateText``.

Credentials come from Application Default Credentials, i.e. the standard
``GOOGLE_APPLICATION_CREDENTIALS`` variable (a service-account or authorized-user JSON file) or
the metadata server; this module never reads or logs them. Requests stay within the API's
limits: at most 1024 strings per request, total content recommended under 30,000 codepoints
(5,000 here by default, so a failed request is cheap to retry and
requests can run in parallel). Billing is per character sent.
"""

from __future__ import annotations

import queue
import random
import re
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, ClassVar, Literal

from pydantic import Field, PrivateAttr

from instruct_global.languages import Language
from instruct_global.lib.common.redact import redact
from instruct_global.lib.common.retry import TRANSIENT_STATUSES
from instruct_global.resources.translation import SegmentOutcome, TranslatorResource

API_MAX_SEGMENTS = 1024
API_MAX_CODEPOINTS = 30_000

# Google credential shapes beyond the shared ones in lib.redact (bearer tokens, API keys)
_GOOGLE_SECRET_PATTERNS = (
    re.compile(r"ya29\.[\w.-]+"),  # OAuth access tokens
    re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*"),  # JWTs (self-signed service-account credentials)
    re.compile(r"1//[\w.-]{20,}"),  # refresh tokens
    re.compile(r"-----BEGIN[^-]*PRIVATE KEY-----.*?(?:-----END[^-]*PRIVATE KEY-----|$)", re.S),
    re.compile(
        r"(?i)\b(refresh_token|id_token|client_secret|private_key)([\"']?\s*[:=]\s*[\"']?)[^\s\"'&,}]+"
    ),
)


def redact_secrets(text: str, known: tuple[str, ...] = ()) -> str:
    """``text`` with known secrets and anything shaped like a Google or generic credential masked."""
    return redact(text, known, extra_patterns=_GOOGLE_SECRET_PATTERNS)


class GoogleTranslator(TranslatorResource):
    """Google Cloud Translation v3 (``translate_v3.TranslationServiceClient``)."""

    backend_name: ClassVar[str] = "google-translate-v3"

    project_id: str = Field(description="Google Cloud project id or number (not a secret).")
    location: str = Field(default="global", description="'global', or a region such as 'us-central1'.")
    model: str | None = Field(
        default=None, description="e.g. 'general/nmt' (default NMT) or 'general/translation-llm'."
    )
    api_endpoint: str | None = Field(
        default=None, description="Override the API host, e.g. a regional endpoint or a local test server."
    )
    transport: Literal["rest", "grpc"] = "rest"
    anonymous_credentials_for_testing: bool = Field(
        default=False, description="Send no credentials: only for a local fake server."
    )
    timeout_s: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=5, ge=0, description="Retries of a request on 429/500/502/503/504.")
    backoff_initial_s: float = Field(default=1.0, ge=0)
    backoff_max_s: float = Field(default=30.0, ge=0)
    max_segments_per_request: int = Field(default=API_MAX_SEGMENTS, ge=1, le=API_MAX_SEGMENTS)
    max_codepoints_per_request: int = Field(default=5_000, ge=100, le=API_MAX_CODEPOINTS)
    concurrency: int = Field(default=4, ge=1, description="Requests in flight at once.")
    usd_per_million_chars: float = Field(default=20.0, ge=0)

    _idle_clients: queue.SimpleQueue = PrivateAttr(default_factory=queue.SimpleQueue)

    # ---- TranslatorResource hooks --------------------------------------------------------------
    def supports(self, lang: Language) -> bool:
        return lang.google_code is not None

    def _language_code(self, lang: Language) -> str:
        return lang.require("google_code", "Google Cloud Translation")

    def _english_code(self) -> str:
        return "en"

    def model_id(self) -> str:
        return self.model or "general/nmt"

    def cache_params(self) -> dict[str, Any]:
        return {"mime_type": "text/plain", "location": self.location}

    def _translate_uncached(
        self, segments: list[str], source_code: str, target_code: str
    ) -> Iterator[Mapping[int, SegmentOutcome]]:
        batches = self._pack(segments)
        if self.concurrency == 1 or len(batches) == 1:
            for batch in batches:
                yield self._translate_batch(batch, segments, source_code, target_code)
            return
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="google-translate") as pool:
            futures = [
                pool.submit(self._translate_batch, batch, segments, source_code, target_code)
                for batch in batches
            ]
            for future in as_completed(futures):
                yield future.result()

    # ---- requests ------------------------------------------------------------------------------
    def _pack(self, segments: list[str]) -> list[list[int]]:
        """Greedy batches, in order, within the segment and codepoint limits."""
        batches: list[list[int]] = []
        current: list[int] = []
        size = 0
        for i, text in enumerate(segments):
            n = len(text)  # Python str length is the codepoint count the API limits
            if current and (
                len(current) >= self.max_segments_per_request or size + n > self.max_codepoints_per_request
            ):
                batches.append(current)
                current, size = [], 0
            current.append(i)
            size += n
        if current:
            batches.append(current)
        return batches

    def _acquire_client(self) -> Any:
        # a client serves one request at a time (its HTTP session is not shared across threads);
        # idle clients are reused so credentials are not re-read and refreshed per request
        try:
            return self._idle_clients.get_nowait()
        except queue.Empty:
            pass
        from google.cloud import translate_v3

        kwargs: dict[str, Any] = {"transport": self.transport}
        if self.api_endpoint:
            kwargs["client_options"] = {"api_endpoint": self.api_endpoint}
        if self.anonymous_credentials_for_testing:
            from google.auth.credentials import AnonymousCredentials

            kwargs["credentials"] = AnonymousCredentials()
        return translate_v3.TranslationServiceClient(**kwargs)

    def _translate_batch(
        self, batch: list[int], segments: list[str], source_code: str, target_code: str
    ) -> dict[int, SegmentOutcome]:
        contents = [segments[i] for i in batch]
        parent = f"projects/{self.project_id}/locations/{self.location}"
        request: dict[str, Any] = {
            "parent": parent,
            "contents": contents,
            "mime_type": "text/plain",
            "source_language_code": source_code,
            "target_language_code": target_code,
        }
        if self.model:
            request["model"] = f"{parent}/models/{self.model}"
        client = self._acquire_client()
        try:
            response = self._call_with_retries(client, request)
        except Exception as exc:
            error = self._describe_error(exc, client)
            return {i: SegmentOutcome(error=error) for i in batch}
        finally:
            self._idle_clients.put(client)
        translations = list(response.translations)
        if len(translations) != len(contents):
            error = f"Google Translation answered {len(translations)} translations for {len(contents)} inputs"
            return {i: SegmentOutcome(error=error) for i in batch}
        chars = sum(len(c) for c in contents)
        self._call_stats.add(characters=chars, cost_usd=chars * self.usd_per_million_chars / 1_000_000)
        return {
            i: SegmentOutcome(text=t.translated_text) if t.translated_text.strip() else
            SegmentOutcome(error="Google Translation returned an empty translation")
            for i, t in zip(batch, translations, strict=True)
        }  # fmt: skip

    def _call_with_retries(self, client: Any, request: dict[str, Any]) -> Any:
        attempt = 0
        while True:
            self._call_stats.add(calls=1)
            try:
                # retry=None: the SDK must not retry behind our back (we count and bound retries)
                return client.translate_text(request=request, retry=None, timeout=self.timeout_s)
            except Exception as exc:
                if attempt >= self.max_retries or not _is_transient(exc):
                    raise
                attempt += 1
                self._call_stats.add(retries=1)
                time.sleep(self._backoff(attempt, exc))

    def _backoff(self, attempt: int, exc: BaseException) -> float:
        delay = min(self.backoff_max_s, self.backoff_initial_s * 2 ** (attempt - 1))
        delay *= random.uniform(0.5, 1.0)  # jitter: parallel workers do not retry in lockstep
        retry_after = _retry_after_s(exc)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.backoff_max_s))
        return delay

    def _describe_error(self, exc: BaseException, client: Any) -> str:
        """A short error for results and logs; any credential that leaked into it is removed."""
        from google.api_core import exceptions as gexc

        if isinstance(exc, gexc.GoogleAPICallError):
            code = getattr(exc.code, "value", exc.code)
            text = f"Google Translation error {code} {type(exc).__name__}: {exc.message}"
        elif type(exc).__name__ == "ParseError":
            text = "Google Translation sent a response that is not valid TranslateTextResponse JSON"
        else:
            text = f"Google Translation request failed: {type(exc).__name__}: {exc}"
        return redact_secrets(text, _known_secrets(client))[:500]


def _known_secrets(client: Any) -> tuple[str, ...]:
    credentials = getattr(getattr(client, "_transport", None), "_credentials", None)
    token = getattr(credentials, "token", None)
    return (token,) if isinstance(token, str) else ()


def _is_transient(exc: BaseException) -> bool:
    from google.api_core import exceptions as gexc

    if isinstance(exc, gexc.Forbidden):
        # Cloud Translation answers per-minute quota overruns with 403 "User Rate Limit Exceeded"
        return "rate limit exceeded" in str(exc.message).lower()
    if isinstance(exc, gexc.GoogleAPICallError):
        # by status, not by exception class: a gateway's 520/529 arrives as a bare GoogleAPICallError
        code = getattr(exc.code, "value", exc.code)
        return isinstance(code, int) and (code in TRANSIENT_STATUSES or code >= 500)
    if type(exc).__name__ == "ParseError":
        # a 200 whose body is not TranslateTextResponse JSON (cut short by a proxy): worth another try
        return True
    # the REST transport lets the HTTP library's errors through: connection refused or reset, timeouts,
    # and a body cut short mid-read (ChunkedEncodingError, also for a reset during the body)
    import requests

    return isinstance(
        exc,
        requests.ConnectionError | requests.Timeout | requests.exceptions.ChunkedEncodingError
        | requests.exceptions.ContentDecodingError,
    )  # fmt: skip


def _retry_after_s(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    try:
        return float(headers.get("Retry-After", ""))
    except ValueError:
        return None


__all__ = ["API_MAX_CODEPOINTS", "API_MAX_SEGMENTS", "GoogleTranslator", "redact_secrets"]
