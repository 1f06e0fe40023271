"""The listener's playback clock, and pacing audio a bounded lead ahead of it.

A client that cannot silence itself at once (a phone speaker, a telephone bridge) still goes
quiet soon after ``stop`` when the server never sends more than ``lead`` seconds of audio ahead
of what the listener has heard. Clients that can report their playback (``played``) drive the
clock; for the others it runs on wall time from the first frame, stopped while paused.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class ListenerClock:
    """Seconds of one turn's audio sent, and how much of it the listener has heard."""

    def __init__(self, *, lead: float, now: Callable[[], float] = time.monotonic) -> None:
        """``lead``: the most audio, in seconds, sent ahead of the listener; 0 turns pacing off."""
        self.lead = lead
        self._now = now
        self.sent = 0.0
        self._frame_ends: list[float] = []  # audio time at the end of frame `seq`
        self._paused_at: float | None = None
        self._paused_total = 0.0
        self._anchor: tuple[float, float] | None = None  # (audio position, running time)
        self._progress = asyncio.Event()

    def _running(self) -> float:
        """Wall time that does not advance while paused."""
        now = self._paused_at if self._paused_at is not None else self._now()
        return now - self._paused_total

    def frame_sent(self, seconds: float) -> None:
        if self._anchor is None:
            self._anchor = (0.0, self._running())  # playback starts with the first frame
        self.sent += seconds
        self._frame_ends.append(self.sent)

    def played(self, seq: int) -> None:
        """The listener reports it has played frame ``seq``: re-anchor the clock there."""
        if 0 <= seq < len(self._frame_ends):
            self._anchor = (self._frame_ends[seq], self._running())
            self._progress.set()

    def pause(self) -> None:
        if self._paused_at is None:
            self._paused_at = self._now()

    def resume(self) -> None:
        if self._paused_at is not None:
            self._paused_total += self._now() - self._paused_at
            self._paused_at = None
            self._progress.set()

    def position(self) -> float:
        """Where the listener is, in seconds of this turn's audio (never beyond what was sent)."""
        if self._anchor is None:
            return 0.0
        heard, at = self._anchor
        return min(self.sent, heard + max(0.0, self._running() - at))

    def room_in(self) -> float:
        """Seconds to wait before the next frame may go out (0: now)."""
        if self.lead <= 0:
            return 0.0
        return max(0.0, self.sent - self.position() - self.lead)

    async def wait_for_room(self) -> None:
        """Return once the next frame keeps the audio within ``lead`` of the listener."""
        while (delay := self.room_in()) > 0:
            self._progress.clear()
            try:
                async with asyncio.timeout(delay):
                    await self._progress.wait()
            except TimeoutError:
                pass
