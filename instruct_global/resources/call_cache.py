"""The call cache as a Dagster resource, shared by every LLM and translation backend."""

from __future__ import annotations

import os
import threading

from dagster import ConfigurableResource
from pydantic import Field

from instruct_global.lib.common.call_cache import CallCache, open_call_cache
from instruct_global.resources.parquet_io import resolve_data_dir

CACHE_URL_ENV = "INSTRUCT_GLOBAL_CALL_CACHE_URL"

_OPEN: dict[str, CallCache] = {}
_OPEN_LOCK = threading.Lock()


class CallCacheResource(ConfigurableResource):
    """Where paid answers are kept. A file path or ``sqlite:///...`` (default) or ``postgresql://...``.

    Give a PostgreSQL URL through ``EnvVar`` when it holds a password.
    """

    url: str | None = Field(
        default=None,
        description="sqlite:///path/calls.db, a file path, or postgresql://user@host/db; default "
        f"${CACHE_URL_ENV}, else <data dir>/cache/calls.sqlite",
    )

    def resolved_url(self) -> str:
        # read at run time, never at import: the data dir may be set per run
        return self.url or os.environ.get(CACHE_URL_ENV) or str(resolve_data_dir(None) / "cache" / "calls.sqlite")

    def get_cache(self) -> CallCache:
        url = self.resolved_url()
        # one open store per URL and process: connections are per thread inside it
        with _OPEN_LOCK:
            cache = _OPEN.get(url)
            if cache is None:
                cache = open_call_cache(url)
                _OPEN[url] = cache
            return cache
