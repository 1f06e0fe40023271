"""One WebSocket connection: it reads the client's messages and owns at most one live turn.

Everything it sends goes through its :class:`~voicechat.server.outbox.Outbox`, where the protocol's
promises (nothing after `stopped`, no speech while paused) are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from voicechat import logs, protocol
from voicechat.config import Settings
from voicechat.errors import BadRequest, ProtocolError, ResumeIncomplete, VoicechatError
from voicechat.llm.base import LLMBackend
from voicechat.pipeline.cancellation import release_cancellation
from voicechat.pipeline.history import History
from voicechat.pipeline.turn import Turn, TurnOptions
from voicechat.server.limits import TokenBucket
from voicechat.server.metrics import SessionMetrics
from voicechat.server.outbox import Outbox
from voicechat.tts.base import TTSBackend
from voicechat.tts.speaker import Announcer, TurnSpeakers, voices_by_backend

log = logging.getLogger("voicechat.session")

NOISE_FACTOR = 10  # `played` and invalid messages allowed per control message
STOP_TIMEOUT = 2.0  # seconds a cancelled turn gets to unwind before we give up on it


@dataclass(frozen=True, slots=True)
class SessionConfig:
    system_prompt: str
    default_voice: str | None
    lookahead: int
    first_clause_chars: int
    max_chunk_chars: int
    max_prompt_chars: int
    lead: float = 2.0
    frame_ms: int = 500
    tts_timeout: float = 15.0
    end_turn_on_tts_failure: bool = False
    send_timeout: float = 15.0
    resume_window: float = 30.0
    replay_bytes: int = 1 << 20
    history_turns: int = 10


class Session:
    def __init__(
        self,
        ws: web.WebSocketResponse,
        *,
        llm: LLMBackend,
        tts: TTSBackend,
        config: SessionConfig,
        transport: asyncio.Transport | None = None,
        limiter: TokenBucket | None = None,
        metrics: SessionMetrics | None = None,
        address: str = "-",
    ) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.token = secrets.token_urlsafe(18)  # proves a reconnecting client owns the session
        self.address = address  # the client's, for the per-address bounds
        self._handover: asyncio.Event | None = None  # set while a new connection takes over
        self._metrics = metrics or SessionMetrics(None, llm=llm.name, tts=tts.name)
        self._outbox = Outbox(
            ws,
            transport,
            send_timeout=config.send_timeout,
            replay_bytes=config.replay_bytes,
            on_sent=self._metrics.sent,
        )
        self._llm = llm
        self._tts = tts
        self._config = config
        self._turn: Turn | None = None
        self._turn_task: asyncio.Task[None] | None = None
        self._turn_numbers = itertools.count(1)
        self._last_turn_id: str | None = None
        self._history = History(config.system_prompt, max_turns=config.history_turns)
        self._unrecorded: tuple[Turn, str] | None = None  # the last turn, until remembered
        self._announcer = Announcer(tts)
        self._limiter = limiter or TokenBucket(rate=0, burst=1)
        # `played` reports and invalid messages: a looser bucket, and past it they are dropped
        # without a reply, so that a flood costs the flooder a parse and nothing more (its own
        # `stop`, in the control bucket, still gets through).
        self._noise = TokenBucket(
            rate=self._limiter.rate * NOISE_FACTOR, burst=self._limiter.burst * NOISE_FACTOR
        )

    @property
    def turn_task(self) -> asyncio.Task[None] | None:
        return self._turn_task

    async def send(
        self, message: dict[str, Any], *, turn: Turn | None = None, hold_while_paused: bool = False
    ) -> bool:
        """Write one message (see :meth:`Outbox.send`); False when it was dropped."""
        return await self._outbox.send(message, turn=turn, hold_while_paused=hold_while_paused)

    async def send_error(self, error: VoicechatError) -> None:
        await self.send(protocol.error_event(error))

    # -- handling client messages -----------------------------------------------------------

    def _ready(self, *, resumed: bool) -> dict[str, Any]:
        ready = protocol.ready_event(
            session_id=self.id,
            sample_rate=self._tts.sample_rate,
            llm=self._llm.name,
            tts=self._announcer.current,
            voices=self._tts.voices(),
        )
        ready["data"].update(
            backends=voices_by_backend(self._tts),
            resume=self.token,
            resume_window=self._config.resume_window,
            resumed=resumed,
        )
        if resumed:
            turn = self._live_turn()
            ready["data"]["turn"] = {"id": turn.id, "paused": turn.paused} if turn else None
        return ready

    async def hello(self) -> None:
        await self.send(self._ready(resumed=False))

    # -- resume after a dropped connection (see resume.py) ------------------------------------

    def resumable(self) -> bool:
        """Whether the connection dropped (no close frame from the client) and may come back."""
        return self._config.resume_window > 0 and not self._outbox.closed and self._outbox.dropped()

    @property
    def taken_over(self) -> bool:
        """Whether a new connection is taking this session over (see :meth:`take_over`)."""
        return self._handover is not None

    async def take_over(self, *, within: float) -> None:
        """A client came back with the resume token while its old connection still looks
        alive (half-open: no FIN, no RST): drop that connection now and wait, at most
        ``within`` seconds, until its handler has let go of the session (:meth:`let_go`)."""
        self._handover = asyncio.Event()
        self._outbox.detach()
        self._outbox.abort_socket()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._handover.wait()

    def let_go(self) -> None:
        """Called by the old connection's handler as it ends during a takeover."""
        if self._handover is not None:
            self._handover.set()

    def detach(self) -> None:
        """The connection is gone: hold the turn's messages until :meth:`attach`."""
        self._outbox.detach()

    async def attach(
        self,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport | None,
        *,
        turn_id: str | None,
        seq: int,
        paused: bool | None = None,
    ) -> None:
        """Continue on a new connection: ``ready``, then every frame after ``seq`` of
        ``turn_id`` that the client missed, then whatever the turn sends next. ``paused``
        (when ``turn_id`` is the live turn) pauses or resumes it first, before anything new."""
        turn = self._live_turn()
        if paused is not None and turn is not None and turn.id == turn_id:
            # Before the outbox attaches: its waiting senders find the turn paused. No ack:
            # `ready` reports the turn's state.
            if paused:
                turn.pause()
            else:
                turn.resume()
        self._handover = None
        self.token = secrets.token_urlsafe(18)  # a resume token works once
        ready = self._ready(resumed=True)
        replayed = await self._outbox.attach(ws, transport, ready=ready, turn_id=turn_id, seq=seq)
        log.info("session %s: resumed (%d frames replayed)", self.id, replayed or 0)
        if replayed is None:  # the frames after `seq` are no longer all in the replay buffer
            await self.send_error(
                ResumeIncomplete("part of the turn could not be replayed; it was stopped")
            )
            await self._stop()

    async def receive_text(self, raw: str) -> None:
        try:
            message = protocol.parse_client_message(
                raw, max_prompt_chars=self._config.max_prompt_chars
            )
        except ProtocolError as exc:
            if self._noise.take():
                await self.send_error(exc)
            return
        if isinstance(message, protocol.Played) and not self._noise.take():
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
        if start.turn_id is not None and start.turn_id == self._last_turn_id:
            # A resume names frames by turn id and seq: two turns with one id would mix them.
            await self.send_error(BadRequest(f"turn id {start.turn_id!r} was used already"))
            return
        await self._stop(ack_idle=False)  # barge-in: the old turn's `stopped` goes first
        turn_id = start.turn_id or self._next_turn_id()
        self._last_turn_id = turn_id
        self._outbox.begin_turn(turn_id)  # a resume never replays an earlier turn's frames
        speakers = self._announcer.for_turn()
        turn = Turn(
            turn_id,
            self._history.messages_for(start.prompt),
            llm=self._llm,
            tts=speakers,
            send=lambda message, hold: self._send_of(turn, speakers, message, hold),
            options=turn_options(self._config, voice, audio=start.audio),
        )
        self._turn = turn
        self._unrecorded = (turn, start.prompt)
        self._metrics.turn_started(turn_id)
        self._turn_task = asyncio.create_task(
            self._run_turn(turn),
            name=f"session {self.id} turn {turn_id}",
            context=logs.turn_context(turn_id),
        )
        self._turn_task.add_done_callback(release_cancellation)
        log.info("session %s: turn %s started (%d chars)", self.id, turn_id, len(start.prompt))

    def _next_turn_id(self) -> str:
        while (turn_id := f"t{next(self._turn_numbers)}") == self._last_turn_id:
            pass
        return turn_id

    async def _run_turn(self, turn: Turn) -> None:
        try:
            await turn.run()
        except Exception:  # a bug, not a backend failure (those are reported by the turn)
            log.exception("session %s: turn %s crashed", self.id, turn.id)
            error = VoicechatError("internal error; the turn was abandoned")
            await self.send(protocol.error_event(error, turn=turn.id), turn=turn)
            turn.finished = True
        finally:
            self._remember(turn)

    def _remember(self, turn: Turn) -> None:
        """Put the turn's exchange in the history, once: the assistant said what was heard
        (by the listener's playback clock when the turn was stopped)."""
        if self._unrecorded is not None and self._unrecorded[0] is turn:
            answer = turn.heard() if turn.stopped else " ".join(turn.spoken)
            self._history.record(self._unrecorded[1], answer)
            self._unrecorded = None

    async def _send_of(
        self, turn: Turn, speakers: TurnSpeakers, message: dict[str, Any], hold: bool
    ) -> bool:
        """Send a message of ``turn``, preceded by a ``backend`` event when its chunk is
        spoken by another TTS backend than the client was last told about."""
        switch = self._announcer.before(speakers, message)
        if switch is not None:
            if not await self.send(switch, turn=turn, hold_while_paused=hold):
                return False
            self._announcer.current = switch["data"]["tts"]
        return await self.send(message, turn=turn, hold_while_paused=hold)

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
                await self.send(protocol.control_ack("stopped", None, spoken="", heard=""))
            return
        self._metrics.stop_requested()
        turn.stop()  # from here on, send() drops everything of this turn
        await self._cancel_turn_task()  # its task remembers what was heard, as it ends
        stopped = protocol.control_ack(
            "stopped", turn.id, spoken=" ".join(turn.spoken), heard=turn.heard()
        )
        await self.send(stopped)
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
        self._outbox.close()  # first: nothing the turn sends as it unwinds goes out
        self._metrics.closed()
        if self._turn is not None:
            self._turn.stop()
        await self._cancel_turn_task()
        if code is not None:
            await self._outbox.close_socket(code=code, reason=reason)


def turn_options(config: SessionConfig, voice: str | None, *, audio: bool = True) -> TurnOptions:
    """The options of a turn in ``voice`` (shared by every wire protocol); ``audio=False``:
    a text-only turn."""
    return TurnOptions(
        voice=voice,
        audio=audio,
        lookahead=config.lookahead,
        first_clause_chars=config.first_clause_chars,
        max_chunk_chars=config.max_chunk_chars,
        lead=config.lead,
        frame_ms=config.frame_ms,
        tts_timeout=config.tts_timeout,
        end_turn_on_tts_failure=config.end_turn_on_tts_failure,
    )


def session_config(settings: Settings) -> SessionConfig:
    """The session settings of ``settings`` (shared by every wire protocol)."""
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
