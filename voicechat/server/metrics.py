"""Prometheus metrics, one registry per app (so that many apps in one process never collide).

A session reports to its :class:`SessionMetrics` from two places: what it is asked to do
(``turn_started``, ``stop_requested``, ``closed``) and what it actually wrote (``sent``, called
by the socket's one writer). Turn outcomes, time to first audio, stop latency and error counts
are all read off the messages on the wire, so no stage of a turn needs to know about metrics.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder

OUTCOMES: Final = ("done", "stopped", "error", "cancelled")
REFUSALS: Final = ("token", "origin", "host", "content_type", "full", "address", "connections")
ERROR_CODES: Final = (
    "bad_json",
    "bad_request",
    "unknown_action",
    "too_large",
    "rate_limited",
    "llm_failed",
    "tts_failed",
    "internal",
)
TTFA_BUCKETS: Final = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
STOP_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """Every metric of one app, registered in its own :class:`CollectorRegistry`."""

    def __init__(
        self,
        *,
        active_sessions: Callable[[], float],
        parked_sessions: Callable[[], float] = lambda: 0,
    ) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        sessions = Gauge(
            "voicechat_sessions_active",
            "Live sessions: open WebSocket sessions and /v1/speak turns",
            registry=r,
        )
        sessions.set_function(active_sessions)
        parked = Gauge(
            "voicechat_sessions_parked", "Dropped sessions kept for a resume", registry=r
        )
        parked.set_function(parked_sessions)
        self.refusals = Counter(
            "voicechat_connections_refused",
            "Requests refused: no valid token, foreign origin or host, not JSON, no seat",
            ["reason"],
            registry=r,
        )
        self.turns = Counter("voicechat_turns", "Turns by how they ended", ["outcome"], registry=r)
        self.ttfa = Histogram(
            "voicechat_time_to_first_audio_seconds",
            "From a start received to the turn's first audio frame written",
            buckets=TTFA_BUCKETS,
            registry=r,
        )
        self.stop_latency = Histogram(
            "voicechat_stop_latency_seconds",
            "From a stop (or barge-in) received to `stopped` written",
            buckets=STOP_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "voicechat_errors", "error messages sent to clients, by code", ["code"], registry=r
        )
        self.backend_failures = Counter(
            "voicechat_backend_failures",
            "LLM and TTS failures reported to clients, by backend",
            ["kind", "backend"],
            registry=r,
        )
        for outcome in OUTCOMES:
            self.turns.labels(outcome)
        for reason in REFUSALS:
            self.refusals.labels(reason)
        for code in ERROR_CODES:  # present from the start, so that rate() sees the first one
            self.errors.labels(code)

    def refused(self, reason: str) -> None:
        self.refusals.labels(reason).inc()

    def session(self, *, llm: str, tts: str) -> SessionMetrics:
        return SessionMetrics(self, llm=llm, tts=tts)

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition in the format ``accept`` asks for; returns (body, content type)."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type


METRICS = web.AppKey("metrics", Metrics)


async def metrics_handler(request: web.Request) -> web.Response:
    body, content_type = request.app[METRICS].render(request.headers.get("Accept", ""))
    return web.Response(body=body, headers={"Content-Type": content_type})


@dataclass(slots=True)
class _TurnWatch:
    id: str
    started: float
    audio_seen: bool = False
    failed: bool = False


class SessionMetrics:
    """What one session feeds into :class:`Metrics`; with ``metrics=None`` it does nothing."""

    def __init__(self, metrics: Metrics | None, *, llm: str, tts: str) -> None:
        self._metrics = metrics
        self._backends = {"llm_failed": ("llm", llm), "tts_failed": ("tts", tts)}
        self._turn: _TurnWatch | None = None
        self._stop_requested: float | None = None

    def turn_started(self, turn_id: str) -> None:
        self._end_turn("cancelled")  # a turn whose end never reached the wire
        self._turn = _TurnWatch(turn_id, time.perf_counter())

    def stop_requested(self) -> None:
        self._stop_requested = time.perf_counter()

    def closed(self) -> None:
        self._end_turn("cancelled")

    def sent(self, message: dict[str, Any]) -> None:
        """Called with every message actually written to the socket."""
        metrics = self._metrics
        if metrics is None:
            return
        action, turn = message.get("action"), self._turn
        ours = turn is not None and message.get("turn") == turn.id
        if action == "error":
            code = str(message["data"]["code"])
            metrics.errors.labels(code).inc()
            if code in self._backends:
                metrics.backend_failures.labels(*self._backends[code]).inc()
            if ours and turn is not None:
                turn.failed = True
        elif action == "audio" and ours and turn is not None and not turn.audio_seen:
            turn.audio_seen = True
            metrics.ttfa.observe(time.perf_counter() - turn.started)
        elif action == "done" and ours:
            self._end_turn("done")
        elif action == "stopped" and ours:
            if self._stop_requested is not None:
                metrics.stop_latency.observe(time.perf_counter() - self._stop_requested)
                self._stop_requested = None
            self._end_turn("stopped")

    def _end_turn(self, outcome: str) -> None:
        turn, self._turn = self._turn, None
        if turn is None or self._metrics is None:
            return
        if turn.failed and outcome != "stopped":
            outcome = "error"
        self._metrics.turns.labels(outcome).inc()
