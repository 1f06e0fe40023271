"""What the OpenAI-compatible routes share: errors in OpenAI's shape, the one access gate
each route calls, voice and model names, and ``GET /v1/models`` and ``GET /v1/audio/voices``.

OpenAI's voice names are mapped onto the configured backend's voices (:data:`DEFAULT_VOICE_MAP`,
overridden by ``Settings.openai_voices``); every voicechat voice name is accepted as it is.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from aiohttp import web

from voicechat.config import Settings
from voicechat.errors import ConfigError
from voicechat.server.access import OriginPolicy, presented_token, token_matches
from voicechat.server.gates import RETRY_AFTER_S, SEATS, client_address
from voicechat.server.keys import SETTINGS, TTS
from voicechat.server.metrics import METRICS
from voicechat.tts.base import TTSBackend
from voicechat.tts.fallback import FallbackTTS

log = logging.getLogger("voicechat.openai")

OPENAI_VOICES: Final = (
    "alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer",
    "verse", "marin", "cedar",
)  # fmt: skip
# OpenAI's speech models; each speaks with the configured backend (or chain) as a whole.
OPENAI_MODELS: Final = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts", "voicechat")
# For each OpenAI voice, the voices that stand in for it, by backend (the first one the
# backend has wins; none: the default voice). Edge voices by timbre, tone by pitch.
DEFAULT_VOICE_MAP: Final[Mapping[str, tuple[str, ...]]] = {
    "alloy": ("en-US-AvaMultilingualNeural", "tone-high"),
    "ash": ("en-US-AndrewMultilingualNeural", "tone-low"),
    "ballad": ("en-GB-RyanNeural", "tone-low"),
    "coral": ("en-US-JennyNeural", "tone-high"),
    "echo": ("en-US-GuyNeural", "tone-low"),
    "fable": ("en-GB-SoniaNeural", "tone-high"),
    "nova": ("en-US-EmmaMultilingualNeural", "tone-high"),
    "onyx": ("en-US-BrianMultilingualNeural", "tone-low"),
    "sage": ("en-US-AriaNeural", "tone-high"),
    "shimmer": ("en-GB-SoniaNeural", "tone-high"),
    "verse": ("en-US-AndrewMultilingualNeural", "tone-low"),
    "marin": ("en-US-EmmaMultilingualNeural", "tone-high"),
    "cedar": ("en-US-GuyNeural", "tone-low"),
}


class OpenAIError(Exception):
    """A request refused in OpenAI's words: ``{"error": {message, type, param, code}}``."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def response(self) -> web.Response:
        return web.json_response(self.body(), status=self.status, headers=self.headers)


def check_access(request: web.Request, *, origin_check: bool) -> None:
    """The gates of an OpenAI route, in one place: the server's token is the API key
    (``Authorization: Bearer``, else ``?token=``; ignored when the server has none), and,
    for ``origin_check``, the ``Origin`` of a browser page. Raises :class:`OpenAIError`."""
    settings = request.app[SETTINGS]
    metrics = request.app[METRICS]
    given = presented_token(request) or realtime_subprotocol_key(request)
    if settings.token is not None and not token_matches(given, settings.token):
        metrics.refused("token")
        log.info("refused %s from %s: no valid key", request.path, request.remote)
        message = "Incorrect API key provided." if given else "You didn't provide an API key."
        raise OpenAIError(message, status=401, code="invalid_api_key" if given else None)
    origin = request.headers.get("Origin")
    if origin_check and not OriginPolicy(settings.allowed_origins).allows(origin, request.host):
        metrics.refused("origin")
        raise OpenAIError(f"origin {origin!r} is not allowed", status=403, code="origin")


def take_seat(request: web.Request) -> Callable[[], None]:
    """One live seat of the session cap (:class:`~voicechat.server.gates.Seats`, shared with
    ``/ws`` and ``/v1/speak``, per client address too); returns what gives it back. Raises a
    503 :class:`OpenAIError` (``Retry-After``) when there is none."""
    seats, address = request.app[SEATS], client_address(request)
    refusal = seats.take(address)
    if refusal is not None:
        request.app[METRICS].refused(refusal)
        raise OpenAIError(
            seats.explain(refusal),
            status=503,
            type="server_error",
            code="server_overloaded",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    return lambda: seats.give_back(address)


def realtime_subprotocol_key(request: web.Request) -> str | None:
    """The key a browser sends as the ``openai-insecure-api-key.<key>`` subprotocol."""
    for protocol in request.headers.get("Sec-WebSocket-Protocol", "").split(","):
        protocol = protocol.strip()
        if protocol.startswith("openai-insecure-api-key."):
            return protocol.removeprefix("openai-insecure-api-key.")
    return None


def voice_overrides(settings: Settings) -> dict[str, str]:
    """``Settings.openai_voices`` (``alloy=en-US-AriaNeural,echo=tone-low``) as a dict."""
    overrides: dict[str, str] = {}
    for entry in filter(None, (e.strip() for e in settings.openai_voices.split(","))):
        name, sep, voice = entry.partition("=")
        if not sep or not name.strip() or not voice.strip():
            raise ConfigError(f"openai_voices: {entry!r} is not name=voice")
        overrides[name.strip()] = voice.strip()
    return overrides


def resolve_voice(name: str, tts: TTSBackend, settings: Settings) -> str | None:
    """The backend voice for ``name`` (None: the default voice). Raises for unknown names."""
    ours = tts.voices()
    override = voice_overrides(settings).get(name)
    if override is not None and override in ours:
        return override
    if name in ours:
        return name
    if name in DEFAULT_VOICE_MAP:
        return next((v for v in DEFAULT_VOICE_MAP[name] if v in ours), settings.voice)
    supported = ", ".join([*OPENAI_VOICES, *ours])
    raise OpenAIError(
        f"Invalid value: {name!r}. Supported values are: {supported}.",
        param="voice",
        code="invalid_value",
    )


def backend_names(tts: TTSBackend) -> list[str]:
    """The model names that select a backend: the configured one and, for a chain, each
    of its members alone."""
    names = [tts.name]
    if isinstance(tts, FallbackTTS):
        names += [member.name for member in tts.backends]
    return names


def resolve_model(model: str, tts: TTSBackend) -> TTSBackend:
    """The backend ``model`` names: OpenAI's model names (and ``gpt-4o-mini-tts-*``) are the
    configured backend or chain, a member's name is that member alone."""
    if model in OPENAI_MODELS or model.startswith("gpt-4o-mini-tts") or model == tts.name:
        return tts
    if isinstance(tts, FallbackTTS):
        for member in tts.backends:
            if member.name == model:
                return member
    supported = ", ".join([*OPENAI_MODELS, *backend_names(tts)])
    raise OpenAIError(
        f"The model {model!r} does not exist. Models: {supported}.",
        status=404,
        param="model",
        code="model_not_found",
    )


_STARTED = int(time.time())


async def models_handler(request: web.Request) -> web.Response:
    try:
        check_access(request, origin_check=False)
    except OpenAIError as exc:
        return exc.response()
    names = dict.fromkeys([*OPENAI_MODELS, *backend_names(request.app[TTS])])
    models = [
        {"id": name, "object": "model", "created": _STARTED, "owned_by": "voicechat"}
        for name in names
    ]
    return web.json_response({"object": "list", "data": models})


async def voices_handler(request: web.Request) -> web.Response:
    """``{"voices": [names]}`` (OpenAI's names, then the backend's), and what each OpenAI
    name stands for."""
    try:
        check_access(request, origin_check=False)
    except OpenAIError as exc:
        return exc.response()
    tts, settings = request.app[TTS], request.app[SETTINGS]
    aliases = {
        name: resolve_voice(name, tts, settings) or tts.voices()[0] for name in OPENAI_VOICES
    }
    return web.json_response(
        {"voices": list(dict.fromkeys([*OPENAI_VOICES, *tts.voices()])), "aliases": aliases}
    )
