"""``openai``: any OpenAI-compatible chat-completions endpoint (OpenAI, Ollama, llama.cpp,
vLLM) through the ``openai`` SDK's AsyncOpenAI, streaming.

A request that fails before its first token (429, 408/409, 5xx, a refused or dropped
connection) is retried ``retries`` times with exponential backoff; a 401 or 404 never is, and
nothing is retried once text was yielded: the listener may already have heard it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Sequence
from typing import TYPE_CHECKING, Any, cast

import openai

from voicechat.errors import LLMFailed
from voicechat.llm.base import ChatMessage
from voicechat.openai_errors import describe_openai_error

if TYPE_CHECKING:
    from voicechat.config import Settings

log = logging.getLogger("voicechat.llm.openai")


def describe(exc: BaseException) -> str:
    return describe_openai_error(exc, endpoint="LLM endpoint")


MAX_RETRY_AFTER = 10.0  # seconds: a longer Retry-After is reported, not waited for


def retry_delay(exc: BaseException | None, attempt: int, *, backoff: float) -> float | None:
    """Seconds to wait before retrying after ``exc`` (the cause of an LLMFailed), or None
    when it is not worth retrying: bad key or model, a timeout already waited out, or a
    server asking us to come back later than a listener would wait."""
    delay = backoff * (1 << attempt)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if not (status in (408, 409, 429) or status >= 500):
            return None
        retry_after = exc.response.headers.get("retry-after")
        try:
            wanted = float(retry_after) if retry_after is not None else 0.0
        except ValueError:
            wanted = 0.0
        return None if wanted > MAX_RETRY_AFTER else max(delay, wanted)
    if isinstance(exc, openai.APITimeoutError | TimeoutError):
        return None
    if isinstance(exc, openai.APIConnectionError | ConnectionError):
        return delay
    if exc is not None and not isinstance(exc, openai.OpenAIError):
        return delay  # the HTTP body broke (an httpx error) before any text
    return None


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
        retries: int = 2,
        retry_backoff: float = 0.5,
    ) -> None:
        self.model = model
        self._idle_timeout = idle_timeout
        self._retries = retries
        self._backoff = retry_backoff
        self._client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=0,
            http_client=http_client,
        )

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncGenerator[str, None]:
        attempt = 0
        while True:
            started = False
            try:
                async with contextlib.aclosing(self._attempt(messages)) as deltas:
                    async for delta in deltas:
                        started = True
                        yield delta
                return
            except LLMFailed as exc:
                delay = retry_delay(exc.__cause__, attempt, backoff=self._backoff)
                if started or delay is None or attempt >= self._retries:
                    raise
                log.info(
                    "LLM request failed before its first token (%s); retry in %.1f s",
                    exc.message,
                    delay,
                )
            attempt += 1
            await asyncio.sleep(delay)

    async def _attempt(self, messages: Sequence[ChatMessage]) -> AsyncGenerator[str, None]:
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
        retries=settings.llm_retries,
    )
