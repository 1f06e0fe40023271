"""One turn: the LLM's answer to one prompt, spoken.

Three stages in one ``asyncio.TaskGroup``, linked by small bounded queues so that a paused or
slow listener slows everything upstream instead of piling audio up::

    read_llm ──chunks──▶ synthesize_ahead ──SentenceAudio──▶ send_sentences ──▶ session

``synthesize_ahead`` starts the synthesis of up to ``lookahead`` sentences beyond the one being
sent. A provisional chunk (:mod:`voicechat.pipeline.chunker`) starts synthesizing at once, but
none of its audio is sent until the chunker confirms it; a retraction cancels that synthesis,
and its text comes back in the next chunk. ``send_sentences`` emits the audio strictly in
order, in frames of at most ``frame_ms``, each sent at most ``lead`` seconds ahead of the
listener's playback clock (:mod:`voicechat.pipeline.pacing`). Cancelling the task that runs
:meth:`Turn.run` cancels every stage and every synthesis, and closes the LLM stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from voicechat import protocol
from voicechat.errors import LLMFailed, NoAudio, TTSFailed, VoicechatError
from voicechat.llm.base import ChatMessage, LLMBackend
from voicechat.pipeline.audio import duration_s, pcm_seconds, split_frames, split_pcm
from voicechat.pipeline.cancellation import release_cancellation
from voicechat.pipeline.chunker import (
    ChunkEvent,
    Confirmed,
    Provisional,
    Retracted,
    SentenceChunker,
)
from voicechat.pipeline.pacing import ListenerClock
from voicechat.pipeline.silence import SilenceLimit
from voicechat.tts.base import PcmSpeaker, TTSBackend

log = logging.getLogger("voicechat.turn")

# (message, hold_while_paused) -> whether it was written
Send = Callable[[dict[str, Any], bool], Awaitable[bool]]

_END = None  # sentinel closing a queue
FRAMES_AHEAD = 8  # synthesized frames a sentence may hold before its turn to be sent


@dataclass(slots=True)
class SentenceAudio:
    """The synthesis of one chunk: MP3 frames (or one error) arrive on ``pieces``, a few at a
    time, so that a long sentence ahead of a slow listener waits instead of piling up."""

    index: int
    text: str
    pieces: asyncio.Queue[bytes | VoicechatError | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=FRAMES_AHEAD)
    )
    # True once its chunk is confirmed, False if it was retracted: no audio is sent before.
    confirmed: asyncio.Future[bool] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    synthesis: asyncio.Task[None] | None = None


@dataclass(frozen=True, slots=True)
class TurnOptions:
    voice: str | None = None
    lookahead: int = 2
    first_clause_chars: int = 30
    max_chunk_chars: int = 240
    tts_retries: int = 1
    tts_timeout: float = 15.0  # seconds to the first piece of a sentence, and between pieces
    end_turn_on_tts_failure: bool = False  # else report the sentence and go on with the next
    lead: float = 2.0  # seconds of audio sent ahead of the listener at most (0: no pacing)
    frame_ms: int = 500  # longest audio frame; long sentences are cut at MP3 frame boundaries
    # Set: a backend that makes PCM itself (tts.base.PcmSpeaker) sends raw 16-bit mono PCM at
    # this rate in the audio frames instead of MP3 (for routes that hand PCM to their client).
    pcm_rate: int | None = None

    audio: bool = True  # False: text only, chunks go out as `sentence`s, nothing is synthesized


def _start(
    group: asyncio.TaskGroup, stage: Coroutine[Any, Any, None], name: str
) -> asyncio.Task[None]:
    """Run ``stage`` in ``group``; if it is cancelled, its error is released at once (heap)."""
    task = group.create_task(stage, name=name)
    task.add_done_callback(release_cancellation)
    return task


async def _send_nothing(message: dict[str, Any], hold: bool) -> bool:
    return False


class _EndTurn(Exception):
    """Raised by the sender to end the turn early (a TTS failure with end_turn_on_tts_failure)."""


class _Abandoned(Exception):
    """Raised by the sender when the session dropped a frame: the turn was stopped or the
    client is gone, so nothing more is worth synthesizing."""


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
        self.stopped = False  # see stop()
        self.finished = False  # set once `done` is on the wire
        self.text = ""  # everything the LLM said
        self.seq = 0  # the next audio frame's number
        self.clock = ListenerClock(lead=options.lead)
        self.pcm_rate = options.pcm_rate if isinstance(tts, PcmSpeaker) else None
        # (audio time at its start, text) of each chunk whose audio was (at least partly) sent
        self._sentence_starts: list[tuple[float, str]] = []

    # -- control, called by the session --------------------------------------------------

    @property
    def paused(self) -> bool:
        return not self._resumed.is_set()

    @property
    def active(self) -> bool:
        return not (self.stopped or self.finished)

    def stop(self) -> None:
        """From now on nothing of this turn is sent (the session's writer checks), and what
        the listener heard no longer grows: ``spoken`` and ``heard()`` stay as they are."""
        self.stopped = True
        self.clock.pause()

    def pause(self) -> None:
        self._resumed.clear()
        self.clock.pause()

    def resume(self) -> None:
        self._resumed.set()
        self.clock.resume()

    def played(self, seq: int) -> None:
        """The listener reports it has played audio frame ``seq``."""
        self.clock.played(seq)

    @property
    def spoken(self) -> list[str]:
        """The chunks whose audio was (at least partly) sent."""
        return [text for _, text in self._sentence_starts]

    def heard(self) -> str:
        """The sentences the listener has started to hear, by the playback clock (of a
        text-only turn: every sentence sent, as nothing plays)."""
        if not self._options.audio:
            return " ".join(self.spoken)
        position = self.clock.position()
        return " ".join(text for start, text in self._sentence_starts if start < position)

    async def wait_resumed(self) -> None:
        await self._resumed.wait()

    # -- the pipeline -----------------------------------------------------------------------

    async def run(self) -> None:
        """Speak the whole answer, then send ``done``. Cancel the calling task to stop."""
        try:
            await self._run()
        finally:
            # Nothing is sent after the turn. Dropping the callback also frees the caller's
            # closure, which refers back to this turn: a cycle that only the garbage collector
            # would break, once the turn's queues and tasks had aged into its old generations.
            self._send = _send_nothing

    async def _run(self) -> None:
        chunks: asyncio.Queue[ChunkEvent | None] = asyncio.Queue(maxsize=1)
        ready: asyncio.Queue[SentenceAudio | None] = asyncio.Queue()
        slots = asyncio.Semaphore(self._options.lookahead + 1)
        abandoned = False
        try:
            async with asyncio.TaskGroup() as group:
                _start(group, self._read_llm(chunks), f"turn {self.id} llm")
                if not self._options.audio:
                    _start(group, self._send_texts(chunks), f"turn {self.id} send")
                else:
                    synthesize = self._synthesize_ahead(chunks, ready, slots, group)
                    _start(group, synthesize, f"turn {self.id} tts")
                    _start(group, self._send_sentences(ready, slots), f"turn {self.id} send")
        except* _EndTurn:
            pass  # the failure was reported; the turn ends with `done` for what was spoken
        except* _Abandoned:
            abandoned = True
        if abandoned:
            return
        done = protocol.done_event(
            self.id,
            text=self.text,
            sentences=len(self._sentence_starts),
            audio_ms=round(self.clock.sent * 1000),
        )
        if await self._send(done, False):
            self.finished = True

    async def _read_llm(self, chunks: asyncio.Queue[ChunkEvent | None]) -> None:
        chunker = SentenceChunker(
            first_clause_min_chars=self._options.first_clause_chars,
            max_chars=self._options.max_chunk_chars,
        )
        try:
            async with contextlib.aclosing(self._llm.stream(self._messages)) as deltas:
                async for delta in deltas:
                    self.text += delta
                    await self._send(protocol.text_event(self.id, delta), False)
                    for event in chunker.push(delta):
                        await chunks.put(event)
            for event in chunker.finish():
                await chunks.put(event)
        except Exception as exc:
            # The sentence that was provisional when the LLM broke off is complete: speak it.
            for event in chunker.cut_short():
                await chunks.put(event)
            if not isinstance(exc, LLMFailed):  # a backend bug must not take the session down
                log.exception("turn %s: LLM backend %s crashed", self.id, self._llm.name)
                exc = LLMFailed(f"the LLM backend failed: {exc}", backend=self._llm.name)
            await self._report(exc)
        await chunks.put(_END)

    async def _synthesize_ahead(
        self,
        chunks: asyncio.Queue[ChunkEvent | None],
        ready: asyncio.Queue[SentenceAudio | None],
        slots: asyncio.Semaphore,
        group: asyncio.TaskGroup,
    ) -> None:
        index = 0
        provisional: SentenceAudio | None = None  # the chunker keeps at most one open
        while (event := await chunks.get()) is not _END:
            if isinstance(event, Retracted) or (isinstance(event, Confirmed) and event.provisional):
                if provisional is not None:  # it is: the chunker settles it with the next event
                    _settle(provisional, confirmed=isinstance(event, Confirmed))
                    index += isinstance(event, Confirmed)
                    provisional = None
                continue
            await slots.acquire()  # released by _send_sentences when a sentence is sent
            sentence = SentenceAudio(index, event.text)
            name = f"turn {self.id} tts {index}"
            sentence.synthesis = _start(group, self._synthesize(sentence), name)
            ready.put_nowait(sentence)
            if isinstance(event, Provisional):
                provisional = sentence
            else:
                _settle(sentence, confirmed=True)
                index += 1
        ready.put_nowait(_END)

    async def _synthesize(self, sentence: SentenceAudio) -> None:
        for attempt in range(self._options.tts_retries + 1):
            produced = False
            try:
                async for frames in self._synthesize_frames(sentence.text):
                    produced = True
                    await sentence.pieces.put(frames)
                if produced:
                    break
                error: VoicechatError = NoAudio("the TTS returned no audio", backend=self._tts.name)
            except TTSFailed as exc:
                error = exc
            except Exception as exc:
                log.exception("turn %s: TTS backend %s crashed", self.id, self._tts.name)
                error = TTSFailed(f"the TTS backend failed: {exc}", backend=self._tts.name)
            if produced or attempt == self._options.tts_retries:
                # Audio already went out: a retry would repeat it, so report instead.
                await sentence.pieces.put(error)
                break
            log.warning(
                "turn %s: sentence %d failed (%s); retrying", self.id, sentence.index, error
            )
        await sentence.pieces.put(_END)

    async def _synthesize_frames(self, text: str) -> AsyncGenerator[bytes, None]:
        """The backend's MP3 for ``text`` as audio frames of at most ``frame_ms``; bytes that
        are no MP3 are dropped, and a backend silent for ``tts_timeout`` fails."""
        timeout = self._options.tts_timeout
        stream = self._audio_stream(text)
        # One timer for the stream, not one per piece (voicechat.pipeline.silence).
        with SilenceLimit(timeout) as silence:
            async with contextlib.aclosing(stream) as pieces:
                while True:
                    try:
                        piece = await silence.wait(anext(pieces))
                    except StopAsyncIteration:
                        return
                    except TimeoutError as exc:
                        message = f"the TTS sent nothing for {timeout:g} s"
                        raise TTSFailed(message, backend=self._tts.name) from exc
                    for frame in self._frames(piece):
                        yield frame

    def _audio_stream(self, text: str) -> AsyncGenerator[bytes, None]:
        if self.pcm_rate is not None:
            assert isinstance(self._tts, PcmSpeaker)
            voice = self._options.voice
            return self._tts.synthesize_pcm(text, sample_rate=self.pcm_rate, voice=voice)
        return self._tts.synthesize(text, voice=self._options.voice)

    def _frames(self, piece: bytes) -> list[bytes]:
        if self.pcm_rate is not None:
            return split_pcm(piece, sample_rate=self.pcm_rate, max_ms=self._options.frame_ms)
        return split_frames(piece, max_ms=self._options.frame_ms)

    def seconds_of(self, frame: bytes) -> float:
        """The audio seconds one of this turn's frames holds (PCM or MP3)."""
        if self.pcm_rate is not None:
            return pcm_seconds(frame, sample_rate=self.pcm_rate)
        return duration_s(frame)

    async def _send_texts(self, chunks: asyncio.Queue[ChunkEvent | None]) -> None:
        """Text only: each confirmed chunk goes out as its `sentence`, held while paused (a
        provisional one waits for its confirmation); the TTS is never asked for anything."""
        index = 0
        while (event := await chunks.get()) is not _END:
            if not isinstance(event, Confirmed):
                continue
            if not await self._send(protocol.sentence_event(self.id, index, event.text), True):
                raise _Abandoned
            self._sentence_starts.append((0.0, event.text))
            index += 1

    async def _send_sentences(
        self, ready: asyncio.Queue[SentenceAudio | None], slots: asyncio.Semaphore
    ) -> None:
        while (sentence := await ready.get()) is not _END:
            await self._send_sentence(sentence)
            slots.release()

    async def _send_sentence(self, sentence: SentenceAudio) -> None:
        if not await sentence.confirmed:
            return  # retracted: its synthesis was cancelled, and its text opens the next chunk
        started = False
        while (piece := await sentence.pieces.get()) is not _END:
            if isinstance(piece, VoicechatError):
                await self._report(piece, sentence=sentence.index)
                if self._options.end_turn_on_tts_failure:
                    raise _EndTurn
                continue
            await self.clock.wait_for_room()
            if not started:
                header = protocol.sentence_event(self.id, sentence.index, sentence.text)
                if not await self._send(header, True):
                    raise _Abandoned
            frame = protocol.audio_event(self.id, sentence.index, self.seq, piece)
            if not await self._send(frame, True):
                raise _Abandoned
            if not started:
                self._sentence_starts.append((self.clock.sent, sentence.text))
                started = True
            seconds = self.seconds_of(piece)
            self.clock.frame_sent(seconds)
            self.seq += 1

    async def _report(self, error: VoicechatError, **extra: Any) -> None:
        log.warning("turn %s: %s (%s)", self.id, error.message, error.code)
        await self._send(protocol.error_event(error, turn=self.id, **extra), False)


def _settle(sentence: SentenceAudio, *, confirmed: bool) -> None:
    """Let the sender send a confirmed chunk's audio; cancel a retracted chunk's synthesis."""
    sentence.confirmed.set_result(confirmed)
    if not confirmed and sentence.synthesis is not None:
        sentence.synthesis.cancel()
