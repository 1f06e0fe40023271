"""``openai``: any OpenAI-compatible chat-completions endpoint (OpenAI, Ollama, llama.cpp,
vLLM) through the ``openai`` SDK's AsyncOpenAI, streaming."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from typing import TYPE_CHECKING, Any, cast

import openai

from voicechat.errors import LLMFailed
from voicechat.llm.base import ChatMessage

if TYPE_CHECKING:
    from voicechat.config import Settings


def describe(exc: BaseException) -> str:
    """Say what went wrong upstream in words a person understands."""
    if isinstance(exc, openai.AuthenticationError):
        return "the LLM endpoint refused the API key (401); check VOICECHAT_OPENAI_API_KEY"
    if isinstance(exc, openai.RateLimitError):
        return "the LLM endpoint is rate limiting us (429); try again shortly"
    if isinstance(exc, openai.NotFoundError):
        return "the LLM endpoint does not know this model or path (404); check the model name"
    if isinstance(exc, openai.APIStatusError):
        return f"the LLM endpoint answered with HTTP {exc.status_code}"
    if isinstance(exc, openai.APITimeoutError | TimeoutError):
        return "the LLM endpoint timed out"
    if isinstance(exc, openai.APIConnectionError):
        return "cannot reach the LLM endpoint (connection failed)"
    return f"the LLM stream failed: {type(exc).__name__}"


class OpenAILLM:
    name = "openai"

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None,
        model: str,
        timeout: float = 30.0,
        idle_timeout: float = 30.0,
        http_client: Any = None,
    ) -> None:
        self.model = model
        self._idle_timeout = idle_timeout
        self._client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=0,
            http_client=http_client,
        )

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncGenerator[str, None]:
        try:
            response = await self._client.chat.completions.create(
                model=self.model,
                messages=cast(Any, list(messages)),
                stream=True,
            )
        except openai.OpenAIError as exc:
            raise LLMFailed(describe(exc), backend=self.name) from exc
        # Closing the stream (normally, on error, or when the caller's aclosing() closes this
        # generator on stop) releases the HTTP connection back to the pool at once.
        async with response:
            chunks = aiter(response)
            while True:
                try:
                    async with asyncio.timeout(self._idle_timeout):
                        chunk = await anext(chunks)
                except StopAsyncIteration:
                    return
                except (openai.OpenAIError, TimeoutError) as exc:
                    raise LLMFailed(describe(exc), backend=self.name) from exc
                except Exception as exc:  # httpx errors from a body that breaks mid-stream
                    raise LLMFailed(describe(exc), backend=self.name) from exc
                if not chunk.choices or chunk.choices[0].delta is None:
                    continue
                content = chunk.choices[0].delta.content
                if content:
                    yield content

    async def aclose(self) -> None:
        await self._client.close()


def create(settings: Settings) -> OpenAILLM:
    return OpenAILLM(
        api_key=settings.openai_api_key or "not-needed",
        base_url=settings.openai_base_url,
        model=settings.llm_model,
        timeout=settings.llm_timeout,
        idle_timeout=settings.llm_idle_timeout,
    )
