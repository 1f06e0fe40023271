"""A conversation from the terminal over one WebSocket session: ask, listen, repeat.

During a turn three things run in one ``TaskGroup``: the event loop of the socket (this
module's :meth:`Conversation._listen`), the keys (space, s, q) and, when the output plays,
the playback follower that marks the sentence being heard and reports ``played``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import time
from dataclasses import dataclass
from typing import Any

from voicechat.client.connection import ConnectionFailed, VoiceConnection
from voicechat.client.console import Terminal, TurnView
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
        voice: VoiceConnection,
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
        await self._voice.start(prompt, voice=self._voice_name, turn_id=turn, audio=self._audio)
        keys = self._terminal.keys() if self._terminal else contextlib.nullcontext()
        try:
            with keys:
                outcome = await self._listen_with_helpers(turn, started)
        except* ConnectionFailed as failed:
            raise failed.exceptions[0] from None
        if self._stopping and outcome.ended == "done":
            outcome = TurnOutcome(turn, "stopped", self._quit, outcome.first_audio_s, 0, 0)
        self._view.finished(outcome.summary)
        return outcome

    async def _listen_with_helpers(self, turn: str, started: float) -> TurnOutcome:
        async with asyncio.TaskGroup() as group:
            helpers = []
            if self._terminal is not None:
                helpers.append(group.create_task(self._read_keys(self._terminal)))
            if self._output.plays:
                helpers.append(group.create_task(self._follow_playback()))
            try:
                outcome = await self._listen(turn, started)
                if outcome.ended == "done":
                    await self._output.drained()  # the keys still work meanwhile
            finally:
                for task in helpers:
                    task.cancel()
        return outcome

    async def _listen(self, turn: str, started: float) -> TurnOutcome:
        first_audio: float | None = None
        seen = False  # whether any event of this turn arrived

        def outcome(ended: str, data: dict[str, Any] | None = None) -> TurnOutcome:
            data = data or {}
            return TurnOutcome(
                turn,
                ended,
                self._quit,
                first_audio,
                int(data.get("sentences", 0)),
                int(data.get("audio_ms", 0)),
            )

        while (event := await self._voice.receive()) is not None:
            action, mine = event.get("action"), event.get("turn") == turn
            if action == "error" and (mine or (not seen and "turn" not in event)):
                self._view.error(event["data"]["message"])
                if not mine:  # the server refused the start itself
                    return outcome("failed")
                continue
            if not mine:
                continue  # acknowledgements of an idle session, events of earlier turns
            seen = True
            if action == "sentence":
                self._view.sentence(event["index"], event["data"])
                if not self._output.plays:
                    self._show_current(event["index"])
            elif action == "audio":
                if first_audio is None:
                    first_audio = time.perf_counter() - started
                    self._view.first_audio(first_audio)
                mp3 = base64.b64decode(event["data"])
                self._output.add(turn, event["sentence"], event["seq"], mp3)
            elif action == "done":
                return outcome("done", event["data"])
            elif action == "stopped":
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
