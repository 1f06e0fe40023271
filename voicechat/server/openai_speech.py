"""``POST /v1/audio/speech``: OpenAI's speech endpoint, with no LLM.

    curl -N http://127.0.0.1:8765/v1/audio/speech -H 'Content-Type: application/json' \\
         -d '{"model":"tts-1","voice":"alloy","input":"Hello there.","response_format":"pcm"}'

The request is OpenAI's (``model``, ``input`` of up to 4096 characters, ``voice``,
``instructions``, ``response_format``, ``speed``, ``stream_format``); a bad one is refused
before anything streams, in OpenAI's error shape (:mod:`.openai_api`). The input is spoken by
one :class:`~voicechat.pipeline.turn.Turn` whose text source is the input itself
(:class:`~voicechat.pipeline.given_text.GivenText`), so it goes through the same chunker and
look-ahead synthesis as an answer, and the body is written as each sentence is synthesized:
MP3 as the backend made it, any other format encoded on the way from PCM
(:mod:`~voicechat.pipeline.encoders`). A backend that makes PCM itself (Piper, tone, a chain:
:class:`~voicechat.tts.base.PcmSpeaker`) hands its PCM over, so it never goes through MP3.
``stream_format: "sse"`` (chosen from the body, whatever ``Accept`` says) sends
``speech.audio.delta`` events and a final ``speech.audio.done`` with ``usage``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import math
import uuid
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from voicechat.pipeline.encoders import (
    FORMATS,
    PCM_RATE,
    SpeechFormat,
    TurnPcm,
    pcm_encoder,
)
from voicechat.pipeline.given_text import GivenText
from voicechat.pipeline.speakable import has_speech
from voicechat.pipeline.turn import Turn, TurnOptions
from voicechat.server.http_speak import ClientGone, watch_client
from voicechat.server.keys import SETTINGS, TTS
from voicechat.server.limits import read_body
from voicechat.server.metrics import METRICS
from voicechat.server.openai_api import (
    OpenAIError,
    check_access,
    resolve_model,
    resolve_voice,
    take_seat,
)
from voicechat.server.session import session_config
from voicechat.tts.base import TTSBackend

log = logging.getLogger("voicechat.openai.speech")

MAX_INPUT_CHARS: Final = 4096  # OpenAI's limit
NO_BUFFERING: Final = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
# usage is estimated: about 4 characters a text token; OpenAI's audio tokens are taken as 50 a
# second of speech (docs/openai-compatible.md).
CHARS_PER_TOKEN: Final = 4
AUDIO_TOKENS_PER_S: Final = 50


@dataclass(frozen=True, slots=True)
class SpeechRequest:
    tts: TTSBackend
    input: str
    voice: str | None
    format: SpeechFormat
    speed: float
    sse: bool


async def speech_handler(request: web.Request) -> web.StreamResponse:
    try:
        check_access(request, origin_check=True)
        speech = await _read_request(request)
        give_back = take_seat(request)
    except OpenAIError as exc:
        return exc.response()
    try:
        return await _speak(request, speech)
    finally:
        give_back()


def _field(data: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = data.get(name, default)
    if value is None and default is not None:
        value = default
    if value is not None and not isinstance(value, kind):
        raise OpenAIError(f"Invalid type for {name!r}.", param=name, code="invalid_type")
    return value


async def _read_request(request: web.Request) -> SpeechRequest:
    try:
        data = json.loads(await read_body(request, within=request.app[SETTINGS].header_timeout))
    except web.HTTPRequestEntityTooLarge as exc:
        raise OpenAIError("The request body is too large.", status=413) from exc
    except web.HTTPRequestTimeout as exc:
        raise OpenAIError(exc.text or "", status=408, code="timeout") from exc
    except (ValueError, RecursionError) as exc:
        raise OpenAIError(f"The body is not valid JSON: {exc}", code="invalid_json") from exc
    if not isinstance(data, dict):
        raise OpenAIError("The body must be a JSON object.", code="invalid_json")
    for name in ("model", "input", "voice"):
        if data.get(name) is None:
            raise OpenAIError(
                f"Missing required parameter: {name!r}.",
                param=name,
                code="missing_required_parameter",
            )
    model = _field(data, "model", str, None)
    text = _field(data, "input", str, None)
    voice = data["voice"]
    if isinstance(voice, dict):  # {"id": "..."}: a custom voice, by our name
        voice = voice.get("id")
    if not isinstance(voice, str):
        raise OpenAIError("Invalid type for 'voice'.", param="voice", code="invalid_type")
    _field(data, "instructions", str, "")  # accepted; no backend here takes directions
    fmt_name = _field(data, "response_format", str, "mp3")
    speed = _field(data, "speed", (int, float), 1.0)
    stream_format = _field(data, "stream_format", str, "audio")
    if len(text) > MAX_INPUT_CHARS:
        raise OpenAIError(
            f"'input' is longer than {MAX_INPUT_CHARS} characters.",
            param="input",
            code="string_above_max_length",
        )
    if not has_speech(text):
        raise OpenAIError("'input' has nothing to speak.", param="input", code="invalid_value")
    if fmt_name not in FORMATS:
        supported = ", ".join(FORMATS)
        raise OpenAIError(
            f"Invalid value: {fmt_name!r}. Supported values are: {supported}.",
            param="response_format",
            code="invalid_value",
        )
    if isinstance(speed, bool) or not 0.25 <= float(speed) <= 4.0:
        raise OpenAIError("'speed' must be 0.25 to 4.0.", param="speed", code="invalid_value")
    if stream_format not in ("audio", "sse"):
        raise OpenAIError(
            f"Invalid value: {stream_format!r}. Supported values are: audio, sse.",
            param="stream_format",
            code="invalid_value",
        )
    settings = request.app[SETTINGS]
    tts = resolve_model(model, request.app[TTS])
    return SpeechRequest(
        tts=tts,
        input=text,
        voice=resolve_voice(voice, tts, settings),
        format=FORMATS[fmt_name],
        speed=float(speed),
        sse=stream_format == "sse",
    )


class SpeechBody:
    """The response, begun with the first audio (so that a failure before any can still be
    an HTTP error): the encoded bytes as they are, or each as a ``speech.audio.delta``."""

    def __init__(self, request: web.Request, speech: SpeechRequest) -> None:
        self._request = request
        self._sse = speech.sse
        self._content_type = "text/event-stream" if speech.sse else speech.format.content_type
        self.response: web.StreamResponse | None = None
        self.gone = False

    async def write(self, data: bytes) -> None:
        if self._sse:
            data = _sse({"type": "speech.audio.delta", "audio": base64.b64encode(data).decode()})
        await self._write(data)

    async def _write(self, data: bytes) -> None:
        if self.gone:
            return
        try:
            if self.response is None:
                response = web.StreamResponse(
                    headers={"Content-Type": self._content_type, **NO_BUFFERING}
                )
                response.enable_chunked_encoding()
                await response.prepare(self._request)
                self.response = response
            await self.response.write(data)
        except ConnectionError:
            self.gone = True

    async def finish(self, usage: dict[str, int]) -> None:
        if self._sse and self.response is not None:
            await self._write(_sse({"type": "speech.audio.done", "usage": usage}))
        if self.response is not None and not self.gone:
            with contextlib.suppress(ConnectionError):
                await self.response.write_eof()


def _sse(event: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(event, separators=(',', ':'))}\n\n".encode()


async def _speak(request: web.Request, speech: SpeechRequest) -> web.StreamResponse:
    app = request.app
    config = session_config(app[SETTINGS])
    body = SpeechBody(request, speech)
    metrics = app[METRICS].session(llm=GivenText.name, tts=speech.tts.name)
    passthrough = speech.format.name == "mp3" and speech.speed == 1.0
    failure: dict[str, Any] = {}
    audio_s = 0.0

    async def send(message: dict[str, Any], hold: bool) -> bool:
        nonlocal audio_s
        metrics.sent(message)
        action = message["action"]
        if action == "error":
            failure.setdefault("error", message["data"])
        elif action == "audio":
            audio = base64.b64decode(message["data"])
            audio_s += turn.seconds_of(audio)
            if passthrough:
                await body.write(audio)
            elif pcm := await to_pcm.add(message["sentence"], audio):
                await encoder.feed(pcm)
        elif action == "done" and not passthrough and (pcm := await to_pcm.flush()):
            await encoder.feed(pcm)
        return not body.gone

    turn_id = "speech-" + uuid.uuid4().hex[:8]
    turn = Turn(
        turn_id,
        [{"role": "user", "content": speech.input}],
        llm=GivenText(),
        tts=speech.tts,
        send=send,
        options=TurnOptions(
            voice=speech.voice,
            lookahead=config.lookahead,
            first_clause_chars=config.first_clause_chars,
            max_chunk_chars=config.max_chunk_chars,
            lead=0.0,  # as fast as it is made: the client's reading paces it (TCP)
            frame_ms=config.frame_ms,
            tts_timeout=config.tts_timeout,
            end_turn_on_tts_failure=config.end_turn_on_tts_failure,
            pcm_rate=None if passthrough else PCM_RATE,
        ),
    )
    to_pcm = TurnPcm(turn.pcm_rate)  # the backend's own PCM, or its MP3 decoded
    metrics.turn_started(turn_id)
    try:
        async with asyncio.TaskGroup() as group:
            encoder = pcm_encoder(speech.format, body.write, group, speed=speech.speed)
            watcher = group.create_task(watch_client(request, body), name="speech watcher")
            try:
                await turn.run()
                if not body.gone:
                    await encoder.finish()
            finally:
                await encoder.aclose()
            watcher.cancel()
    except* ClientGone:
        log.info("speech %s: the client went away; the turn was cancelled", turn_id)
    finally:
        metrics.closed()
    if body.response is None:
        error = failure.get("error", {"message": "the TTS made no audio", "code": "tts_failed"})
        return OpenAIError(
            error["message"], status=502, type="server_error", code=error["code"]
        ).response()
    seconds = audio_s / speech.speed
    text_tokens = math.ceil(len(speech.input) / CHARS_PER_TOKEN)
    audio_tokens = round(seconds * AUDIO_TOKENS_PER_S)
    usage = {
        "input_tokens": text_tokens,
        "output_tokens": audio_tokens,
        "total_tokens": text_tokens + audio_tokens,
    }
    await body.finish(usage)
    return body.response
