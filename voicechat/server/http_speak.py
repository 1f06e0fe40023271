"""``POST /v1/speak``: one prompt in, its speech out, over plain HTTP.

    curl -N -X POST -d '{"prompt":"hi"}' http://127.0.0.1:8765/v1/speak > answer.mp3

The body is the ``data`` of a WebSocket ``start`` (``{"prompt", "voice"?, "id"?}``), validated
the same way; a bad request is answered before anything streams, with an HTTP status and
``{"error": {"code", "message"}}``. The answer is ``audio/mpeg``, written (chunked) as each
sentence is synthesized; with ``Accept: text/event-stream`` it is the WebSocket's events as
server-sent events instead. One :class:`~voicechat.pipeline.turn.Turn` does the work, driven by the
response writers below; when the client goes away the turn is cancelled, which closes the LLM
stream and every synthesis.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import uuid
from typing import Any, Protocol

from aiohttp import web

from voicechat import protocol
from voicechat.errors import BadJson, BadRequest, ProtocolError, TooLarge
from voicechat.pipeline.turn import Turn
from voicechat.server.gates import hold_seat
from voicechat.server.keys import LLM, SETTINGS, SPEAKING, TTS
from voicechat.server.limits import read_body
from voicechat.server.metrics import METRICS
from voicechat.server.session import session_config, turn_options

log = logging.getLogger("voicechat.http")

STATUS = {"bad_json": 400, "bad_request": 400, "too_large": 413}
BACKEND_STATUS = 502  # the LLM or TTS failed before any audio was sent
# aiohttp tells a handler that its client left only by cancelling it, and only when the whole
# server runs with handler_cancellation; the transport is what knows, so it is looked at.
DISCONNECT_POLL_S = 0.1
NO_BUFFERING = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def error_response(code: str, message: str, *, status: int) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


class ClientGone(Exception):
    """The HTTP client closed the connection before the answer was complete."""


class Departure(Protocol):
    gone: bool  # set once a write found the client gone


class _Writer(Departure, Protocol):
    async def open(self, ready: dict[str, Any]) -> None: ...
    async def send(self, message: dict[str, Any], hold_while_paused: bool) -> bool: ...
    async def finish(self) -> web.StreamResponse: ...


async def speak_handler(request: web.Request) -> web.StreamResponse:
    """Behind the gates of :mod:`~voicechat.server.gates` (token, Origin, JSON only, a seat)."""
    async with hold_seat(request):
        return await _speak(request)


async def _speak(request: web.Request) -> web.StreamResponse:
    app = request.app
    settings = app[SETTINGS]
    try:
        start = await _read_start(
            request,
            max_prompt_chars=settings.max_prompt_chars,
            body_seconds=settings.header_timeout,
        )
        if not start.audio:
            raise BadRequest('this route always speaks; for text only, use /ws with "audio": false')
        voice = start.voice or settings.voice
        if voice is not None and voice not in app[TTS].voices():
            raise BadRequest(f"unknown voice {voice!r}; voices: {', '.join(app[TTS].voices())}")
    except ProtocolError as exc:
        return error_response(exc.code, exc.message, status=STATUS.get(exc.code, 400))
    events = "text/event-stream" in request.headers.get("Accept", "")
    writer: _Writer = EventWriter(request) if events else AudioWriter(request)
    config = session_config(settings)
    metrics = app[METRICS].session(llm=app[LLM].name, tts=app[TTS].name)

    async def send(message: dict[str, Any], hold_while_paused: bool) -> bool:
        written = await writer.send(message, hold_while_paused)
        if written:
            metrics.sent(message)
        return written

    turn = Turn(
        start.turn_id or "t1",
        [
            {"role": "system", "content": config.system_prompt},
            {"role": "user", "content": start.prompt},
        ],
        llm=app[LLM],
        tts=app[TTS],
        send=send,
        options=turn_options(config, voice),  # the same pacing and failure rules as /ws
    )
    await writer.open(
        protocol.ready_event(
            session_id=uuid.uuid4().hex[:12],
            sample_rate=app[TTS].sample_rate,
            llm=app[LLM].name,
            tts=app[TTS].name,
            voices=app[TTS].voices(),
        )
    )
    metrics.turn_started(turn.id)
    task = asyncio.create_task(_run(request, turn, writer), name=f"speak {turn.id}")
    app[SPEAKING].add(task)  # shutdown cancels it; the body still ends properly
    try:
        await asyncio.wait([task])
    finally:
        app[SPEAKING].discard(task)
        if not task.done():  # this handler was cancelled: so is the turn
            task.cancel()
            await asyncio.wait([task])
        metrics.closed()
    return await writer.finish()


async def _run(request: web.Request, turn: Turn, writer: _Writer) -> None:
    try:
        async with asyncio.TaskGroup() as group:
            watcher = group.create_task(watch_client(request, writer), name="speak watcher")
            await turn.run()
            watcher.cancel()
    except* ClientGone:
        log.info("speak %s: the client went away; the turn was cancelled", turn.id)


async def _read_start(
    request: web.Request, *, max_prompt_chars: int, body_seconds: float
) -> protocol.Start:
    try:
        body = await read_body(request, within=body_seconds)
    except web.HTTPRequestEntityTooLarge as exc:
        raise TooLarge(f"the body is larger than {request.client_max_size} bytes") from exc
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise BadJson(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BadRequest('the body must be a JSON object: {"prompt": "..."}')
    return protocol.parse_start(data, max_prompt_chars=max_prompt_chars)


async def watch_client(request: web.Request, writer: Departure) -> None:
    """Raise :class:`ClientGone` once the client has left (shared by the HTTP speech routes)."""
    while not writer.gone:
        transport = request.transport
        if transport is None or transport.is_closing():
            break
        await asyncio.sleep(DISCONNECT_POLL_S)
    raise ClientGone


class EventWriter:
    """The turn's events as server-sent events: ``event: <action>`` / ``data: <json>``."""

    def __init__(self, request: web.Request) -> None:
        self._request = request
        self._response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream; charset=utf-8", **NO_BUFFERING}
        )
        self.gone = False

    async def open(self, ready: dict[str, Any]) -> None:
        await self._response.prepare(self._request)
        await self.send(ready, False)

    async def send(self, message: dict[str, Any], hold_while_paused: bool) -> bool:
        if self.gone:
            return False
        frame = f"event: {message['action']}\ndata: {protocol.dump(message)}\n\n"
        try:
            await self._response.write(frame.encode())
        except ConnectionError:
            self.gone = True
            return False
        return True

    async def finish(self) -> web.StreamResponse:
        if not self.gone:
            with contextlib.suppress(ConnectionError):
                await self._response.write_eof()
        return self._response


class AudioWriter:
    """The MP3 bytes of the ``audio`` events, nothing else. The response starts with the first
    audio, so that a turn that fails before any (LLM down) can still answer with an error."""

    def __init__(self, request: web.Request) -> None:
        self._request = request
        self._response: web.StreamResponse | None = None
        self._error: dict[str, Any] | None = None
        self.gone = False

    async def open(self, ready: dict[str, Any]) -> None:
        return None

    async def send(self, message: dict[str, Any], hold_while_paused: bool) -> bool:
        if self.gone:
            return False
        if message["action"] == "error":
            self._error = self._error or message["data"]
        if message["action"] != "audio":
            return True
        try:
            if self._response is None:
                response = web.StreamResponse(
                    headers={"Content-Type": "audio/mpeg", **NO_BUFFERING}
                )
                response.enable_chunked_encoding()
                await response.prepare(self._request)
                self._response = response
            await self._response.write(base64.b64decode(message["data"]))
        except ConnectionError:
            self.gone = True
            return False
        return True

    async def finish(self) -> web.StreamResponse:
        if self._response is None:
            if self._error is not None:
                error = self._error
                return error_response(error["code"], error["message"], status=BACKEND_STATUS)
            return web.Response(status=200, content_type="audio/mpeg", headers=NO_BUFFERING)
        if not self.gone:
            with contextlib.suppress(ConnectionError):
                await self._response.write_eof()
        return self._response
