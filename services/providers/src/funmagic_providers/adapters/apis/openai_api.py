"""OpenAI as one provider type: image steps through the Images API (`openai_images`), studio replies
through the Responses API (`openai_responses`) — one key, one base URL, one health check."""

from __future__ import annotations

from funmagic_providers.adapters.apis.openai_images import OpenAIImages
from funmagic_providers.adapters.apis.openai_responses import OpenAIResponses
from funmagic_providers.domain.steps import (
    STUDIO_CHAT,
    HealthReport,
    ProgressReporter,
    ProviderAccess,
    StepCall,
    StepResult,
)

__all__ = ["OpenAIApi"]


class OpenAIApi:
    def __init__(self, *, timeout_seconds: float = 600.0) -> None:
        self._images = OpenAIImages(timeout_seconds=timeout_seconds)
        self._responses = OpenAIResponses(timeout_seconds=timeout_seconds)

    async def run(self, call: StepCall, progress: ProgressReporter) -> StepResult:
        adapter = self._responses if call.step_type == STUDIO_CHAT else self._images
        return await adapter.run(call, progress)

    async def check_health(self, provider: ProviderAccess) -> HealthReport:
        return await self._images.check_health(provider)
