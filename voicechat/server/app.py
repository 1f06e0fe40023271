"""The aiohttp application: routes, static ``web/``, and the lifetimes of backends and sessions.

Each wire protocol has its module (:mod:`~voicechat.server.ws`,
:mod:`~voicechat.server.http_speak`); this one mounts them and owns what they share (the keys
in :mod:`~voicechat.server.keys`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import WSCloseCode, web

from voicechat import PROTOCOL_VERSION, __version__
from voicechat.config import Settings
from voicechat.llm.base import LLMBackend, create_llm
from voicechat.server.access import AccessLog
from voicechat.server.gates import SEATS, Gate, Seats, gates_middleware, protect, security_headers
from voicechat.server.http_speak import speak_handler
from voicechat.server.keys import (
    LLM,
    PARKING,
    REALTIME,
    SESSIONS,
    SETTINGS,
    SPEAKING,
    TTS,
    TTS_PROBE,
)
from voicechat.server.metrics import METRICS, Metrics, metrics_handler
from voicechat.server.openai_api import models_handler, voice_overrides
from voicechat.server.openai_api import voices_handler as openai_voices_handler
from voicechat.server.openai_speech import speech_handler
from voicechat.server.realtime import realtime_handler
from voicechat.server.resume import SessionParking
from voicechat.server.session import Session
from voicechat.server.ws import websocket_handler
from voicechat.tts.base import TTSBackend
from voicechat.tts.catalog import describe_voices
from voicechat.tts.registry import create_tts

log = logging.getLogger("voicechat.server")


def create_app(
    settings: Settings, *, llm: LLMBackend | None = None, tts: TTSBackend | None = None
) -> web.Application:
    """Build the app. Backends not passed in are created from ``settings`` at start-up
    (Piper loads its voice then, not on the first prompt) and closed at clean-up."""
    app = web.Application(
        client_max_size=settings.max_message_bytes,
        middlewares=[gates_middleware(settings)],
        # The keep-alive timer also runs from connect to the first request's headers: slow
        # headers (and a connection that sends nothing) are closed after header_timeout.
        handler_args={"access_log_class": AccessLog, "keepalive_timeout": settings.header_timeout},
    )
    voice_overrides(settings)  # a bad VOICECHAT_OPENAI_VOICES fails here, not per request
    app[SETTINGS] = settings
    app[SESSIONS] = set()
    app[SPEAKING] = set()
    app[REALTIME] = set()
    app[SEATS] = Seats(total=settings.max_sessions, per_address=settings.max_sessions_per_ip)
    app[PARKING] = SessionParking(
        settings.resume_window,
        max_parked=settings.max_parked,
        per_address=settings.max_parked_per_ip,
    )
    app[METRICS] = Metrics(
        active_sessions=lambda: len(app[SEATS]), parked_sessions=lambda: len(app[PARKING])
    )
    app.cleanup_ctx.append(_backends(llm, tts))
    app.on_shutdown.append(_close_sessions)
    app.on_response_prepare.append(security_headers)
    protect(app, "/ws")
    protect(app, "/metrics")
    protect(app, "/v1/speak", Gate(json_body=True))
    app.router.add_get("/ws", websocket_handler)
    app.router.add_get("/healthz", health_handler)
    app.router.add_post("/v1/speak", speak_handler)
    app.router.add_get("/voices", voices_handler)
    # OpenAI's interfaces (docs/openai-compatible.md)
    app.router.add_post("/v1/audio/speech", speech_handler)
    app.router.add_get("/v1/audio/voices", openai_voices_handler)
    app.router.add_get("/v1/models", models_handler)
    app.router.add_get("/v1/realtime", realtime_handler)
    app.router.add_get("/metrics", metrics_handler)
    if settings.web_dir.is_dir():
        app.router.add_get("/", index_handler)
        app.router.add_static("/", settings.web_dir, show_index=False)
    return app


def _backends(llm: LLMBackend | None, tts: TTSBackend | None) -> Any:
    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        # A local model loads here (seconds), off the event loop.
        app[LLM] = (
            llm
            if llm is not None
            else await asyncio.to_thread(create_llm, settings.llm_backend, settings)
        )
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
    for turn in app[SPEAKING]:  # HTTP turns end now, and their bodies end properly
        turn.cancel()
    sessions: list[Session] = [*app[SESSIONS]]
    closing = [
        *(s.close(code=WSCloseCode.GOING_AWAY, reason="server shutting down") for s in sessions),
        *(
            ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")
            for ws in [*app[REALTIME]]
        ),
    ]
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
            "sessions": len(app[SEATS]),  # live: WebSocket sessions and HTTP turns
            "parked": len(app[PARKING]),  # dropped, resumable
        }
    )


async def voices_handler(request: web.Request) -> web.Response:
    tts = request.app[TTS]
    voices = await describe_voices(tts)
    return web.json_response({"tts": tts.name, "voices": [v.as_json() for v in voices]})
