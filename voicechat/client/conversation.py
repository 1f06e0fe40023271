"""A conversation from the terminal over one session of the client API (:mod:`.chat`): ask,
listen, repeat.

During a turn three things run in one ``TaskGroup``: the turn's events (``Chat.say``, read by
:meth:`Conversation._listen`), the keys (space, s, q) and, when the output plays, the playback
follower that marks the sentence being heard and reports ``played``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from dataclasses import dataclass

from voicechat.client.chat import Chat
from voicechat.client.connection import ConnectionFailed
from voicechat.client.console import Terminal, TurnView
from voicechat.client.events import Audio, Done, Error, Reconnected, Sentence, Stopped
from voicechat.client.playback import Output

PLAYED_EVERY = 4  # frames between two `played` reports


@dataclass(frozen=True, slots=True)
class TurnOutcome:
    turn: str
    ended: str  # "done", "stopped" or "failed"
    quit: bool  # the listener pressed q
    first_audio_s: float | None
    sentences: int
    audio_ms: int

    @property
    def summary(self) -> str:
        if self.ended == "done" and self.audio_ms == 0:
            return f"done: {self.sentences} sentences, text only"
        if self.ended == "done":
            return f"done: {self.sentences} sentences, {self.audio_ms / 1000:.1f} s of audio"
        return self.ended


class Conversation:
    """Asks prompts over ``voice`` and speaks the answers into ``output``."""

    def __init__(
        self,
        voice: Chat,
        *,
        output: Output,
        view: TurnView,
        terminal: Terminal | None = None,
        voice_name: str | None = None,
        audio: bool = True,
    ) -> None:
        self._voice = voice
        self._audio = audio  # False: text-only turns
        self._output = output
        self._view = view
        self._terminal = terminal if terminal is not None and terminal.is_tty else None
        self._voice_name = voice_name
        self._numbers = itertools.count(1)
        self._turn = ""
        self._paused = self._stopping = self._quit = False
        self._reported = -1
        self._current = -1

    async def ask(self, prompt: str, *, echo: bool = True) -> TurnOutcome:
        """Speak the answer to ``prompt``; return when it is heard, stopped or refused.
        ``echo``: show the prompt (not when the listener just typed it)."""
        self._turn = turn = f"cli{next(self._numbers)}"
        self._paused = self._stopping = self._quit = False
        self._reported = self._current = -1
        self._view.asked(prompt if echo else None)
        started = time.perf_counter()
        keys = self._terminal.keys() if self._terminal else contextlib.nullcontext()
        try:
            with keys:
                outcome = await self._listen_with_helpers(prompt, turn, started)
        except* ConnectionFailed as failed:
            raise failed.exceptions[0] from None
        if self._stopping and outcome.ended == "done":
            outcome = TurnOutcome(turn, "stopped", self._quit, outcome.first_audio_s, 0, 0)
        self._view.finished(outcome.summary)
        return outcome

    async def _listen_with_helpers(self, prompt: str, turn: str, started: float) -> TurnOutcome:
        async with asyncio.TaskGroup() as group:
            helpers = []
            if self._terminal is not None:
                helpers.append(group.create_task(self._read_keys(self._terminal)))
            if self._output.plays:
                helpers.append(group.create_task(self._follow_playback()))
            try:
                outcome = await self._listen(prompt, turn, started)
                if outcome.ended == "done":
                    await self._output.drained()  # the keys still work meanwhile
            finally:
                for task in helpers:
                    task.cancel()
        return outcome

    async def _listen(self, prompt: str, turn: str, started: float) -> TurnOutcome:
        first_audio: float | None = None

        def outcome(ended: str, done: Done | None = None) -> TurnOutcome:
            sentences, audio_ms = (done.sentences, done.audio_ms) if done else (0, 0)
            return TurnOutcome(turn, ended, self._quit, first_audio, sentences, audio_ms)

        events = self._voice.say(prompt, voice=self._voice_name, audio=self._audio, turn_id=turn)
        async with contextlib.aclosing(events):
            async for event in events:
                if isinstance(event, Error):
                    self._view.error(event.message)
                    if event.turn is None:  # the server refused the start itself
                        return outcome("failed")
                elif isinstance(event, Reconnected):
                    self._view.note("the connection dropped; reconnected, the answer goes on")
                elif isinstance(event, Sentence):
                    self._view.sentence(event.index, event.text)
                    if not self._output.plays:
                        self._show_current(event.index)
                elif isinstance(event, Audio):
                    if first_audio is None:
                        first_audio = time.perf_counter() - started
                        self._view.first_audio(first_audio)
                    self._output.add(turn, event.sentence, event.seq, event.mp3)
                elif isinstance(event, Done):
                    return outcome("done", event)
                elif isinstance(event, Stopped):
                    return outcome("stopped")
        raise ConnectionFailed("the server closed the connection")

    def _show_current(self, index: int) -> None:
        if index != self._current:
            self._current = index
            self._view.current(index)

    async def _read_keys(self, terminal: Terminal) -> None:
        while (keys := await terminal.read_keys()) is not None:
            for key in keys:
                if key == " ":
                    await self._toggle_pause()
                elif key in "sS":
                    await self._stop()
                elif key in "qQ\x04":
                    self._quit = True
                    await self._stop()

    async def _toggle_pause(self) -> None:
        if self._stopping:
            return
        self._paused = not self._paused
        if self._paused:
            self._output.pause()
            await self._voice.pause()
            self._view.state("paused")
        else:
            self._output.resume()
            await self._voice.resume()
            self._view.state("speaking")

    async def _stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        self._output.clear()  # what is buffered here must not be heard either
        self._view.state("stopping")
        await self._voice.stop()

    async def _follow_playback(self) -> None:
        while True:
            heard = await self._output.heard()
            if heard.turn != self._turn:
                continue
            self._show_current(heard.sentence)
            if heard.seq - 1 - self._reported >= PLAYED_EVERY:
                self._reported = heard.seq - 1
                await self._voice.played(heard.turn, self._reported)
