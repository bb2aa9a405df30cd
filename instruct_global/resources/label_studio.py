"""Label Studio as an optional front end for review and evaluation rounds (its REST API, through httpx).

URL and API key come through ``EnvVar`` (``LABEL_STUDIO_URL``, ``LABEL_STUDIO_API_KEY``); the
definitions add this resource and its sensor only where ``LABEL_STUDIO_URL`` is set, so the sheet
route works without it. The key is a personal access token (or a legacy token where the server
allows them); it never reaches a log, metadata or an error message.
"""

from __future__ import annotations

from collections.abc import Mapping

from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from instruct_global.lib.evaluate.label_studio_api import LabelStudioClient

URL_ENV, KEY_ENV = "LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY"


class LabelStudioResource(ConfigurableResource):
    url: str = Field(description='EnvVar("LABEL_STUDIO_URL"), e.g. http://127.0.0.1:8080')
    api_key: str = Field(description='EnvVar("LABEL_STUDIO_API_KEY"); never a literal')
    timeout_s: float = 30.0

    def client(self) -> LabelStudioClient:
        return LabelStudioClient(self.url, self.api_key, self.timeout_s)


def label_studio_resources(env: Mapping[str, str]) -> dict[str, LabelStudioResource]:
    """``{"label_studio": ...}`` when LABEL_STUDIO_URL is set, else nothing."""
    if not env.get(URL_ENV):
        return {}
    return {"label_studio": LabelStudioResource(url=EnvVar(URL_ENV), api_key=EnvVar(KEY_ENV))}
