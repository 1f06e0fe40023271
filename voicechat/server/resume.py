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
import contextlib
import logging
from collections import deque
from typing import Generic, Protocol, TypeVar


class Parkable(Protocol):
    """What parking needs of a session (the server's :class:`~voicechat.server.session.Session`)."""

    @property
    def id(self) -> str: ...

    @property
    def token(self) -> str: ...

    @property
    def address(self) -> str: ...

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

    def reset(self, turn_id: str) -> None:
        """Keep the messages of ``turn_id`` from now on, and none of any earlier turn."""
        self._turn, self._complete = turn_id, True
        self._entries.clear()
        self._bytes = 0

    def add(self, turn_id: str, seq: int | None, text: str) -> None:
        if turn_id != self._turn:
            self.reset(turn_id)
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
    """Sessions whose connection dropped, by resume token, each for ``window`` seconds; at
    most ``max_parked`` of them and ``per_address`` of one client address: parking one more
    closes the oldest (of that address first), so dropped sessions never fill the server."""

    def __init__(self, window: float, *, max_parked: int = 100, per_address: int = 10) -> None:
        self.window = window
        self.max_parked = max_parked
        self.per_address = per_address
        # oldest first (dicts keep their order); the event ends the session's stay early
        self._parked: dict[str, tuple[Session, asyncio.Task[None], asyncio.Event]] = {}
        self._leaving: set[asyncio.Task[None]] = set()  # evicted, closing

    def __len__(self) -> int:
        return len(self._parked)

    def park(self, session: Session) -> None:
        if self.max_parked <= 0:
            return
        same = [t for t, (s, _, _) in self._parked.items() if s.address == session.address]
        if self.per_address and len(same) >= self.per_address:
            self._evict(same[0])
        if len(self._parked) >= self.max_parked:
            self._evict(next(iter(self._parked)))
        evicted = asyncio.Event()
        expiry = asyncio.create_task(self._expire(session, evicted), name=f"park {session.id}")
        self._parked[session.token] = (session, expiry, evicted)
        log.info("session %s: connection dropped; resumable for %g s", session.id, self.window)

    def _evict(self, token: str) -> None:
        _, expiry, evicted = self._parked.pop(token)
        evicted.set()  # its expiry task closes it now
        self._leaving.add(expiry)
        expiry.add_done_callback(self._leaving.discard)

    def claim(self, token: str) -> Session | None:
        """Take the session parked under ``token`` (None if unknown or expired)."""
        parked = self._parked.pop(token, None)
        if parked is None:
            return None
        session, expiry, _ = parked
        expiry.cancel()
        return session

    async def _expire(self, session: Session, evicted: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(evicted.wait(), self.window)
        if not evicted.is_set():
            self._parked.pop(session.token, None)
        window = f"not resumed within {self.window:g} s"
        why = "evicted by newer ones" if evicted.is_set() else window
        log.info("session %s: %s; closed", session.id, why)
        await session.close()

    async def close_all(self) -> None:
        parked, self._parked = list(self._parked.values()), {}
        for session, expiry, _ in parked:
            expiry.cancel()
            await session.close()
        if self._leaving:
            await asyncio.wait(self._leaving)
