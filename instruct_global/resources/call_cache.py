"""The call cache as a Dagster resource, shared by every LLM and translation backend."""

from __future__ import annotations

import threading

from dagster import ConfigurableResource
from pydantic import Field

from instruct_global.lib.call_cache import CallCache, open_call_cache

_OPEN: dict[str, CallCache] = {}
_OPEN_LOCK = threading.Lock()


class CallCacheResource(ConfigurableResource):
    """Where paid answers are kept. A file path or ``sqlite:///...`` (default) or ``postgresql://...``.

    Give a PostgreSQL URL through ``EnvVar`` when it holds a password.
    """

    url: str = Field(description="sqlite:///path/calls.db, a file path, or postgresql://user@host/db")

    def get_cache(self) -> CallCache:
        # one open store per URL and process: connections are per thread inside it
        with _OPEN_LOCK:
            cache = _OPEN.get(self.url)
            if cache is None:
                cache = open_call_cache(self.url)
                _OPEN[self.url] = cache
            return cache
