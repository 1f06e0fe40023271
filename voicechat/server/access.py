"""Who may connect: the ``Origin`` check, the shared-secret token and the session cap.

The origin and token checks run as middleware, before a WebSocket is upgraded and before
any work is done; the session cap needs an upgraded socket to say "try again later" (1013).
The access log written here never shows the token.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Final
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from voicechat.config import Settings
from voicechat.server.metrics import METRICS

log = logging.getLogger("voicechat.access")

WEBSOCKET_PATH: Final = "/ws"
PROTECTED_PATHS: Final = frozenset({WEBSOCKET_PATH, "/metrics"})  # the page and /healthz are open
_SECRET_QUERIES: Final = ("token", "resume")  # masked in the access log
_DEFAULT_PORTS: Final = {"http": 80, "https": 443, "ws": 80, "wss": 443}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _origin_key(scheme: str, host: str | None, port: int | None) -> tuple[str, int] | None:
    default = _DEFAULT_PORTS.get(scheme)
    if not host or default is None:
        return None
    return host.lower(), port or default


def _parse_origin(origin: str) -> tuple[str, int] | None:
    """``https://example.com`` → ``("example.com", 443)``; None for ``null`` and junk."""
    try:
        parts = urlsplit(origin.strip())
        return _origin_key(parts.scheme.lower(), parts.hostname, parts.port)
    except ValueError:  # a port that is not a number
        return None


class OriginPolicy:
    """Same origin (the Origin's host and port equal the request's ``Host``) or one of
    ``allowed`` (full origins, or ``*`` for any). A request without ``Origin`` is not from a
    browser page (CLI, tests) and is allowed: cross-site hijacking needs a browser."""

    def __init__(self, allowed: str) -> None:
        entries = [entry.strip() for entry in allowed.split(",") if entry.strip()]
        self.any = "*" in entries
        self.allowed = {key for e in entries if (key := _parse_origin(e)) is not None}

    def allows(self, origin: str | None, host: str) -> bool:
        if origin is None or self.any:
            return True
        key = _parse_origin(origin)
        if key is None:
            return False
        if key in self.allowed:
            return True
        try:
            own = urlsplit("//" + host)
            return key == _origin_key(urlsplit(origin).scheme.lower(), own.hostname, own.port)
        except ValueError:
            return False


def presented_token(request: web.Request) -> str | None:
    """The token of ``Authorization: Bearer <token>``, else of the ``?token=`` query (browsers
    cannot set headers on a WebSocket)."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.query.get("token")


def token_matches(presented: str | None, expected: str) -> bool:
    """Compare in constant time (bytes: ``compare_digest`` refuses non-ASCII ``str``)."""
    return presented is not None and hmac.compare_digest(
        presented.encode("utf-8"), expected.encode("utf-8")
    )


def access_middleware(settings: Settings) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Refuse a request to a protected path without the token (401) and a WebSocket from a
    foreign page (403), before its handler runs."""
    origins = OriginPolicy(settings.allowed_origins)

    @web.middleware
    async def check_access(request: web.Request, handler: Handler) -> web.StreamResponse:
        # The route that matched, not the raw path: no spelling of a URL gets around the check.
        resource = request.match_info.route.resource
        path = resource.canonical if resource is not None else request.path
        if path not in PROTECTED_PATHS:
            return await handler(request)
        metrics = request.app[METRICS]
        if settings.token is not None and not token_matches(
            presented_token(request), settings.token
        ):
            metrics.refused("token")
            log.info("refused %s from %s: no valid token", request.path, request.remote)
            raise web.HTTPUnauthorized(
                text="a valid token is required (?token= or Authorization: Bearer)",
                headers={"WWW-Authenticate": 'Bearer realm="voicechat"'},
            )
        origin = request.headers.get("Origin")
        if path == WEBSOCKET_PATH and not origins.allows(origin, request.host):
            metrics.refused("origin")
            log.info("refused %s from %s: origin %.100r", request.path, request.remote, origin)
            raise web.HTTPForbidden(text=f"origin {origin!r} is not allowed")
        return await handler(request)

    return check_access


async def refuse_when_full(
    request: web.Request, ws: web.WebSocketResponse, *, sessions: int, max_sessions: int
) -> bool:
    """Close ``ws`` with 1013 (try again later) when ``sessions`` is at the cap; True if so.
    It does not wait when there is room, so the caller can add its session without a race."""
    if sessions < max_sessions:
        return False
    request.app[METRICS].refused("full")
    log.info("refused %s: %d sessions, the maximum", request.remote, sessions)
    reason = f"server is full ({max_sessions} sessions); try again later"
    await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=reason.encode())
    return True


class AccessLog(AbstractAccessLogger):
    """One INFO line a request, like aiohttp's, but with the ``token`` and ``resume`` (a
    session's resume token) queries masked and no headers (a page opened as ``/?token=...``
    sends it on as ``Referer``)."""

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        url = request.rel_url
        secrets = {key: "***" for key in _SECRET_QUERIES if key in url.query}
        if secrets:
            url = url.update_query(secrets)
        self.logger.info(
            '%s "%s %s" %s %.3fs', request.remote, request.method, url, response.status, time
        )
