"""Process pools for the corpus stages: worker counts, and ordered, bounded batch maps.

Workers are started with ``spawn`` (never ``fork``): the caller may be a threaded Dagster
process. At most ``2 * workers`` batches are in flight, so memory stays bounded however long the
input, and results come back in input order, so output never depends on the worker count.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
INFLIGHT_PER_WORKER = 2


def resolve_workers(workers: int) -> int:
    """``workers`` as a process count: 0 means one per CPU this process may use."""
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    if workers == 0:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not Linux
            return max(1, os.cpu_count() or 1)
    return workers


def new_pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


def ordered_map(
    pool: ProcessPoolExecutor, fn: Callable[..., list[T]], batches: Iterable[Any], workers: int, *args: Any
) -> Iterator[T]:
    """``fn(batch, *args)`` for each batch in the pool; the items of the results, in order.

    If producing the batches fails (a truncated dump), the batches already submitted are still
    yielded before the error is raised.
    """
    inflight: deque[Future[list[T]]] = deque()
    error: Exception | None = None
    try:
        for batch in batches:
            inflight.append(pool.submit(fn, batch, *args))
            while len(inflight) >= INFLIGHT_PER_WORKER * workers:
                yield from inflight.popleft().result()
    except Exception as err:
        error = err
    while inflight:
        yield from inflight.popleft().result()
    if error is not None:
        raise error
