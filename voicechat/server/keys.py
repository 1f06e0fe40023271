"""The app's shared state, by key: what every route module reads from ``request.app``.

Kept apart from :mod:`~voicechat.server.app` so that the route modules the app mounts can
import them without importing the app (no import circle).
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from voicechat.config import Settings
from voicechat.llm.base import LLMBackend
from voicechat.server.resume import SessionParking
from voicechat.server.session import Session
from voicechat.tts.base import TTSBackend

SETTINGS = web.AppKey("settings", Settings)
LLM = web.AppKey("llm", LLMBackend)
TTS = web.AppKey("tts", TTSBackend)
SESSIONS = web.AppKey("sessions", set[Session])
PARKING = web.AppKey("parking", SessionParking[Session])
SPEAKING = web.AppKey("speaking", set[asyncio.Task[None]])  # HTTP turns in flight
REALTIME = web.AppKey("realtime", set[web.WebSocketResponse])  # open /v1/realtime sockets
TTS_PROBE = web.AppKey("tts_probe", asyncio.Task[None])
