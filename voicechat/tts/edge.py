"""``edge``: Microsoft Edge's online neural voices through the ``edge-tts`` package.

Its MP3 (24 kHz, 48 kbit/s, mono) goes through unchanged, regrouped into whole frames. The
library is used as it is; around it:

* rate, pitch and volume are checked once, at start-up, with the library's own rules
  (signed: ``+10%``, ``-5Hz``), so a bad value is a ConfigError, not a failed request;
* text with nothing to pronounce never reaches the service (it would answer with no audio);
* connecting (DNS, TCP, TLS) is bounded by ``connect_timeout`` and a quiet socket by
  ``idle_timeout`` (the library waits up to 10 s to connect and forever for audio);
* a socket that closes before ``turn.end`` raises TTSFailed: the library ends such a stream
  as if it were complete, which would speak half a sentence and call it a success;
* at most ``max_connections`` requests are open at once per backend (one per process): the
  service drops audio and rate-limits clients that flood it.

``& < > ' "`` need nothing from us: the library escapes ``& < >`` in the SSML it sends and
quotes are plain text there, so the service reads them as the characters they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import time
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

import aiohttp
import edge_tts
import yarl
from edge_tts import exceptions as edge_errors

from voicechat.errors import ConfigError, NoAudio, TTSFailed
from voicechat.pipeline.speakable import has_speech
from voicechat.tts.catalog import VoiceInfo
from voicechat.tts.mp3stream import FrameAligner

if TYPE_CHECKING:
    from voicechat.config import Settings

log = logging.getLogger("voicechat.tts.edge")

SAMPLE_RATE = 24000  # the library always asks for audio-24khz-48kbitrate-mono-mp3
VOICE_LIST_TTL = 24 * 3600.0
VOICE_LIST_RETRY = 300.0
_VOICE_NAME = re.compile(r"^[a-z]{2,}-[A-Z]{2,}-.+Neural$")
_PERCENT = re.compile(r"^[+-]\d+%$")
_HERTZ = re.compile(r"^[+-]\d+Hz$")

# Known when the service's list cannot be fetched (offline); the first is the default.
BUILTIN_VOICES: tuple[tuple[str, str], ...] = (
    ("en-US-EmmaMultilingualNeural", "Female"),
    ("en-US-AndrewMultilingualNeural", "Male"),
    ("en-US-AvaMultilingualNeural", "Female"),
    ("en-US-BrianMultilingualNeural", "Male"),
    ("en-US-AriaNeural", "Female"),
    ("en-US-GuyNeural", "Male"),
    ("en-US-JennyNeural", "Female"),
    ("en-GB-SoniaNeural", "Female"),
    ("en-GB-RyanNeural", "Male"),
    ("de-DE-KatjaNeural", "Female"),
    ("de-DE-ConradNeural", "Male"),
    ("fr-FR-DeniseNeural", "Female"),
    ("fr-FR-HenriNeural", "Male"),
    ("es-ES-ElviraNeural", "Female"),
    ("es-MX-DaliaNeural", "Female"),
    ("it-IT-ElsaNeural", "Female"),
    ("pt-BR-FranciscaNeural", "Female"),
    ("ja-JP-NanamiNeural", "Female"),
    ("zh-CN-XiaoxiaoNeural", "Female"),
    ("zh-CN-YunxiNeural", "Male"),
    ("hi-IN-SwaraNeural", "Female"),
)


def _locale(voice: str) -> str:
    return "-".join(voice.split("-")[:2])


def _checked(name: str, value: str, pattern: re.Pattern[str], example: str) -> str:
    if not pattern.match(value):
        raise ConfigError(f"edge {name} must look like {example!r}, got {value!r}")
    return value


def describe(exc: BaseException) -> str:
    """What went wrong with the edge service, in words a person understands."""
    if isinstance(exc, aiohttp.WSServerHandshakeError | aiohttp.ClientResponseError):
        if exc.status == 403:
            return "the edge service refused us (403); upgrading edge-tts usually fixes it"
        if exc.status == 429:
            return "the edge service is rate limiting us (429)"
        return f"the edge service answered with HTTP {exc.status}"
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return "the edge service did not answer in time"
    if isinstance(exc, aiohttp.ClientConnectionError | OSError):
        return "cannot reach the edge service (connection failed)"
    return f"the edge service failed: {type(exc).__name__}: {exc}"


class _BoundedConnector(aiohttp.TCPConnector):
    """A connector whose connect (DNS, TCP and TLS together) gives up after ``timeout``:
    offline, a resolver may hang far longer than a listener waits for the first word.

    The library closes its session's connector when the session ends, then opens a second
    session with the same connector to retry a 403; so ``close`` leaves it open and its
    owner closes it with :meth:`shutdown`."""

    def __init__(self, *, timeout: float) -> None:
        super().__init__()
        self._connect_timeout = timeout

    async def connect(self, *args: Any, **kwargs: Any) -> Any:
        try:
            async with asyncio.timeout(self._connect_timeout):
                return await super().connect(*args, **kwargs)
        except TimeoutError as exc:
            raise aiohttp.ServerTimeoutError("connecting took too long") from exc

    async def close(self, *, abort_ssl: bool = False) -> None:
        return None

    async def shutdown(self) -> None:
        await super().close()


class EdgeTTS:
    name = "edge"
    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        *,
        rate: str = "+0%",
        pitch: str = "+0Hz",
        volume: str = "+0%",
        extra_voices: tuple[str, ...] = (),
        connect_timeout: float = 1.5,
        idle_timeout: float = 10.0,
        max_connections: int = 8,
    ) -> None:
        self._rate = _checked("rate", rate, _PERCENT, "+10%")
        self._pitch = _checked("pitch", pitch, _HERTZ, "+5Hz")
        self._volume = _checked("volume", volume, _PERCENT, "-10%")
        self._connect_timeout = connect_timeout
        self._idle_timeout = idle_timeout
        self._slots = asyncio.Semaphore(max_connections)
        known = [VoiceInfo(v, self.name, _locale(v), g) for v, g in BUILTIN_VOICES]
        known += [VoiceInfo(v, self.name, _locale(v)) for v in extra_voices]
        self._catalog = known
        self._voice_names = dict.fromkeys(v.name for v in known)
        self._next_lookup = 0.0

    def voices(self) -> list[str]:
        return list(self._voice_names)

    async def probe(self) -> None:
        """Raise :class:`TTSFailed` when the service cannot be reached at all (DNS, TCP and
        TLS, within the connect timeout): a chain then starts without waiting on it."""
        url = yarl.URL(getattr(edge_tts.communicate, "WSS_URL"))  # noqa: B009 - tests patch it
        port = url.port or (443 if url.scheme == "wss" else 80)
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, writer = await asyncio.open_connection(url.host, port, ssl=url.scheme == "wss")
        except (OSError, TimeoutError) as exc:
            message = f"cannot reach the edge service ({type(exc).__name__})"
            raise TTSFailed(message, backend=self.name) from exc
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()

    async def describe_voices(self) -> list[VoiceInfo]:
        """The service's voice list (looked up at most once a day), else the known ones."""
        if time.monotonic() >= self._next_lookup:
            try:
                connector = _BoundedConnector(timeout=self._connect_timeout)
                try:
                    async with asyncio.timeout(self._connect_timeout + self._idle_timeout):
                        listed = await edge_tts.list_voices(connector=connector)
                finally:
                    await connector.shutdown()
                self._catalog = [
                    VoiceInfo(v["ShortName"], self.name, v.get("Locale"), v.get("Gender"))
                    for v in listed
                ]
                self._voice_names = dict.fromkeys(
                    [*list(self._voice_names)[:1], *(v.name for v in self._catalog)]
                )
                self._next_lookup = time.monotonic() + VOICE_LIST_TTL
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError, KeyError) as exc:
                log.info("edge voice list unavailable (%s); using the known voices", exc)
                self._next_lookup = time.monotonic() + VOICE_LIST_RETRY
        return list(self._catalog)

    async def synthesize(
        self, text: str, *, voice: str | None = None
    ) -> AsyncGenerator[bytes, None]:
        name = voice or self.voices()[0]
        if name not in self._voice_names:
            raise TTSFailed(f"unknown edge voice {name!r}", backend=self.name)
        if not has_speech(text):
            return
        async with self._slots:
            connector = _BoundedConnector(timeout=self._connect_timeout)
            communicate = edge_tts.Communicate(
                text,
                name,
                rate=self._rate,
                pitch=self._pitch,
                volume=self._volume,
                connector=connector,
                connect_timeout=max(1, math.ceil(self._connect_timeout)),
                receive_timeout=max(1, math.ceil(self._idle_timeout)),
            )
            aligner = FrameAligner()
            received = 0
            try:
                async with contextlib.aclosing(communicate.stream()) as chunks:
                    while (audio := await self._next_audio(chunks)) is not None:
                        received += len(audio)
                        if frames := aligner.feed(audio):
                            yield frames
            finally:
                await connector.shutdown()
            # The library counts audio into cumulative_audio_bytes only on `turn.end`.
            if communicate.state["cumulative_audio_bytes"] != received:
                raise TTSFailed(
                    "the edge service closed the connection before the end of the sentence",
                    backend=self.name,
                )
            aligner.flush()

    async def _next_audio(self, chunks: AsyncGenerator[Any, None]) -> bytes | None:
        """The next audio bytes of the stream; None at its end."""
        while True:
            deadline = asyncio.timeout(self._idle_timeout)
            try:
                async with deadline:
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                return None
            except edge_errors.NoAudioReceived as exc:
                raise NoAudio("the edge service sent no audio", backend=self.name) from exc
            except (edge_errors.EdgeTTSException, aiohttp.ClientError, OSError) as exc:
                if deadline.expired():
                    message = f"the edge service sent nothing for {self._idle_timeout:g} s"
                    raise TTSFailed(message, backend=self.name) from exc
                raise TTSFailed(describe(exc), backend=self.name) from exc
            if chunk["type"] == "audio":
                return bytes(chunk["data"])

    async def aclose(self) -> None:
        return None


def create(settings: Settings) -> EdgeTTS:
    configured = settings.voice
    extra = (configured,) if configured and _VOICE_NAME.match(configured) else ()
    return EdgeTTS(
        rate=settings.edge_rate,
        pitch=settings.edge_pitch,
        volume=settings.edge_volume,
        extra_voices=extra,
        connect_timeout=settings.tts_connect_timeout,
        idle_timeout=settings.tts_idle_timeout,
        max_connections=settings.tts_connections,
    )
