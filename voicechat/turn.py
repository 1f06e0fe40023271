"""One turn: the LLM's answer to one prompt, spoken.

Three stages in one ``asyncio.TaskGroup``, linked by small bounded queues so that a paused or
slow listener slows everything upstream instead of piling audio up::

    read_llm ──chunks──▶ synthesize_ahead ──SentenceAudio──▶ send_sentences ──▶ session

``synthesize_ahead`` starts the synthesis of up to ``lookahead`` sentences beyond the one being
sent; ``send_sentences`` still emits their audio strictly in order. Cancelling the task that
runs :meth:`Turn.run` cancels every stage and every synthesis, and closes the LLM stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from voicechat import protocol
from voicechat.audio import duration_s
from voicechat.chunker import SentenceChunker
from voicechat.errors import LLMFailed, TTSFailed, VoicechatError
from voicechat.llm.base import ChatMessage, LLMBackend
from voicechat.tts.base import TTSBackend

log = logging.getLogger("voicechat.turn")

# (message, hold_while_paused) -> whether it was written
Send = Callable[[dict[str, Any], bool], Awaitable[bool]]

_END = None  # sentinel closing a queue


@dataclass(slots=True)
class SentenceAudio:
    """The synthesis of one chunk: MP3 pieces (or one error) arrive on ``pieces``."""

    index: int
    text: str
    pieces: asyncio.Queue[bytes | VoicechatError | None] = field(default_factory=asyncio.Queue)


@dataclass(frozen=True, slots=True)
class TurnOptions:
    voice: str | None = None
    lookahead: int = 2
    first_clause_chars: int = 30
    max_chunk_chars: int = 240
    tts_retries: int = 1


class Turn:
    """Speaks the answer to ``messages``; see the module docstring for the flow."""

    def __init__(
        self,
        turn_id: str,
        messages: Sequence[ChatMessage],
        *,
        llm: LLMBackend,
        tts: TTSBackend,
        send: Send,
        options: TurnOptions,
    ) -> None:
        self.id = turn_id
        self._messages = list(messages)
        self._llm = llm
        self._tts = tts
        self._send = send
        self._options = options
        self._resumed = asyncio.Event()
        self._resumed.set()
        self.stopped = False  # set by the session: from then on nothing of this turn is sent
        self.finished = False  # set once `done` is on the wire
        self.text = ""  # everything the LLM said
        self.spoken: list[str] = []  # chunks whose audio was (at least partly) sent
        self.audio_seconds = 0.0
        self.seq = 0  # the next audio frame's number
        self.played_seq = -1  # the last frame the listener reported as played

    # -- control, called by the session --------------------------------------------------

    @property
    def paused(self) -> bool:
        return not self._resumed.is_set()

    @property
    def active(self) -> bool:
        return not (self.stopped or self.finished)

    def pause(self) -> None:
        self._resumed.clear()

    def resume(self) -> None:
        self._resumed.set()

    def played(self, seq: int) -> None:
        """Record the listener's playback progress (``played`` messages); never goes back."""
        self.played_seq = max(self.played_seq, min(seq, self.seq - 1))

    async def wait_resumed(self) -> None:
        await self._resumed.wait()

    # -- the pipeline -----------------------------------------------------------------------

    async def run(self) -> None:
        """Speak the whole answer, then send ``done``. Cancel the calling task to stop."""
        chunks: asyncio.Queue[str | None] = asyncio.Queue(maxsize=1)
        ready: asyncio.Queue[SentenceAudio | None] = asyncio.Queue()
        slots = asyncio.Semaphore(self._options.lookahead + 1)
        async with asyncio.TaskGroup() as group:
            group.create_task(self._read_llm(chunks), name=f"turn {self.id} llm")
            group.create_task(
                self._synthesize_ahead(chunks, ready, slots, group), name=f"turn {self.id} tts"
            )
            group.create_task(self._send_sentences(ready, slots), name=f"turn {self.id} send")
        done = protocol.done_event(
            self.id,
            text=self.text,
            sentences=len(self.spoken),
            audio_ms=round(self.audio_seconds * 1000),
        )
        if await self._send(done, False):
            self.finished = True

    async def _read_llm(self, chunks: asyncio.Queue[str | None]) -> None:
        chunker = SentenceChunker(
            first_clause_min_chars=self._options.first_clause_chars,
            max_chars=self._options.max_chunk_chars,
        )
        try:
            async with contextlib.aclosing(self._llm.stream(self._messages)) as deltas:
                async for delta in deltas:
                    self.text += delta
                    await self._send(protocol.text_event(self.id, delta), False)
                    for chunk in chunker.feed(delta):
                        await chunks.put(chunk)
            for chunk in chunker.flush():
                await chunks.put(chunk)
        except LLMFailed as exc:
            await self._report(exc)
        except Exception as exc:  # a backend bug must not take the session down
            log.exception("turn %s: LLM backend %s crashed", self.id, self._llm.name)
            await self._report(LLMFailed(f"the LLM backend failed: {exc}", backend=self._llm.name))
        await chunks.put(_END)

    async def _synthesize_ahead(
        self,
        chunks: asyncio.Queue[str | None],
        ready: asyncio.Queue[SentenceAudio | None],
        slots: asyncio.Semaphore,
        group: asyncio.TaskGroup,
    ) -> None:
        index = 0
        while (text := await chunks.get()) is not _END:
            await slots.acquire()  # released by _send_sentences when a sentence is sent
            sentence = SentenceAudio(index, text)
            group.create_task(self._synthesize(sentence), name=f"turn {self.id} tts {index}")
            ready.put_nowait(sentence)
            index += 1
        ready.put_nowait(_END)

    async def _synthesize(self, sentence: SentenceAudio) -> None:
        for attempt in range(self._options.tts_retries + 1):
            produced = False
            try:
                stream = self._tts.synthesize(sentence.text, voice=self._options.voice)
                async with contextlib.aclosing(stream) as pieces:
                    async for piece in pieces:
                        produced = True
                        sentence.pieces.put_nowait(piece)
                if produced:
                    break
                error: VoicechatError = TTSFailed(
                    "the TTS returned no audio", backend=self._tts.name
                )
            except TTSFailed as exc:
                error = exc
            except Exception as exc:
                log.exception("turn %s: TTS backend %s crashed", self.id, self._tts.name)
                error = TTSFailed(f"the TTS backend failed: {exc}", backend=self._tts.name)
            if produced or attempt == self._options.tts_retries:
                # Audio already went out: a retry would repeat it, so report instead.
                sentence.pieces.put_nowait(error)
                break
            log.warning(
                "turn %s: sentence %d failed (%s); retrying", self.id, sentence.index, error
            )
        sentence.pieces.put_nowait(_END)

    async def _send_sentences(
        self, ready: asyncio.Queue[SentenceAudio | None], slots: asyncio.Semaphore
    ) -> None:
        while (sentence := await ready.get()) is not _END:
            await self._send_sentence(sentence)
            slots.release()

    async def _send_sentence(self, sentence: SentenceAudio) -> None:
        started = False
        while (piece := await sentence.pieces.get()) is not _END:
            if isinstance(piece, VoicechatError):
                await self._report(piece, sentence=sentence.index)
                continue
            if not started:
                header = protocol.sentence_event(self.id, sentence.index, sentence.text)
                if not await self._send(header, True):
                    return
            frame = protocol.audio_event(self.id, sentence.index, self.seq, piece)
            if not await self._send(frame, True):
                return
            if not started:
                self.spoken.append(sentence.text)
                started = True
            self.seq += 1
            self.audio_seconds += duration_s(piece)

    async def _report(self, error: VoicechatError, **extra: Any) -> None:
        log.warning("turn %s: %s (%s)", self.id, error.message, error.code)
        await self._send(protocol.error_event(error, turn=self.id, **extra), False)
