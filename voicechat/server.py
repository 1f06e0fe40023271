"""The aiohttp application: routes, static ``web/``, and the lifetimes of backends and sessions."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from voicechat import PROTOCOL_VERSION, __version__, logs
from voicechat.access import AccessLog, access_middleware, refuse_when_full
from voicechat.config import Settings
from voicechat.errors import BadRequest
from voicechat.limits import TokenBucket, receive_until_idle
from voicechat.llm.base import LLMBackend, create_llm
from voicechat.metrics import METRICS, Metrics, metrics_handler
from voicechat.resume import SessionParking
from voicechat.session import Session, SessionConfig
from voicechat.tts.base import TTSBackend, create_tts
from voicechat.tts.catalog import describe_voices

log = logging.getLogger("voicechat.server")

CLOSE_TIMEOUT = 2.0  # seconds to wait for the client's answer to our close frame

SETTINGS = web.AppKey("settings", Settings)
LLM = web.AppKey("llm", LLMBackend)
TTS = web.AppKey("tts", TTSBackend)
SESSIONS = web.AppKey("sessions", set[Session])
PARKING = web.AppKey("parking", SessionParking)
TTS_PROBE = web.AppKey("tts_probe", asyncio.Task[None])


def create_app(
    settings: Settings, *, llm: LLMBackend | None = None, tts: TTSBackend | None = None
) -> web.Application:
    """Build the app. Backends not passed in are created from ``settings`` at start-up
    (Piper loads its voice then, not on the first prompt) and closed at clean-up."""
    app = web.Application(
        client_max_size=settings.max_message_bytes,
        middlewares=[access_middleware(settings)],
        handler_args={"access_log_class": AccessLog},
    )
    app[SETTINGS] = settings
    app[SESSIONS] = set()
    app[PARKING] = SessionParking(settings.resume_window)
    app[METRICS] = Metrics(active_sessions=lambda: len(app[SESSIONS]))
    app.cleanup_ctx.append(_backends(llm, tts))
    app.on_shutdown.append(_close_sessions)
    app.router.add_get("/ws", websocket_handler)
    app.router.add_get("/healthz", health_handler)
    from voicechat.http_speak import speak_handler  # it imports this module's AppKeys

    app.router.add_post("/v1/speak", speak_handler)
    app.router.add_get("/voices", voices_handler)
    app.router.add_get("/metrics", metrics_handler)
    if settings.web_dir.is_dir():
        app.router.add_get("/", index_handler)
        app.router.add_static("/", settings.web_dir, show_index=False)
    return app


def _backends(llm: LLMBackend | None, tts: TTSBackend | None) -> Any:
    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        app[LLM] = llm or create_llm(settings.llm_backend, settings)
        # Piper loads its voice model here (about 0.5 s), off the event loop.
        app[TTS] = (
            tts if tts is not None else await asyncio.to_thread(create_tts, settings.tts, settings)
        )
        log.info("backends: llm=%s tts=%s", app[LLM].name, app[TTS].name)
        # A chain the app made finds out what it cannot reach (a backend passed in is the
        # caller's to probe).
        probe = getattr(app[TTS], "probe", None) if tts is None else None
        app[TTS_PROBE] = asyncio.create_task(probe() if probe else asyncio.sleep(0))
        yield
        app[TTS_PROBE].cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await app[TTS_PROBE]
        if llm is None:
            await app[LLM].aclose()
        if tts is None:
            await app[TTS].aclose()

    return lifetime


async def _close_sessions(app: web.Application) -> None:
    sessions: list[Session] = [*app[SESSIONS]]
    closing = (
        s.close(code=WSCloseCode.GOING_AWAY, reason="server shutting down") for s in sessions
    )
    # A client that never answers our close frame must not hold the exit up.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(app[SETTINGS].shutdown_timeout):
            await asyncio.gather(*closing)
    await app[PARKING].close_all()


async def index_handler(request: web.Request) -> web.FileResponse:
    return web.FileResponse(request.app[SETTINGS].web_dir / "index.html")


async def health_handler(request: web.Request) -> web.Response:
    app = request.app
    return web.json_response(
        {
            "status": "ok",
            "version": __version__,
            "protocol": PROTOCOL_VERSION,
            "llm": app[LLM].name,
            "tts": app[TTS].name,
            "sessions": len(app[SESSIONS]),
        }
    )


async def voices_handler(request: web.Request) -> web.Response:
    tts = request.app[TTS]
    voices = await describe_voices(tts)
    return web.json_response({"tts": tts.name, "voices": [v.as_json() for v in voices]})


def session_config(settings: Settings) -> SessionConfig:
    return SessionConfig(
        system_prompt=settings.system_prompt,
        default_voice=settings.voice,
        lookahead=settings.lookahead,
        first_clause_chars=settings.first_clause_chars,
        max_chunk_chars=settings.max_chunk_chars,
        max_prompt_chars=settings.max_prompt_chars,
        lead=settings.lead,
        frame_ms=settings.frame_ms,
        tts_timeout=settings.tts_timeout,
        end_turn_on_tts_failure=settings.tts_failure == "end",
        send_timeout=settings.send_timeout,
        resume_window=settings.resume_window,
        replay_bytes=settings.replay_bytes,
        history_turns=settings.history_turns,
    )


async def websocket_handler(request: web.Request) -> web.WebSocketResponse:
    app = request.app
    settings = app[SETTINGS]
    ws = web.WebSocketResponse(
        heartbeat=settings.heartbeat,
        max_msg_size=settings.max_message_bytes,
        compress=False,  # base64 MP3 does not deflate; compression would only cost CPU
        timeout=CLOSE_TIMEOUT,
    )
    await ws.prepare(request)
    session = await _resume(request, ws)
    if session is None:
        # Parked sessions (dropped, resumable) still hold their turn: they count too.
        sessions = len(app[SESSIONS]) + len(app[PARKING])
        if await refuse_when_full(
            request, ws, sessions=sessions, max_sessions=settings.max_sessions
        ):
            return ws
        session = Session(
            ws,
            llm=app[LLM],
            tts=app[TTS],
            config=session_config(settings),
            transport=request.transport,
            limiter=TokenBucket(rate=settings.control_rate, burst=settings.control_burst),
            metrics=app[METRICS].session(llm=app[LLM].name, tts=app[TTS].name),
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
        if session.resumable():
            session.detach()
            app[PARKING].park(session)
            if not ws.closed:  # it is dead; closing it releases its heartbeat timer
                await asyncio.shield(ws.close(code=WSCloseCode.GOING_AWAY))
        else:
            # aiohttp may cancel this handler when the peer goes away; clean up all the same.
            await asyncio.shield(session.close(code=WSCloseCode.GOING_AWAY))
            log.info("session %s: closed", session.id)
    return ws


async def _resume(request: web.Request, ws: web.WebSocketResponse) -> Session | None:
    """The parked session named by ``?resume=TOKEN`` (with ``turn`` and ``seq``, the last audio
    frame the client saw, and ``paused=1|0``, how the client wants that turn), attached to
    ``ws``; None for a new session."""
    token = request.query.get("resume")
    session = request.app[PARKING].claim(token) if token else None
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
