"""How stages fail: a stage whose every request failed fails; errors a retry cannot fix are not retried."""

from __future__ import annotations

import pytest
from dagster import Failure

from instruct_global.assets.common import (
    call_snapshot,
    fail_if_every_call_failed,
    outside_service_retry,
    permanent_errors,
)
from instruct_global.lib.common.accounting import CallStats
from instruct_global.lib.train.local_sft import TrainingDataError


class Backend:
    backend_name = "openai-compatible"

    def __init__(self) -> None:
        self._stats = CallStats()

    def stats(self) -> CallStats:
        return self._stats


def test_a_stage_whose_every_request_failed_fails_and_one_answer_is_enough() -> None:
    backend = Backend()
    backend.stats().add(calls=3, failures=0)  # an earlier stage of the same run did well
    before = call_snapshot(backend)
    backend.stats().add(calls=4, failures=4)
    with pytest.raises(RuntimeError, match="every one of the 4 requests to the openai-compatible backend"):
        fail_if_every_call_failed(backend, before, "backtranslated_pairs")
    backend.stats().add(calls=1)  # one answer came back: the stage stands, its rejects say the rest
    fail_if_every_call_failed(backend, before, "backtranslated_pairs")
    cached = Backend()
    start = call_snapshot(cached)
    cached.stats().add(cache_hits=2)
    fail_if_every_call_failed(cached, start, "curated_pairs")  # nothing sent: nothing failed


def test_errors_a_retry_cannot_fix_are_not_retried() -> None:
    with pytest.raises(Failure) as caught, permanent_errors(TrainingDataError):
        raise TrainingDataError("the train split is empty")
    assert caught.value.allow_retries is False and "the train split is empty" in caught.value.description
    with pytest.raises(KeyError), permanent_errors(TrainingDataError):
        raise KeyError("other errors pass through, and the step retry policy applies to them")
    policy = outside_service_retry({"INSTRUCT_GLOBAL_STEP_RETRIES": "3", "INSTRUCT_GLOBAL_STEP_RETRY_DELAY_S": "5"})
    assert policy.max_retries == 3 and policy.delay == 5
