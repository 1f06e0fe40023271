"""``GET /ws``: the native WebSocket protocol (docs/protocol.md), one :class:`Session` a socket."""

from __future__ import annotations

import asyncio
import hmac
import logging

from aiohttp import WSCloseCode, WSMsgType, web

from voicechat import logs
from voicechat.errors import BadRequest
from voicechat.server.access import refuse_without_seat
from voicechat.server.client_frames import ClientWebSocket
from voicechat.server.gates import SEATS, client_address
from voicechat.server.keys import LLM, PARKING, SESSIONS, SETTINGS, TTS
from voicechat.server.limits import TokenBucket, receive_until_idle
from voicechat.server.metrics import METRICS
from voicechat.server.session import Session, session_config

log = logging.getLogger("voicechat.server")

CLOSE_TIMEOUT = 2.0  # seconds to wait for the client's answer to our close frame


async def websocket_handler(request: web.Request) -> web.WebSocketResponse:
    app = request.app
    settings = app[SETTINGS]
    ws = ClientWebSocket(
        heartbeat=settings.heartbeat,
        max_msg_size=settings.max_message_bytes,
        compress=False,  # base64 MP3 does not deflate; compression would only cost CPU
        timeout=CLOSE_TIMEOUT,
    )
    await ws.prepare(request)
    address = client_address(request)
    refusal = app[SEATS].take(address)
    if refusal is not None:
        await refuse_without_seat(request, ws, refusal, app[SEATS].explain(refusal))
        return ws
    try:
        await _serve(request, ws, address)
    finally:
        app[SEATS].give_back(address)
    return ws


async def _serve(request: web.Request, ws: web.WebSocketResponse, address: str) -> None:
    app = request.app
    settings = app[SETTINGS]
    session = await _resume(request, ws)
    if session is None:
        session = Session(
            ws,
            llm=app[LLM],
            tts=app[TTS],
            config=session_config(settings),
            transport=request.transport,
            limiter=TokenBucket(rate=settings.control_rate, burst=settings.control_burst),
            metrics=app[METRICS].session(llm=app[LLM].name, tts=app[TTS].name),
            address=address,
        )
        logs.bind_session(session.id)
        await session.hello()
        log.info("session %s: connected", session.id)
    else:
        logs.bind_session(session.id)
    app[SESSIONS].add(session)
    messages = receive_until_idle(
        ws, idle_timeout=settings.idle_timeout, turn_task=lambda: session.turn_task
    )
    try:
        async for message in messages:
            if message.type is WSMsgType.TEXT:
                await session.receive_text(message.data)
            elif message.type is WSMsgType.BINARY:
                await session.send_error(
                    BadRequest("binary frames are not supported; send JSON text")
                )
            elif message.type is WSMsgType.ERROR:
                log.info("session %s: socket error %s", session.id, ws.exception())
    finally:
        await messages.aclose()
        app[SESSIONS].discard(session)
        if session.taken_over:
            session.let_go()  # the new connection carries the session on
            log.info("session %s: taken over by a new connection", session.id)
        elif session.resumable():
            session.detach()
            app[PARKING].park(session)
            if not ws.closed:  # it is dead; closing it releases its heartbeat timer
                await asyncio.shield(ws.close(code=WSCloseCode.GOING_AWAY))
        else:
            # aiohttp may cancel this handler when the peer goes away; clean up all the same.
            await asyncio.shield(session.close(code=WSCloseCode.GOING_AWAY))
            log.info("session %s: closed", session.id)


def _live_session(request: web.Request, token: str) -> Session | None:
    return next((s for s in request.app[SESSIONS] if hmac.compare_digest(s.token, token)), None)


async def _resume(request: web.Request, ws: web.WebSocketResponse) -> Session | None:
    """The session named by ``?resume=TOKEN`` (with ``turn`` and ``seq``, the last audio
    frame the client saw, and ``paused=1|0``, how the client wants that turn), attached to
    ``ws``; None for a new session. A session whose old connection still looks alive (it may
    be half-open) is taken over: that connection is dropped at once."""
    token = request.query.get("resume", "")
    if not token.isascii():
        return None
    session = request.app[PARKING].claim(token) if token else None
    if session is None and token and (session := _live_session(request, token)) is not None:
        await session.take_over(within=CLOSE_TIMEOUT)
    if session is None:
        return None
    try:
        seq = int(request.query.get("seq", "-1"))
    except ValueError:
        seq = -1
    paused = {"1": True, "0": False}.get(request.query.get("paused", ""))  # else: unchanged
    await session.attach(
        ws, request.transport, turn_id=request.query.get("turn"), seq=seq, paused=paused
    )
    return session
