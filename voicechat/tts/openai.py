"""``openai``: OpenAI's speech endpoint (or a compatible one) through the ``openai`` SDK's
streaming response, as MP3.

The service sends a file: an ID3 tag and a header frame come before the audio frames; they are
dropped and the frames go through unchanged. An endpoint that answers at another sample rate
than 24 kHz has each chunk decoded and encoded again at 24 kHz, so a turn stays one stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Any, cast

import httpx2
import openai

from voicechat.errors import ConfigError, NoAudio, TTSFailed
from voicechat.openai_errors import describe_openai_error
from voicechat.pipeline.audio import split_frames
from voicechat.pipeline.speakable import has_speech
from voicechat.tts.mp3stream import FrameAligner
from voicechat.tts.resample import PIECE_MS, transcode_mp3

if TYPE_CHECKING:
    from voicechat.config import Settings

SAMPLE_RATE = 24000
VOICES = (
    "alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer",
    "verse", "marin", "cedar",
)  # fmt: skip


def describe(exc: BaseException) -> str:
    return describe_openai_error(exc, endpoint="speech endpoint")


class OpenAITTS:
    name = "openai"
    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None,
        model: str = "gpt-4o-mini-tts",
        speed: float = 1.0,
        connect_timeout: float = 1.5,
        idle_timeout: float = 10.0,
        max_connections: int = 8,
        http_client: Any = None,
    ) -> None:
        if not 0.25 <= speed <= 4.0:
            raise ConfigError(f"openai TTS speed must be 0.25 to 4, got {speed}")
        self.model = model
        self._speed = speed
        self._idle_timeout = idle_timeout
        self._slots = asyncio.Semaphore(max_connections)
        self._client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            timeout=httpx2.Timeout(idle_timeout, connect=connect_timeout),
            max_retries=0,  # a fallback chain moves on instead
            http_client=http_client,
        )

    def voices(self) -> list[str]:
        return list(VOICES)

    async def synthesize(
        self, text: str, *, voice: str | None = None
    ) -> AsyncGenerator[bytes, None]:
        name = voice or VOICES[0]
        if name not in VOICES:
            raise TTSFailed(f"unknown openai voice {name!r}", backend=self.name)
        if not has_speech(text):
            return
        aligner = FrameAligner()
        held: list[bytes] = []  # audio at another sample rate, converted at the end
        async with self._slots:
            try:
                async with self._client.audio.speech.with_streaming_response.create(
                    model=self.model,
                    voice=name,
                    input=text,
                    response_format="mp3",
                    speed=self._speed if self._speed != 1.0 else openai.omit,
                ) as response:
                    body = cast(AsyncGenerator[bytes, None], response.iter_bytes())
                    async with contextlib.aclosing(body):
                        while (data := await self._next(body)) is not None:
                            frames = aligner.feed(data)
                            if frames and aligner.sample_rate == self.sample_rate:
                                yield frames
                            elif frames:
                                held.append(frames)
            except openai.OpenAIError as exc:
                raise TTSFailed(describe(exc), backend=self.name) from exc
            except (httpx2.HTTPError, OSError) as exc:  # the body broke mid-stream
                raise TTSFailed(describe(exc), backend=self.name) from exc
        aligner.flush()
        if held:
            mp3 = await asyncio.to_thread(transcode_mp3, b"".join(held), to_rate=self.sample_rate)
            for piece in split_frames(mp3, max_ms=PIECE_MS):
                yield piece
        elif aligner.sample_rate is None:
            raise NoAudio("the speech endpoint sent no audio", backend=self.name)

    async def _next(self, body: AsyncIterator[bytes]) -> bytes | None:
        try:
            async with asyncio.timeout(self._idle_timeout):
                return await anext(body)
        except StopAsyncIteration:
            return None
        except TimeoutError as exc:
            message = f"the speech endpoint sent nothing for {self._idle_timeout:g} s"
            raise TTSFailed(message, backend=self.name) from exc

    async def aclose(self) -> None:
        await self._client.close()


def create(settings: Settings) -> OpenAITTS:
    return OpenAITTS(
        api_key=settings.openai_api_key or "not-needed",
        base_url=settings.openai_tts_base_url or settings.openai_base_url,
        model=settings.openai_tts_model,
        speed=settings.openai_tts_speed,
        connect_timeout=settings.tts_connect_timeout,
        idle_timeout=settings.tts_idle_timeout,
        max_connections=settings.tts_connections,
    )
