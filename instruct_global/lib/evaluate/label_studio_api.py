"""The few Label Studio REST calls a review or evaluation round needs, on httpx.

Why not ``label-studio-sdk``: it requires opencv-python-headless 4.12, which caps numpy below 2.3
while the rest of the project resolves to a newer numpy, so it cannot join our environment without
moving pins; these calls are a handful of documented endpoints (``/api/projects/``, ``/api/projects/{id}/import``,
``/api/tasks/``, ``/api/users/{id}/``).

Keys: a personal access token (a JWT refresh token, Label Studio's default since 1.17) is exchanged
at ``/api/token/refresh/`` for short-lived access tokens sent as ``Bearer``, refreshed when they run
out or are refused; any other key is a legacy token sent as ``Token`` (accepted only where the
organisation enables legacy tokens). A key never appears in an error message.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Generator, Mapping
from typing import Any

import httpx

from instruct_global.lib.common.redact import redact
from instruct_global.lib.common.retry import (
    CallError,
    RetryPolicy,
    backoff_delay,
    is_transient,
    parse_retry_after,
)
from instruct_global.lib.evaluate.label_studio import LABEL_CONFIGS, Annotation, latest_tasks, project_title

PAGE_SIZE = 100
# an access token this close to its expiry is refreshed before use (clocks differ a little)
EXPIRY_MARGIN_S = 30.0


class LabelStudioError(RuntimeError):
    """A Label Studio call that failed for good: names the server, the call and the answer, never the key."""


def jwt_claims(token: str) -> dict[str, Any] | None:
    """The claims of a JWT, unverified (the server verifies it), or None for anything else."""
    parts = token.strip().split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return None
    return claims if isinstance(claims, dict) else None


def key_kind(api_key: str) -> str:
    """``"refresh"`` (a personal access token), ``"access"`` (a JWT access token) or ``"legacy"``."""
    claims = jwt_claims(api_key)
    if claims is None:
        return "legacy"
    return "access" if claims.get("token_type") == "access" else "refresh"


class _LabelStudioAuth(httpx.Auth):
    """Adds the Authorization header; for personal access tokens, fetches and refreshes access tokens."""

    requires_response_body = True  # the refresh answer is read inside the flow

    def __init__(self, base_url: str, api_key: str) -> None:
        self._base_url = base_url
        self._key = api_key.strip()
        self._kind = key_kind(self._key)
        self._access = self._key if self._kind == "access" else ""
        self._expires_at = float((jwt_claims(self._key) or {}).get("exp") or 0) if self._kind == "access" else 0.0

    def _refresh_request(self) -> httpx.Request:
        return httpx.Request("POST", f"{self._base_url}/api/token/refresh/", json={"refresh": self._key})

    def _take_access(self, response: httpx.Response) -> None:
        access = ""
        if response.status_code == 200:
            try:
                access = str(response.json().get("access") or "")
            except (ValueError, AttributeError):
                access = ""
        if not access:
            raise LabelStudioError(
                f"Label Studio at {self._base_url} refused the personal access token (HTTP "
                f"{response.status_code} from /api/token/refresh/): it was revoked or has expired, or the "
                "organisation disabled personal access tokens; create a new one under Account & Settings "
                "and set it as LABEL_STUDIO_API_KEY"
            )
        self._access = access
        self._expires_at = float((jwt_claims(access) or {}).get("exp") or 0)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._kind == "legacy":
            request.headers["Authorization"] = f"Token {self._key}"
            yield request
            return
        if self._kind == "refresh" and (not self._access or time.time() > self._expires_at - EXPIRY_MARGIN_S):
            self._take_access((yield self._refresh_request()))
        request.headers["Authorization"] = f"Bearer {self._access}"
        response = yield request
        if response.status_code == 401 and self._kind == "refresh":  # revoked or expired early: once more
            self._take_access((yield self._refresh_request()))
            request.headers["Authorization"] = f"Bearer {self._access}"
            yield request


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase or "no detail"
    if isinstance(body, Mapping):
        detail = str(body.get("detail") or body.get("message") or "")
        if body.get("validation_errors"):
            detail += f" {json.dumps(body['validation_errors'], ensure_ascii=False)[:500]}"
        return detail.strip() or "no detail"
    return str(body)[:300]


class LabelStudioClient:
    """Projects per round and language, tasks imported once per ``task_key``, submitted annotations."""

    def __init__(
        self,
        url: str,
        api_key: str,
        timeout_s: float = 30.0,
        policy: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not url.strip():
            raise LabelStudioError("LABEL_STUDIO_URL is empty: set it to the server, e.g. http://127.0.0.1:8080")
        if not api_key.strip():
            raise LabelStudioError("LABEL_STUDIO_API_KEY is empty: set it to a personal access token")
        self.url = url.strip().rstrip("/")
        self._policy = policy or RetryPolicy(max_retries=3, backoff_base_seconds=0.5, max_backoff_seconds=8.0)
        self._auth = _LabelStudioAuth(self.url, api_key)
        self._http = httpx.Client(base_url=self.url, auth=self._auth, timeout=timeout_s,
                                  transport=transport, headers={"Accept": "application/json"})  # fmt: skip
        self._users: dict[int, str] = {}

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LabelStudioClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- one call, with retries where repeating it is safe --------------------------------------

    def _call(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None,
              allow_404: bool = False) -> Any:  # fmt: skip
        for attempt in range(self._policy.max_retries + 1):
            try:
                response = self._http.request(method, path, params=params, json=body)
            except httpx.TransportError as err:
                kind = "timeout" if isinstance(err, httpx.TimeoutException) else "connection"
                error = CallError(kind, type(err).__name__)
                # a POST that timed out may have been carried out: only a refused connection is safe to repeat
                repeatable = method == "GET" or isinstance(err, httpx.ConnectError)
            else:
                if response.is_success:
                    return response.json() if response.content else None
                if allow_404 and response.status_code == 404:
                    return None
                error = CallError("status", _detail(response), status=response.status_code,
                                  retry_after=parse_retry_after(response.headers))  # fmt: skip
                repeatable = method == "GET" or response.status_code in (429, 503)
            if not (repeatable and is_transient(error)) or attempt == self._policy.max_retries:
                raise LabelStudioError(self._failure(method, path, error)) from None
            time.sleep(backoff_delay(attempt, self._policy, error.retry_after))
        raise AssertionError("unreachable")

    def _failure(self, method: str, path: str, error: CallError) -> str:
        # a server (or a proxy in debug mode) may echo the request headers: the key and token are masked
        described = redact(error.describe(), [self._auth._key, self._auth._access])
        message = f"Label Studio at {self.url}: {method} {path} failed: {described}"
        if error.status in (401, 403):
            message += (" (check LABEL_STUDIO_API_KEY: a personal access token, or a legacy token where the "
                        "organisation enables legacy tokens)")  # fmt: skip
        elif error.kind == "connection":
            message += " (is the server running and LABEL_STUDIO_URL right?)"
        return message

    # --- projects, tasks, annotations ------------------------------------------------------------

    def ensure_project(self, round_name: str, kind: str, lang: str) -> int:
        """The project of this round and language, created with the round's labeling config if missing."""
        title = project_title(round_name, lang)
        page = 1
        while True:
            found = self._call("GET", "/api/projects/", params={"title": title, "page": page,
                                                                "page_size": PAGE_SIZE}, allow_404=True)  # fmt: skip
            results = (found or {}).get("results", []) if isinstance(found, Mapping) else (found or [])
            for project in results:
                if project.get("title") == title:
                    return int(project["id"])
            if not isinstance(found, Mapping) or not found.get("next"):
                break
            page += 1
        created = self._call("POST", "/api/projects/", body={"title": title, "label_config": LABEL_CONFIGS[kind]})
        return int(created["id"])

    def tasks(self, project_id: int) -> list[dict[str, Any]]:
        """Every task of the project with its data and annotations (pages of ``PAGE_SIZE``)."""
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            answer = self._call("GET", "/api/tasks/", params={"project": project_id, "fields": "all", "page": page,
                                                              "page_size": PAGE_SIZE}, allow_404=True)  # fmt: skip
            if answer is None:  # past the last page ("Invalid page.")
                break
            batch = answer.get("tasks", []) if isinstance(answer, Mapping) else answer
            found += batch
            total = answer.get("total") if isinstance(answer, Mapping) else None
            if not batch or len(batch) < PAGE_SIZE or (total is not None and len(found) >= int(total)):
                break
            page += 1
        return found

    def import_new(self, project_id: int, tasks: list[dict[str, str]]) -> int:
        """Import tasks whose ``task_key`` is not in the project yet; returns how many."""
        known = {(t.get("data") or {}).get("task_key") for t in self.tasks(project_id)}
        new = [t for t in tasks if t["task_key"] not in known]
        if new:
            answer = self._call("POST", f"/api/projects/{project_id}/import", params={"return_task_ids": "true"},
                                body=[{"data": t} for t in new])  # fmt: skip
            imported = int((answer or {}).get("task_count", len(new)))
            if imported != len(new):
                raise LabelStudioError(f"Label Studio at {self.url}: project {project_id} imported {imported} "
                                       f"of {len(new)} task(s)")  # fmt: skip
        return len(new)

    def _reviewer(self, user_id: Any) -> str:
        if user_id is None:
            return "label-studio-unknown"
        uid = int(user_id["id"] if isinstance(user_id, Mapping) else user_id)
        if uid not in self._users:
            user = self._call("GET", f"/api/users/{uid}/", allow_404=True) or {}
            self._users[uid] = str(user.get("email") or user.get("username") or f"label-studio-user-{uid}")
        return self._users[uid]

    def annotations(self, project_id: int) -> list[Annotation]:
        """Submitted (not skipped) annotations of each row's current task, the annotator's e-mail as reviewer.

        A row whose content changed was imported again under a new ``task_key``; its older tasks are
        superseded and their annotations (on text the pipeline no longer has) are left out.
        """
        found = []
        for task in latest_tasks(self.tasks(project_id)):
            for item in task.get("annotations") or []:
                if item.get("was_cancelled") or not item.get("result"):
                    continue
                found.append(Annotation(dict(task.get("data") or {}), self._reviewer(item.get("completed_by")),
                                        list(item["result"]), str(item.get("updated_at") or ""),
                                        int(task.get("id") or 0)))  # fmt: skip
        return found
