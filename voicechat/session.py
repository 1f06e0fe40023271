"""One WebSocket connection: it owns at most one live turn and is the socket's only writer.

Everything sent goes through :meth:`Session.send`, which is where the two promises of the
protocol are kept: nothing of a stopped turn is written once the stop is decided, and no
``sentence``/``audio`` frame is written while the turn is paused.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from voicechat import logs, protocol
from voicechat.errors import BadRequest, ProtocolError, VoicechatError
from voicechat.limits import TokenBucket
from voicechat.llm.base import ChatMessage, LLMBackend
from voicechat.metrics import SessionMetrics
from voicechat.tts.base import TTSBackend
from voicechat.turn import Turn, TurnOptions

log = logging.getLogger("voicechat.session")

STOP_TIMEOUT = 2.0  # seconds a cancelled turn gets to unwind before we give up on it


@dataclass(frozen=True, slots=True)
class SessionConfig:
    system_prompt: str
    default_voice: str | None
    lookahead: int
    first_clause_chars: int
    max_chunk_chars: int
    max_prompt_chars: int


class Session:
    def __init__(
        self,
        ws: web.WebSocketResponse,
        *,
        llm: LLMBackend,
        tts: TTSBackend,
        config: SessionConfig,
        limiter: TokenBucket | None = None,
        metrics: SessionMetrics | None = None,
    ) -> None:
        self.id = uuid.uuid4().hex[:12]
        self._ws = ws
        self._llm = llm
        self._tts = tts
        self._config = config
        self._send_lock = asyncio.Lock()
        self._turn: Turn | None = None
        self._turn_task: asyncio.Task[None] | None = None
        self._turn_numbers = itertools.count(1)
        self._closed = False
        self._limiter = limiter or TokenBucket(rate=0, burst=1)
        self._metrics = metrics or SessionMetrics(None, llm=llm.name, tts=tts.name)

    @property
    def turn_task(self) -> asyncio.Task[None] | None:
        return self._turn_task

    # -- the one writer -------------------------------------------------------------------

    async def send(
        self, message: dict[str, Any], *, turn: Turn | None = None, hold_while_paused: bool = False
    ) -> bool:
        """Write one message; return False when it was dropped (stopped turn, closed socket)."""
        text = protocol.dump(message)
        while True:
            if turn is not None and hold_while_paused:
                await turn.wait_resumed()
            async with self._send_lock:
                if turn is not None and turn.stopped:
                    return False
                if turn is not None and hold_while_paused and turn.paused:
                    continue  # paused between our wait and the lock: wait again
                if self._closed or self._ws.closed:
                    return False
                try:
                    await self._ws.send_str(text)
                except ConnectionError:  # the peer went away mid-send: not an error
                    self._closed = True
                    return False
                self._metrics.sent(message)
                return True

    async def send_error(self, error: VoicechatError) -> None:
        await self.send(protocol.error_event(error))

    # -- handling client messages -----------------------------------------------------------

    async def hello(self) -> None:
        await self.send(
            protocol.ready_event(
                session_id=self.id,
                sample_rate=self._tts.sample_rate,
                llm=self._llm.name,
                tts=self._tts.name,
                voices=self._tts.voices(),
            )
        )

    async def receive_text(self, raw: str) -> None:
        try:
            message = protocol.parse_client_message(
                raw, max_prompt_chars=self._config.max_prompt_chars
            )
        except ProtocolError as exc:
            await self.send_error(exc)
            return
        if not isinstance(message, protocol.Played) and not self._limiter.take():
            await self.send_error(self._limiter.error())
            return
        match message:
            case protocol.Start():
                await self._start(message)
            case protocol.Pause():
                await self._pause()
            case protocol.Resume():
                await self._resume()
            case protocol.Stop():
                await self._stop()
            case protocol.Played(turn_id=turn_id, seq=seq):
                turn = self._turn
                if turn is not None and turn.id == turn_id:
                    turn.played(seq)

    async def _start(self, start: protocol.Start) -> None:
        voice = start.voice or self._config.default_voice
        if voice is not None and voice not in self._tts.voices():
            await self.send_error(BadRequest(f"unknown voice {voice!r}; see ready.data.voices"))
            return
        await self._stop(ack_idle=False)  # barge-in: the old turn's `stopped` goes first
        turn_id = start.turn_id or f"t{next(self._turn_numbers)}"
        messages: list[ChatMessage] = [
            {"role": "system", "content": self._config.system_prompt},
            {"role": "user", "content": start.prompt},
        ]
        turn = Turn(
            turn_id,
            messages,
            llm=self._llm,
            tts=self._tts,
            send=lambda message, hold: self.send(message, turn=turn, hold_while_paused=hold),
            options=TurnOptions(
                voice=voice,
                lookahead=self._config.lookahead,
                first_clause_chars=self._config.first_clause_chars,
                max_chunk_chars=self._config.max_chunk_chars,
            ),
        )
        self._turn = turn
        self._metrics.turn_started(turn_id)
        self._turn_task = asyncio.create_task(
            self._run_turn(turn),
            name=f"session {self.id} turn {turn_id}",
            context=logs.turn_context(turn_id),
        )
        log.info("session %s: turn %s started (%d chars)", self.id, turn_id, len(start.prompt))

    async def _run_turn(self, turn: Turn) -> None:
        try:
            await turn.run()
        except Exception:  # a bug, not a backend failure (those are reported by the turn)
            log.exception("session %s: turn %s crashed", self.id, turn.id)
            error = VoicechatError("internal error; the turn was abandoned")
            await self.send(protocol.error_event(error, turn=turn.id), turn=turn)
            turn.finished = True

    def _live_turn(self) -> Turn | None:
        turn = self._turn
        return turn if turn is not None and turn.active else None

    async def _pause(self) -> None:
        turn = self._live_turn()
        if turn is not None:
            turn.pause()
        await self.send(protocol.control_ack("paused", turn.id if turn else None))

    async def _resume(self) -> None:
        turn = self._live_turn()
        if turn is not None:
            turn.resume()
        await self.send(protocol.control_ack("resumed", turn.id if turn else None))

    async def _stop(self, *, ack_idle: bool = True) -> None:
        turn = self._live_turn()
        task = self._turn_task
        if turn is None or task is None:
            if ack_idle:
                await self.send(protocol.control_ack("stopped", None, spoken=""))
            return
        self._metrics.stop_requested()
        turn.stopped = True  # from here on, send() drops everything of this turn
        await self._cancel_turn_task()
        await self.send(protocol.control_ack("stopped", turn.id, spoken=" ".join(turn.spoken)))
        log.info("session %s: turn %s stopped", self.id, turn.id)

    async def _cancel_turn_task(self) -> None:
        task, self._turn_task, self._turn = self._turn_task, None, None
        if task is None or task.done():
            return
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=STOP_TIMEOUT)
        if not done:
            log.error("session %s: a turn did not stop within %.1f s", self.id, STOP_TIMEOUT)

    async def close(self, *, code: int | None = None, reason: str = "") -> None:
        """Stop everything this session runs; with ``code``, also close the socket with it."""
        self._closed = True
        self._metrics.closed()
        if self._turn is not None:
            self._turn.stopped = True
        await self._cancel_turn_task()
        if code is not None and not self._ws.closed:
            await self._ws.close(code=code, message=reason.encode())
