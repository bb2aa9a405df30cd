"""Hosted fine-tuning on OpenAI: upload, create the job with ``method``, poll, collect events and checkpoints.

The job id is stored in the call cache's state table the moment the job exists, under a name
made of the model, the hyperparameters and the hashes of the files; a re-run with the same data
finds it and resumes polling instead of paying for a second job. A platform that refuses (closed
to new users, no access, quota) fails with the provider's own message, secrets removed.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instruct_global.lib.common.redact import redact
from instruct_global.lib.common.retry import CallError, RetryPolicy, backoff_delay, is_transient

TERMINAL = ("succeeded", "failed", "cancelled")


class HostedFineTuningError(RuntimeError):
    pass


class StateStore:
    """What the flow needs of the call cache: named job state."""

    def __init__(
        self, get: Callable[[str], dict[str, Any] | None], put: Callable[[str, Mapping[str, Any]], None]
    ):
        self.get, self.put = get, put


@dataclass
class HostedResult:
    job_id: str
    status: str
    fine_tuned_model: str
    trained_tokens: int | None
    resumed: bool
    events: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    result_files: list[str] = field(default_factory=list)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def state_name(
    model: str, method: Mapping[str, Any], train_sha: str, validation_sha: str, suffix: str
) -> str:
    material = json.dumps([model, method, train_sha, validation_sha, suffix], sort_keys=True)
    return "openai_finetune:" + hashlib.sha256(material.encode()).hexdigest()[:24]


def supervised_method(
    n_epochs: int | str = "auto",
    batch_size: int | str = "auto",
    learning_rate_multiplier: float | str = "auto",
) -> dict[str, Any]:
    return {
        "type": "supervised",
        "supervised": {
            "hyperparameters": {
                "n_epochs": n_epochs,
                "batch_size": batch_size,
                "learning_rate_multiplier": learning_rate_multiplier,
            }
        },
    }


def _provider_error(what: str, exc: Exception, secrets: list[str]) -> HostedFineTuningError:
    message = getattr(exc, "message", None) or str(exc)
    status = getattr(exc, "status_code", None)
    where = f" (HTTP {status})" if status else ""
    return HostedFineTuningError(f"OpenAI fine-tuning: {what} failed{where}: {redact(message, secrets)}")


def run_hosted_finetune(
    client: Any,
    store: StateStore,
    *,
    model: str,
    train_path: Path,
    validation_path: Path | None,
    method: Mapping[str, Any],
    suffix: str = "",
    seed: int | None = 42,
    poll_interval_s: float = 30.0,
    timeout_s: float = 24 * 3600.0,
    secrets: list[str] | None = None,
    log: Callable[[str], None] = lambda _m: None,
) -> HostedResult:
    secrets = secrets or []
    val_sha = file_sha256(validation_path) if validation_path else ""
    name = state_name(model, method, file_sha256(train_path), val_sha, suffix)
    state = dict(store.get(name) or {})
    resumed = bool(state.get("job_id"))
    try:
        if not resumed:
            if not state.get("training_file"):
                with train_path.open("rb") as handle:
                    state["training_file"] = client.files.create(file=handle, purpose="fine-tune").id
                if validation_path:
                    with validation_path.open("rb") as handle:
                        state["validation_file"] = client.files.create(file=handle, purpose="fine-tune").id
                store.put(name, state)
            kwargs: dict[str, Any] = {
                "model": model,
                "training_file": state["training_file"],
                "method": dict(method),
            }
            if state.get("validation_file"):
                kwargs["validation_file"] = state["validation_file"]
            if suffix:
                kwargs["suffix"] = suffix
            if seed is not None:
                kwargs["seed"] = seed
            job = create_job_once(client, kwargs, log=log)
            state["job_id"] = job.id
            store.put(name, state)  # before anything else can fail: a re-run resumes this job
            log(f"created fine-tuning job {job.id}")
        else:
            log(f"resuming fine-tuning job {state['job_id']}")
        job = _poll(client, state["job_id"], poll_interval_s, timeout_s, log)
        events = [e.model_dump() for e in client.fine_tuning.jobs.list_events(job.id, limit=100)]
        checkpoints = [c.model_dump() for c in client.fine_tuning.jobs.checkpoints.list(job.id, limit=100)]
    except HostedFineTuningError:
        raise
    except Exception as exc:
        if type(exc).__module__.startswith("openai"):
            raise _provider_error("the request", exc, secrets) from None
        raise
    if job.status != "succeeded":
        error = getattr(job, "error", None)
        message = getattr(error, "message", None) or f"the job ended as {job.status}"
        raise HostedFineTuningError(
            f"OpenAI fine-tuning job {job.id} {job.status}: {redact(message, secrets)}"
        )
    return HostedResult(
        job_id=job.id,
        status=job.status,
        fine_tuned_model=job.fine_tuned_model or "",
        trained_tokens=job.trained_tokens,
        resumed=resumed,
        events=events,
        checkpoints=checkpoints,
        result_files=list(job.result_files or []),
    )


def _is_transient_sdk_error(exc: BaseException) -> bool:
    name = type(exc).__name__
    if "Timeout" in name or "Connection" in name:  # openai.APITimeoutError, APIConnectionError
        return True
    status = getattr(exc, "status_code", None)
    code = getattr(exc, "code", None)
    return isinstance(status, int) and is_transient(CallError("status", "", status=status, code=code))


def _job_made_from(client: Any, kwargs: Mapping[str, Any]) -> Any:
    """The newest job made from this training file (and suffix), if the provider already has one."""
    try:
        page = client.with_options(max_retries=0).fine_tuning.jobs.list(limit=20)
    except Exception:  # cannot tell: the next try creates, as it would have before
        return None
    for job in page.data:
        if job.training_file == kwargs["training_file"] and job.model.startswith(kwargs["model"]) and (
            not kwargs.get("suffix") or getattr(job, "suffix", None) in (None, kwargs["suffix"])
        ):
            return job
    return None


def create_job_once(
    client: Any,
    kwargs: Mapping[str, Any],
    *,
    retries: int = 4,
    policy: RetryPolicy | None = None,
    log: Callable[[str], None] = lambda _m: None,
) -> Any:
    """``fine_tuning.jobs.create`` that never pays for two jobs.

    The SDK's own retries are off here: OpenAI sends no idempotency key, so an SDK retry after a timeout
    or a reset mid-answer creates a second job when the first request did reach the provider. Before
    each of our retries the newest jobs are listed and one made from the same training file is taken.
    """
    policy = policy or RetryPolicy(backoff_base_seconds=1.0, max_backoff_seconds=30.0)
    attempt = 0
    while True:
        if attempt:
            existing = _job_made_from(client, kwargs)
            if existing is not None:
                log(f"the failed create had made job {existing.id}: taking it")
                return existing
        try:
            return client.with_options(max_retries=0).fine_tuning.jobs.create(**kwargs)
        except Exception as exc:
            if attempt >= retries or not _is_transient_sdk_error(exc):
                raise
            time.sleep(backoff_delay(attempt, policy))
            attempt += 1


def _poll(client: Any, job_id: str, interval: float, timeout: float, log: Callable[[str], None]) -> Any:
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        job = client.fine_tuning.jobs.retrieve(job_id)
        if job.status != last:
            log(f"job {job_id}: {job.status}")
            last = job.status
        if job.status in TERMINAL:
            return job
        if time.monotonic() > deadline:
            raise HostedFineTuningError(
                f"OpenAI fine-tuning job {job_id} is still {job.status} after {timeout:.0f} s; its id is kept, "
                "run again to resume polling"
            )
        time.sleep(interval)
