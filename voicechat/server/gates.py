"""The gates every route passes, as reusable pieces (docs/security.md says what each protects).

:func:`gates_middleware` runs before any handler: the ``Host`` check on every route (DNS
rebinding), then, on the routes declared with :func:`protect`, the token, the ``Origin``
check and (for a route that reads a body) ``Content-Type: application/json`` only. The seat
cap is :class:`Seats`: a WebSocket takes one with :meth:`Seats.take`, an HTTP route with
``async with hold_seat(request):`` (503 with ``Retry-After`` when full). A new route applies
all of them with one :func:`protect` call and, if it runs a turn, one ``hold_seat``::

    protect(app, "/v1/audio/speech", Gate(json_body=True))
    async def speech_handler(request):
        async with hold_seat(request):
            ...

Refusals are counted in ``voicechat_connections_refused_total{reason}``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from voicechat.config import Settings
from voicechat.server.access import OriginPolicy, presented_token, token_matches
from voicechat.server.metrics import METRICS

# Never served from --web-dir: npm's install of the web tests' tools (web/node_modules).
UNSERVED = frozenset({"node_modules"})

log = logging.getLogger("voicechat.access")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
WILDCARD_BINDS: Final = frozenset({"", "0.0.0.0", "::", "*"})
RETRY_AFTER_S: Final = 1
CONTENT_SECURITY_POLICY: Final = (
    # blob: for the MediaSource the player feeds; data: for the page's empty icon.
    "default-src 'self'; media-src 'self' blob:; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


@dataclass(frozen=True, slots=True)
class Gate:
    """What a protected route requires beyond the Host check: the token (when the server has
    one), an allowed ``Origin`` (when a browser sends one), and a JSON body."""

    token: bool = True
    origin: bool = True
    json_body: bool = False


GATED = web.AppKey("gated", dict[str, Gate])


def protect(app: web.Application, path: str, gate: Gate | None = None) -> None:
    """Put ``path`` (the route's canonical path, as added to the router) behind ``gate``."""
    app.setdefault(GATED, {})[path] = gate or Gate()


class HostPolicy:
    """The ``Host`` names this server answers to. An IP literal is always allowed: a browser
    sends one only when its page's own origin is that address, so it cannot be rebound; a
    name must be ``localhost``, the bind address, the machine's names with a wildcard bind,
    or one of ``allowed`` (``.example.com`` also allows its subdomains; ``*`` allows any)."""

    def __init__(self, allowed: str, *, bind: str) -> None:
        entries = {e.strip().lower().rstrip(".") for e in allowed.split(",") if e.strip()}
        self.any = "*" in entries
        names = {"localhost", bind.lower()} | entries
        if bind in WILDCARD_BINDS:
            names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
        self.names = {n for n in names if n and not n.startswith(".")}
        self.suffixes = tuple(n for n in entries if n.startswith("."))

    def allows(self, host_header: str | None) -> bool:
        if self.any:
            return True
        if not host_header:
            return False
        host = _host_name(host_header)
        if host is None:
            return False
        if _is_ip(host):
            return True
        return host in self.names or host.endswith(self.suffixes)


def _host_name(header: str) -> str | None:
    """``Example.com:8765`` → ``example.com``; ``[::1]:8765`` → ``::1``; None for junk."""
    header = header.strip().lower()
    if header.startswith("["):
        end = header.find("]")
        return header[1:end] if end > 0 else None
    name, _, port = header.partition(":")
    if port and not port.isdigit():
        return None
    return name.rstrip(".") or None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class Seats:
    """Live seats (WebSocket sessions and HTTP turns in flight): at most ``total``, and at
    most ``per_address`` a client address (0: no per-address cap)."""

    def __init__(self, *, total: int, per_address: int) -> None:
        self.total = total
        self.per_address = per_address
        self._taken: Counter[str] = Counter()

    def __len__(self) -> int:
        return self._taken.total()

    def take(self, address: str) -> str | None:
        """Take a seat for ``address``; else the reason for the refusal (``full``, ``address``)."""
        if len(self) >= self.total:
            return "full"
        if self.per_address and self._taken[address] >= self.per_address:
            return "address"
        self._taken[address] += 1
        return None

    def explain(self, reason: str) -> str:
        if reason == "address":
            return f"too many sessions from one address ({self.per_address}); try again later"
        return f"server is full ({self.total} sessions); try again later"

    def give_back(self, address: str) -> None:
        self._taken[address] -= 1
        if self._taken[address] <= 0:
            del self._taken[address]


SEATS = web.AppKey("seats", Seats)


def client_address(request: web.BaseRequest) -> str:
    return request.remote or "-"


@contextlib.asynccontextmanager
async def hold_seat(request: web.Request) -> AsyncIterator[None]:
    """Hold one live seat while the block runs; refuse with 503 and ``Retry-After`` if full."""
    seats, address = request.app[SEATS], client_address(request)
    refusal = seats.take(address)
    if refusal is not None:
        request.app[METRICS].refused(refusal)
        log.info("refused %s from %s: no seat (%s)", request.path, address, refusal)
        raise web.HTTPServiceUnavailable(
            text=seats.explain(refusal),
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    try:
        yield
    finally:
        seats.give_back(address)


def gates_middleware(settings: Settings) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Refuse, before any handler runs: a foreign ``Host`` (403) on every route; on a
    protected route, no valid token (401), a foreign ``Origin`` (403), a body that is not
    JSON (415). Dotfiles are never served (404)."""
    hosts = HostPolicy(settings.allowed_hosts, bind=settings.host)
    origins = OriginPolicy(settings.allowed_origins)

    @web.middleware
    async def check_gates(request: web.Request, handler: Handler) -> web.StreamResponse:
        metrics = request.app[METRICS]
        if not hosts.allows(request.headers.get("Host")):
            metrics.refused("host")
            log.info("refused %s from %s: host not allowed", request.path, request.remote)
            raise web.HTTPForbidden(text="this host name is not allowed (--allowed-hosts)")
        if any(part.startswith(".") or part in UNSERVED for part in request.path.split("/")):
            raise web.HTTPNotFound()
        # The route that matched, not the raw path: no spelling of a URL gets around the check.
        resource = request.match_info.route.resource
        path = resource.canonical if resource is not None else request.path
        gate = request.app.get(GATED, {}).get(path)
        if gate is None:
            return await handler(request)
        expected = settings.token if gate.token else None
        if expected is not None and not token_matches(presented_token(request), expected):
            metrics.refused("token")
            log.info("refused %s from %s: no valid token", request.path, request.remote)
            raise web.HTTPUnauthorized(
                text="a valid token is required (?token= or Authorization: Bearer)",
                headers={"WWW-Authenticate": 'Bearer realm="voicechat"'},
            )
        origin = request.headers.get("Origin")
        if gate.origin and not origins.allows(origin, request.host):
            metrics.refused("origin")
            log.info("refused %s from %s: origin %.100r", request.path, request.remote, origin)
            raise web.HTTPForbidden(text=f"origin {origin!r} is not allowed")
        if gate.json_body and request.content_type != "application/json":
            metrics.refused("content_type")
            raise web.HTTPUnsupportedMediaType(text="send the body as application/json")
        return await handler(request)

    return check_gates


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """An ``on_response_prepare`` hook: every response forbids framing, sniffing and
    referrers; the page and its files must be revalidated."""
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    if response.content_type == "text/html" or request.path == "/":
        headers["Cache-Control"] = "no-cache"
