"""The pieces of who may connect: the ``Origin`` policy, the shared-secret token, the
WebSocket's "server full" refusal and an access log that never shows a secret. They are
applied to routes by :mod:`voicechat.server.gates`."""

from __future__ import annotations

import hmac
import logging
from typing import Final
from urllib.parse import quote, urlsplit

from aiohttp import WSCloseCode, web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse
from yarl import URL

from voicechat.server.metrics import METRICS

log = logging.getLogger("voicechat.access")

_PLAIN_QUERIES: Final = frozenset({"turn", "seq", "paused"})  # logged; any other value is not
_DEFAULT_PORTS: Final = {"http": 80, "https": 443, "ws": 80, "wss": 443}


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
    # surrogateescape: aiohttp decodes a header's stray non-UTF-8 bytes to lone surrogates.
    return presented is not None and hmac.compare_digest(
        presented.encode("utf-8", "surrogateescape"), expected.encode("utf-8")
    )


async def refuse_without_seat(
    request: web.Request, ws: web.WebSocketResponse, reason: str, message: str
) -> None:
    """Close ``ws`` with 1013 (try again later): no live seat (``reason``: full, address)."""
    request.app[METRICS].refused(reason)
    log.info("refused %s: no seat (%s)", request.remote, reason)
    await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=message.encode())


class AccessLog(AbstractAccessLogger):
    """One INFO line a request, like aiohttp's, but with the ``token`` and ``resume`` (a
    session's resume token) queries masked and no headers (a page opened as ``/?token=...``
    sends it on as ``Referer``)."""

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %s %.3fs',
            request.remote,
            request.method,
            masked_target(request.rel_url),
            response.status,
            time,
        )


def masked_target(url: URL) -> str:
    """The path and query with every value masked but the resume position's (``turn``,
    ``seq``, ``paused``, when short and plain): no spelling of a token (``?TOKEN=``,
    ``;token=``) reaches the log."""
    if not url.raw_query_string:
        return url.raw_path
    parts = []
    for key, value in url.query.items():
        plain = key in _PLAIN_QUERIES and len(value) <= 64 and value.isascii() and value.isalnum()
        parts.append(f"{quote(key[:32], safe='')}={value if plain else '***'}")
    return f"{url.raw_path}?{'&'.join(parts)}"
