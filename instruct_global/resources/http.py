"""The HTTP fetching resource: one configured, polite client for every corpus asset."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from instruct_global.lib.common.http_fetch import DEFAULT_MAX_RESPONSE_BYTES, PoliteFetcher, build_user_agent


class HttpFetcherResource(ConfigurableResource):
    """Builds ``PoliteFetcher``s; the defaults follow the Wikimedia and BBC etiquette for a slow crawler.

    Set ``contact`` (an e-mail or URL) in production: the Wikimedia User-Agent policy asks for one.
    """

    user_agent: str | None = Field(
        default=None,
        description="Full User-Agent; default: instruct-global/0.1 (<project url>; <contact>) ...",
    )
    contact: str = Field(default="", description="E-mail or URL put into the default User-Agent.")
    min_interval_seconds: float = Field(default=1.0, description="Minimum gap between requests to one host.")
    timeout_seconds: float = Field(default=30.0, description="Connect/read/write timeout per request.")
    max_retries: int = Field(default=4, description="Retries after the first attempt (429, 5xx, timeouts).")
    backoff_base_seconds: float = Field(default=1.0, description="First backoff; doubles per retry.")
    max_backoff_seconds: float = Field(default=60.0, description="Ceiling of one exponential backoff wait.")
    max_retry_after_seconds: float = Field(
        default=120.0, description="Ceiling applied to a server's Retry-After before waiting it out."
    )
    max_response_bytes: int = Field(
        default=DEFAULT_MAX_RESPONSE_BYTES, description="Abort bodies beyond this."
    )
    respect_robots: bool = Field(default=True, description="Fetch robots.txt per host and obey it.")

    def resolved_user_agent(self) -> str:
        return self.user_agent or build_user_agent(self.contact)

    def get_fetcher(self) -> PoliteFetcher:
        """A new fetcher (own connection pool and counters); use it as a context manager."""
        return PoliteFetcher(
            self.resolved_user_agent(),
            min_interval_seconds=self.min_interval_seconds,
            timeout_seconds=self.timeout_seconds,
            max_retries=self.max_retries,
            backoff_base_seconds=self.backoff_base_seconds,
            max_backoff_seconds=self.max_backoff_seconds,
            max_retry_after_seconds=self.max_retry_after_seconds,
            max_response_bytes=self.max_response_bytes,
            respect_robots=self.respect_robots,
        )
