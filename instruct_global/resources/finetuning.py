"""Resources of the export and train stages: the Hugging Face Hub token and the OpenAI fine-tuning API.

Tokens come only through ``EnvVar`` (definitions pass one only where the variable is set), are read
at run time and never reach a log, metadata or an error message.
"""

from __future__ import annotations

from typing import Any

from dagster import ConfigurableResource
from pydantic import Field


class HuggingFaceHubResource(ConfigurableResource):
    token: str | None = Field(default=None, description='EnvVar("HF_TOKEN"); needed only to push datasets')

    def require_token(self) -> str:
        if not self.token:
            raise ValueError(
                "push_to_hub needs a Hugging Face token: set HF_TOKEN (it is read through EnvVar)"
            )
        return self.token


class OpenAIFineTuningResource(ConfigurableResource):
    api_key: str | None = Field(default=None, description='EnvVar("OPENAI_API_KEY"); never a literal')
    base_url: str | None = Field(default=None, description="Another endpoint speaking the same API (tests)")
    timeout_seconds: float = 60.0
    max_retries: int = 3

    def client(self) -> Any:
        if not self.api_key:
            raise ValueError(
                "hosted fine-tuning needs OPENAI_API_KEY (read through EnvVar); none is configured"
            )
        import openai

        return openai.OpenAI(
            api_key=self.api_key,
            base_url=self.base_url,
            timeout=self.timeout_seconds,
            max_retries=self.max_retries,
        )

    def secrets(self) -> list[str]:
        return [self.api_key] if self.api_key else []


def finetuning_resources(env: dict[str, str] | Any) -> dict[str, Any]:
    """The hub and fine-tuning resources; a token is an EnvVar reference only where the variable is set,
    so a deployment without it still loads (and the step that needs it says what is missing)."""
    from dagster import EnvVar

    return {
        "hub": HuggingFaceHubResource(token=EnvVar("HF_TOKEN") if env.get("HF_TOKEN") else None),
        "openai_finetuning": OpenAIFineTuningResource(
            api_key=EnvVar("OPENAI_API_KEY") if env.get("OPENAI_API_KEY") else None,
            base_url=env.get("INSTRUCT_GLOBAL_OPENAI_FINETUNE_BASE_URL") or None,
        ),
    }
