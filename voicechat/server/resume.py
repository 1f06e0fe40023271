"""Resuming a session after a dropped connection.

When a connection drops without a close frame, its session is *parked*: its turn keeps its
place (every frame it tries to send waits), and the frames already written are kept in a
bounded :class:`ReplayBuffer`. A client that reconnects within the window with the session's
resume token (``/ws?resume=TOKEN&turn=T&seq=N``) gets the same session back, and the frames
after the last ``seq`` it saw, with no duplicate and no gap. With ``&paused=1`` (or ``0``) the
turn ``T`` is paused (or resumed) at once, before anything new of it is sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Generic, Protocol, TypeVar


class Parkable(Protocol):
    """What parking needs of a session (the server's :class:`~voicechat.server.session.Session`)."""

    @property
    def id(self) -> str: ...

    @property
    def token(self) -> str: ...

    async def close(self) -> None: ...


Session = TypeVar("Session", bound=Parkable)

log = logging.getLogger("voicechat.resume")


class ReplayBuffer:
    """The messages of the current turn as they were written, newest last, at most
    ``max_bytes`` of them; each is tagged with its audio ``seq`` (None for other messages)."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._turn: str | None = None
        self._entries: deque[tuple[int | None, str]] = deque()
        self._bytes = 0
        self._complete = True  # nothing of the current turn was trimmed yet

    def add(self, turn_id: str, seq: int | None, text: str) -> None:
        if turn_id != self._turn:
            self._turn, self._complete = turn_id, True
            self._entries.clear()
            self._bytes = 0
        self._entries.append((seq, text))
        self._bytes += len(text)
        while self._bytes > self._max_bytes and len(self._entries) > 1:
            _, dropped = self._entries.popleft()
            self._bytes -= len(dropped)
            self._complete = False

    def after(self, turn_id: str | None, seq: int) -> list[str] | None:
        """The messages written after audio frame ``seq`` of ``turn_id`` (all of the current
        turn when the client saw none of it); None when some of them were trimmed."""
        if self._turn is None:
            return []
        entries = list(self._entries)
        if turn_id != self._turn or seq < 0:
            return [text for _, text in entries] if self._complete else None
        for index, (entry_seq, _) in enumerate(entries):
            if entry_seq == seq:
                return [text for _, text in entries[index + 1 :]]
        newest = max((s for s, _ in entries if s is not None), default=-1)
        return [] if seq > newest else None


class SessionParking(Generic[Session]):
    """Sessions whose connection dropped, by resume token, each for ``window`` seconds."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._parked: dict[str, tuple[Session, asyncio.Task[None]]] = {}

    def __len__(self) -> int:
        return len(self._parked)

    def park(self, session: Session) -> None:
        expiry = asyncio.create_task(self._expire(session), name=f"park {session.id}")
        self._parked[session.token] = (session, expiry)
        log.info("session %s: connection dropped; resumable for %g s", session.id, self.window)

    def claim(self, token: str) -> Session | None:
        """Take the session parked under ``token`` (None if unknown or expired)."""
        parked = self._parked.pop(token, None)
        if parked is None:
            return None
        session, expiry = parked
        expiry.cancel()
        return session

    async def _expire(self, session: Session) -> None:
        await asyncio.sleep(self.window)
        self._parked.pop(session.token, None)
        log.info("session %s: not resumed within %g s; closed", session.id, self.window)
        await session.close()

    async def close_all(self) -> None:
        parked, self._parked = list(self._parked.values()), {}
        for session, expiry in parked:
            expiry.cancel()
            await session.close()
