"""voicechat's Python client API: one :class:`Chat` is one session with a voicechat server.

    async with voicechat.connect("ws://127.0.0.1:8765/ws", token=None) as chat:
        async for event in chat.say("What is the capital of France?"):
            if isinstance(event, Sentence):
                print(event.text)

``say`` yields the turn's typed events (:mod:`voicechat.client.events`) up to its ``Done`` or
``Stopped``; ``pause``, ``resume`` and ``stop`` may be called meanwhile from other tasks. When
the connection drops, the chat reconnects with the session's resume token, the turn and the last
audio frame it received (and whether the turn is paused): the server sends the rest of the turn
from there, ``say`` yields a :class:`~voicechat.client.events.Reconnected` and goes on, with no
event twice. One reader: one ``say`` at a time; a new ``say`` after leaving one early stops the
old turn (barge-in), and its events are skipped.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from voicechat.client.connection import ConnectionFailed, VoiceConnection, websocket_url
from voicechat.client.events import (
    Audio,
    Done,
    Error,
    Event,
    Ready,
    Reconnected,
    Stopped,
    parse_event,
)

BACKOFF_S = 0.25  # the first reconnect waits up to this; each next one up to twice as long
BACKOFF_CAP_S = 5.0


class TurnLost(ConnectionFailed):
    """The connection dropped and the server no longer had the session (or the turn)."""


@dataclass(slots=True)
class _Progress:
    """How far the client got in the turn being said: what a resume asks for."""

    turn: str
    last_seq: int = -1
    paused: bool = False
    stop_wanted: bool = False  # stop() was called while disconnected
    since_audio: list[dict[str, Any]] = field(default_factory=list)  # replayed after a resume


@asynccontextmanager
async def connect(
    url: str, *, token: str | None = None, reconnect_attempts: int = 5
) -> AsyncIterator[Chat]:
    """Open a session with the server at ``url`` (``ws://host:port/ws``, or ``http://host:port``)
    with its shared secret ``token``, if it has one; closed on the way out. After a drop, up to
    ``reconnect_attempts`` reconnects (0: none; the turn then fails with ConnectionFailed)."""
    chat = Chat(url, token=token, reconnect_attempts=reconnect_attempts)
    await chat._open()
    try:
        yield chat
    finally:
        await chat.aclose()


class Chat:
    """A session; make it with :func:`connect`."""

    def __init__(self, url: str, *, token: str | None, reconnect_attempts: int) -> None:
        self.url = websocket_url(url)
        self._token = token
        self._attempts = reconnect_attempts
        self._stack = AsyncExitStack()
        self._voice: VoiceConnection | None = None
        self._resume: str | None = None
        self._progress: _Progress | None = None
        self._skip: list[dict[str, Any]] = []  # messages a resume sends again
        self._numbers = itertools.count(1)
        self._saying = False
        self._closed = False
        self.info: Ready  # set by _open
        self.reconnects = 0

    # -- the connection -------------------------------------------------------------------

    async def _open(self, query: dict[str, str] | None = None) -> Ready:
        stack = AsyncExitStack()
        url = self.url if not query else _with_query(self.url, query)
        voice = await stack.enter_async_context(VoiceConnection.open(url, token=self._token))
        await self._stack.aclose()
        self._stack, self._voice = stack, voice
        self.info = voice.info
        self._resume = voice.ready["data"].get("resume")
        return self.info

    async def aclose(self) -> None:
        """Close the session (the server does not keep a session its client closed)."""
        self._closed = True
        await self._stack.aclose()

    async def _reconnect(self) -> Reconnected:
        progress = self._progress
        if self._resume is None or self._attempts == 0:
            raise ConnectionFailed("the connection to the server was lost")
        query = {"resume": self._resume}
        if progress is not None:
            query.update(turn=progress.turn, seq=str(progress.last_seq))
            query["paused"] = "1" if progress.paused else "0"
        for attempt in range(1, self._attempts + 1):
            ceiling = min(BACKOFF_CAP_S, BACKOFF_S * 2 ** (attempt - 1))
            await asyncio.sleep(random.uniform(ceiling / 2, ceiling))
            try:
                info = await self._open(query)
            except ConnectionFailed:
                continue
            if not info.resumed and progress is not None:
                raise TurnLost("the connection dropped and the server no longer had the turn")
            self.reconnects += 1
            if progress is not None:
                self._skip = list(progress.since_audio)
                if progress.stop_wanted:
                    await self._send("stop")
            return Reconnected(info.session, attempt)
        raise ConnectionFailed(f"the server could not be reached again ({self._attempts} tries)")

    async def _send(self, action: str, data: Any = None, **meta: Any) -> bool:
        voice = self._voice
        if voice is None or voice.closed:
            return False
        try:
            await voice.send(action, data, **meta)
        except ConnectionFailed:
            return False  # the reader finds out, and reconnects
        return True

    async def _next(self) -> Event:
        """The next event, across drops (a Reconnected after one)."""
        while True:
            assert self._voice is not None
            message = await self._voice.receive()
            if message is None:
                if self._closed:
                    raise ConnectionFailed("the chat is closed")
                return await self._reconnect()
            if self._skip and message == self._skip[0]:
                self._skip.pop(0)  # sent again by the resume: seen already
                continue
            self._skip.clear()
            event = parse_event(message)
            if event is None:
                continue  # an action of a newer server
            self._track(message, event)
            return event

    def _track(self, message: dict[str, Any], event: Event) -> None:
        progress = self._progress
        if progress is None or message.get("turn") != progress.turn:
            return
        if isinstance(event, Audio):
            progress.last_seq = event.seq
            progress.since_audio.clear()
        else:
            progress.since_audio.append(message)

    # -- turns ------------------------------------------------------------------------------

    async def say(
        self,
        prompt: str,
        *,
        voice: str | None = None,
        audio: bool = True,
        turn_id: str | None = None,
    ) -> AsyncGenerator[Event, None]:
        """Ask; yield the turn's events, the last one its Done or Stopped (or an Error with
        no turn when the server refused the prompt). ``audio=False``: a text-only turn."""
        if self._saying:
            raise RuntimeError("one say() at a time: stop the turn or let it finish first")
        self._saying = True
        turn = turn_id or f"py{next(self._numbers)}"
        try:
            if self._voice is None or self._voice.closed:
                self._progress = None
                await self._reconnect()  # dropped between turns: any session will do
            self._progress = _Progress(turn)
            data: dict[str, Any] = {"prompt": prompt, "id": turn}
            if voice is not None:
                data["voice"] = voice
            if not audio:
                data["audio"] = False
            if not await self._send("start", data):
                raise ConnectionFailed("the connection to the server is closed")
            seen = False
            while True:
                event = await self._next()
                if isinstance(event, Reconnected):
                    yield event
                    continue
                if isinstance(event, Error) and event.turn is None and not seen:
                    yield event  # the start was refused (a bad voice, a rate limit, ...)
                    return
                if event.turn != turn:
                    continue  # an earlier turn's last words, idle acknowledgements
                seen = True
                yield event
                if isinstance(event, Done | Stopped):
                    return
        finally:
            self._saying = False
            self._progress = None

    async def pause(self) -> None:
        """Hold the turn (the server sends no more audio until resume); while disconnected,
        the reconnect asks for it paused."""
        if self._progress is not None:
            self._progress.paused = True
        await self._send("pause")

    async def resume(self) -> None:
        if self._progress is not None:
            self._progress.paused = False
        await self._send("resume")

    async def stop(self) -> None:
        """End the turn; its ``Stopped`` ends ``say``. While disconnected, sent on reconnect."""
        if not await self._send("stop") and self._progress is not None:
            self._progress.stop_wanted = True

    async def played(self, turn: str, seq: int) -> None:
        """Tell the server the listener has played audio up to frame ``seq`` of ``turn``."""
        await self._send("played", turn=turn, seq=seq)


def _with_query(url: str, query: dict[str, str]) -> str:
    parts = urlsplit(url)
    joined = "&".join(q for q in (parts.query, urlencode(query)) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, joined, ""))
