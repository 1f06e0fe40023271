"""POST /v1/audio/speech, GET /v1/models and GET /v1/audio/voices, driven by the real `openai`
SDK against the server on loopback."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import wave
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

import imageio_ffmpeg
import miniaudio
import openai
import pytest
from aiohttp.test_utils import TestClient

from tests import conftest
from voicechat.pipeline.encoders import PCM_RATE
from voicechat.server.app import create_app
from voicechat.tts.base import TTSBackend
from voicechat.tts.tone import ToneTTS

SENTENCES = ["One is first.", "Two comes next.", "Three is here at last."]
TEXT = " ".join(SENTENCES)
MS_PER_CHAR = 30  # ToneTTS: each chunk lasts 30 ms a character


class GatedTTS:
    """Tone, but every chunk after the first waits for ``release``: what arrives before it
    was sent before the rest of the input was synthesized."""

    name = "gated"

    def __init__(self) -> None:
        self.inner = ToneTTS()
        self.sample_rate = self.inner.sample_rate
        self.release = asyncio.Event()
        self.calls = 0

    def voices(self) -> list[str]:
        return self.inner.voices()

    async def synthesize(
        self, text: str, *, voice: str | None = None
    ) -> AsyncGenerator[bytes, None]:
        self.calls += 1
        if self.calls > 1:
            await self.release.wait()
        async for piece in self.inner.synthesize(text, voice=voice):
            yield piece

    async def aclose(self) -> None:
        return None


class Mp3OnlyTTS:
    """Tone as a service would be: MP3 only, no PCM of its own."""

    name = "mp3-only"

    def __init__(self) -> None:
        self.inner = ToneTTS()
        self.sample_rate = self.inner.sample_rate

    def voices(self) -> list[str]:
        return self.inner.voices()

    def synthesize(self, text: str, *, voice: str | None = None) -> AsyncGenerator[bytes, None]:
        return self.inner.synthesize(text, voice=voice)

    async def aclose(self) -> None:
        return None


SdkFactory = Callable[..., Awaitable[tuple[openai.AsyncOpenAI, TestClient[Any, Any]]]]


@pytest.fixture
async def sdk(aiohttp_client: Any) -> AsyncIterator[SdkFactory]:
    """``await sdk(tts=..., key=..., **settings)`` → an SDK client of a fresh server (closed
    at the end), and the server's aiohttp test client."""
    clients: list[openai.AsyncOpenAI] = []

    async def connect(
        *, tts: TTSBackend | None = None, key: str = "anything", **settings: Any
    ) -> tuple[openai.AsyncOpenAI, TestClient[Any, Any]]:
        app = create_app(conftest.test_settings(**settings), tts=tts or ToneTTS())
        http: TestClient[Any, Any] = await aiohttp_client(app)
        client = sdk_for(http, key)
        clients.append(client)
        return client, http

    def sdk_for(http: TestClient[Any, Any], key: str) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=str(http.make_url("/v1")), api_key=key, max_retries=0)

    yield connect
    for client in clients:
        await client.close()


async def ffmpeg_decode(data: bytes) -> bytes:
    """Any container ffmpeg reads → 24 kHz mono s16le."""
    process = await asyncio.create_subprocess_exec(
        *(imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", "pipe:0"),
        *("-f", "s16le", "-ar", str(PCM_RATE), "-ac", "1", "pipe:1"),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(process.communicate(data), conftest.EVENT_TIMEOUT)
    assert process.returncode == 0
    return out


async def seconds_of(fmt: str, data: bytes) -> float:
    if fmt == "pcm":
        return len(data) / (2 * PCM_RATE)
    if fmt == "wav":
        with wave.open(io.BytesIO(data)) as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (PCM_RATE, 1, 2)
        return (len(data) - 44) / (2 * PCM_RATE)
    if fmt in ("mp3", "flac"):
        return float(miniaudio.decode(data, nchannels=1, sample_rate=PCM_RATE).duration)
    return len(await ffmpeg_decode(data)) / (2 * PCM_RATE)


def expected_seconds(sentences: list[str], *, speed: float = 1.0) -> float:
    return sum(MS_PER_CHAR * len(s) for s in sentences) / 1000 / speed


@pytest.mark.parametrize("fmt", ["mp3", "pcm", "wav", "opus", "aac", "flac"])
async def test_every_format_decodes_to_the_length_of_the_text(sdk: SdkFactory, fmt: str) -> None:
    client, _ = await sdk()
    async with client.audio.speech.with_streaming_response.create(
        model="tts-1",
        voice="alloy",
        input=TEXT,
        response_format=fmt,  # type: ignore[arg-type]
    ) as response:
        content_type = response.headers["Content-Type"]
        body = b"".join([chunk async for chunk in response.iter_bytes()])
    assert content_type == {
        "mp3": "audio/mpeg", "pcm": "audio/pcm", "wav": "audio/wav",
        "opus": "audio/opus", "aac": "audio/aac", "flac": "audio/flac",
    }[fmt]  # fmt: skip
    if fmt == "opus":
        assert body[:4] == b"OggS" and b"OpusHead" in body[:64]
    seconds = await seconds_of(fmt, body)
    # Each sentence's MP3 carries up to ~50 ms of encoder padding; ADTS AAC carries no
    # priming information, so its decoder adds AAC's priming and last-frame padding too.
    assert seconds == pytest.approx(expected_seconds(SENTENCES), abs=0.3 if fmt == "aac" else 0.2)


async def test_pcm_from_a_backend_that_makes_pcm_is_its_own_never_through_mp3(
    sdk: SdkFactory,
) -> None:
    client, _ = await sdk()
    response = await client.audio.speech.create(
        model="tts-1", voice="alloy", input=SENTENCES[0], response_format="pcm"
    )
    # alloy is tone-high on tone; tone makes its PCM at any rate itself.
    own = ToneTTS().render_pcm(SENTENCES[0], "tone-high", sample_rate=PCM_RATE)
    assert response.content == own


class PcmOnlyTone(ToneTTS):
    """Tone whose MP3 path fails: a PCM client must never make it encode."""

    async def synthesize(
        self, text: str, *, voice: str | None = None
    ) -> AsyncGenerator[bytes, None]:
        raise AssertionError("MP3 was asked of a backend that makes PCM, for a PCM client")
        yield b""


@pytest.mark.parametrize("fmt", ["pcm", "wav", "flac", "opus"])
async def test_a_backend_that_makes_pcm_is_never_asked_for_mp3_by_a_pcm_format(
    sdk: SdkFactory, fmt: str
) -> None:
    client, _ = await sdk(tts=PcmOnlyTone())
    response = await client.audio.speech.create(
        model="tts-1",
        voice="alloy",
        input=" ".join(SENTENCES),
        response_format=fmt,  # type: ignore[arg-type]
    )
    assert len(response.content) > 1000


async def test_pcm_from_an_mp3_only_backend_is_its_mp3_decoded(sdk: SdkFactory) -> None:
    client, _ = await sdk(tts=Mp3OnlyTTS())
    response = await client.audio.speech.create(
        model="tts-1", voice="alloy", input=SENTENCES[0], response_format="pcm"
    )
    mp3 = ToneTTS().render(SENTENCES[0], "tone-high")
    decoded = miniaudio.decode(mp3, nchannels=1, sample_rate=PCM_RATE).samples.tobytes()
    assert response.content == decoded


@pytest.mark.parametrize("fmt", ["mp3", "pcm"])
async def test_the_first_bytes_leave_before_the_rest_is_synthesized(
    sdk: SdkFactory, fmt: str
) -> None:
    tts = GatedTTS()
    client, _ = await sdk(tts=tts)
    long_input = " ".join(f"Sentence number {n} is here." for n in range(30))
    async with client.audio.speech.with_streaming_response.create(
        model="tts-1",
        voice="alloy",
        input=long_input,
        response_format=fmt,  # type: ignore[arg-type]
    ) as response:
        chunks = response.iter_bytes()
        first = await asyncio.wait_for(anext(chunks), conftest.EVENT_TIMEOUT)
        assert first and not tts.release.is_set()  # the other 29 sentences are not made yet
        tts.release.set()
        rest = b"".join([chunk async for chunk in chunks])
    assert len(rest) > 10 * len(first)


async def test_speed_changes_the_length(sdk: SdkFactory) -> None:
    client, _ = await sdk()
    response = await client.audio.speech.create(
        model="tts-1", voice="alloy", input=TEXT, response_format="pcm", speed=2.0
    )
    seconds = len(response.content) / (2 * PCM_RATE)
    assert seconds == pytest.approx(expected_seconds(SENTENCES, speed=2.0), abs=0.15)


async def test_sse_sends_deltas_then_done_with_usage(sdk: SdkFactory) -> None:
    client, _ = await sdk()
    async with client.audio.speech.with_streaming_response.create(
        model="gpt-4o-mini-tts",
        voice="alloy",
        input=TEXT,
        response_format="pcm",
        stream_format="sse",
    ) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        body = (await response.read()).decode()
    events = [json.loads(block.removeprefix("data: ")) for block in body.strip().split("\n\n")]
    assert [e["type"] for e in events[:-1]] == ["speech.audio.delta"] * (len(events) - 1)
    done = events[-1]
    assert done["type"] == "speech.audio.done"
    usage = done["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > 0
    pcm = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    assert len(pcm) / (2 * PCM_RATE) == pytest.approx(expected_seconds(SENTENCES), abs=0.2)


async def test_voicechat_voice_names_and_openai_names_pick_voices(sdk: SdkFactory) -> None:
    client, _ = await sdk(openai_voices="alloy=tone-low")
    spoken = {}
    for voice in ("tone-high", "alloy", "echo"):
        response = await client.audio.speech.create(
            model="tts-1", voice=voice, input=SENTENCES[0], response_format="mp3"
        )
        spoken[voice] = response.content
    tone = ToneTTS()
    assert spoken["tone-high"] == tone.render(SENTENCES[0], "tone-high")
    assert spoken["alloy"] == tone.render(SENTENCES[0], "tone-low")  # the override
    assert spoken["echo"] == tone.render(SENTENCES[0], "tone-low")  # the default map


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"voice": "nobody"}, "voice"),
        ({"response_format": "ogg"}, "response_format"),
        ({"input": ""}, "input"),
        ({"input": "x" * 4097}, "input"),
        ({"speed": 5.0}, "speed"),
        ({"stream_format": "ws"}, "stream_format"),
    ],
)
async def test_a_bad_request_is_a_400_in_openais_shape(
    sdk: SdkFactory, fields: dict[str, Any], param: str
) -> None:
    client, _ = await sdk()
    request = {"model": "tts-1", "voice": "alloy", "input": "Hello.", **fields}
    with pytest.raises(openai.BadRequestError) as raised:
        await client.audio.speech.create(**request)
    error = raised.value.body
    assert isinstance(error, dict)
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert set(error) == {"message", "type", "param", "code"}


async def test_an_unknown_model_is_a_404(sdk: SdkFactory) -> None:
    client, _ = await sdk()
    with pytest.raises(openai.NotFoundError) as raised:
        await client.audio.speech.create(model="kokoro", voice="alloy", input="Hello.")
    assert isinstance(raised.value.body, dict) and raised.value.body["param"] == "model"


@pytest.mark.parametrize("key", ["wrong", None])
async def test_the_servers_token_is_the_api_key(sdk: SdkFactory, key: str | None) -> None:
    client, http = await sdk(key=key or "unused", token="s3cret")
    if key is None:  # the SDK insists on a key; a client without one posts by hand
        async with http.post("/v1/audio/speech", json={"input": "Hi."}) as response:
            assert response.status == 401
            assert set((await response.json())["error"]) == {"message", "type", "param", "code"}
        return
    with pytest.raises(openai.AuthenticationError):
        await client.audio.speech.create(model="tts-1", voice="alloy", input="Hello.")
    async with openai.AsyncOpenAI(base_url=str(http.make_url("/v1")), api_key="s3cret") as good:
        response = await good.audio.speech.create(model="tts-1", voice="alloy", input="Hello.")
    assert response.content[:1] == b"\xff"  # an MP3 frame


async def test_a_server_without_a_token_ignores_the_key(sdk: SdkFactory) -> None:
    client, _ = await sdk(key="sk-whatever")
    response = await client.audio.speech.create(model="tts-1", voice="alloy", input="Hello.")
    assert response.content


async def test_a_full_server_answers_503(sdk: SdkFactory) -> None:
    tts = GatedTTS()
    client, _ = await sdk(tts=tts, max_sessions=1)
    long_input = "First one here. Second one waits."
    async with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=long_input
    ) as first:
        await asyncio.wait_for(anext(first.iter_bytes()), conftest.EVENT_TIMEOUT)
        with pytest.raises(openai.InternalServerError) as raised:
            await client.audio.speech.create(model="tts-1", voice="alloy", input="Hi.")
        assert raised.value.status_code == 503
        tts.release.set()


async def test_a_foreign_page_is_refused(sdk: SdkFactory) -> None:
    _, http = await sdk()
    request = {"model": "tts-1", "voice": "alloy", "input": "Hello."}
    headers = {"Origin": "https://evil.example"}
    async with http.post("/v1/audio/speech", json=request, headers=headers) as response:
        assert response.status == 403
        assert (await response.json())["error"]["code"] == "origin"


async def test_models_lists_openais_names_and_the_backends(sdk: SdkFactory) -> None:
    client, _ = await sdk()
    models = [model.id async for model in client.models.list()]
    assert {"tts-1", "tts-1-hd", "gpt-4o-mini-tts", "tone"} <= set(models)


async def test_voices_lists_openais_names_and_ours(sdk: SdkFactory) -> None:
    _, http = await sdk()
    async with http.get("/v1/audio/voices") as response:
        listing = await response.json()
    assert {"alloy", "cedar", "tone-low", "tone-high"} <= set(listing["voices"])
    assert listing["aliases"]["alloy"] == "tone-high"
