"""The bench's LLM and TTS backends for voicechat, and the ideal timeline they allow.

Both follow ``bench.workload``: the LLM yields the scripted tokens on an absolute schedule, the TTS
yields real MP3 (a tone per chunk, rendered once and cached, so that it costs the server what a
remote TTS costs: waiting) with its first piece ``tts_latency`` after the request and each later
piece when the audio before it has been synthesized at ``rtf``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass

from bench.workload import Workload, sleep_until, stream_tokens
from voicechat.llm.base import ChatMessage
from voicechat.pipeline.audio import duration_s, split_frames
from voicechat.pipeline.chunker import Confirmed, Provisional, SentenceChunker
from voicechat.tts.tone import ToneTTS


class BenchLLM:
    name = "bench"

    def __init__(self, workload: Workload, lateness: list[float] | None = None) -> None:
        self._workload = workload
        self._lateness = lateness

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncGenerator[str, None]:
        async for token in stream_tokens(self._workload, self._lateness):
            yield token

    async def aclose(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Speech:
    pieces: tuple[bytes, ...]
    ready_at: tuple[float, ...]  # seconds after the request at which each piece is yielded
    seconds: float  # of audio, all pieces


class BenchTTS:
    name = "bench"

    def __init__(self, workload: Workload, lateness: list[float] | None = None) -> None:
        self.sample_rate = workload.sample_rate
        self._lateness = lateness
        self._workload = workload
        self._tone = ToneTTS(sample_rate=workload.sample_rate, ms_per_char=workload.ms_per_char)
        self._cache: dict[str, Speech] = {}

    def voices(self) -> list[str]:
        return ["tone-low"]

    def speech(self, text: str) -> Speech:
        """The pieces for ``text`` and their schedule (rendered once per text)."""
        speech = self._cache.get(text)
        if speech is None:
            pieces = split_frames(self._tone.render(text), max_ms=self._workload.piece_ms)
            offsets, total = [], 0.0
            for piece in pieces:
                offsets.append(total)
                total += duration_s(piece)
            speech = Speech(tuple(pieces), tuple(self._workload.piece_times(offsets)), total)
            self._cache[text] = speech
        return speech

    async def synthesize(
        self, text: str, *, voice: str | None = None
    ) -> AsyncGenerator[bytes, None]:
        speech = self.speech(text)
        started = time.perf_counter()
        for piece, ready_at in zip(speech.pieces, speech.ready_at, strict=True):
            await sleep_until(started + ready_at, self._lateness)
            yield piece

    async def aclose(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Ideal:
    chunks: tuple[str, ...]
    text_complete: tuple[float, ...]  # per chunk: seconds after start when it was confirmed
    synthesis_start: tuple[float, ...]  # per chunk: when it was emitted, provisional or not
    first_audio: float  # chunk 0's synthesis start + TTS latency, not before its confirmation
    last_audio: float  # the pipelined bound with `lookahead` syntheses ahead
    frames: int
    frame_ends: tuple[float, ...]  # seconds of the answer's audio up to the end of frame `seq`


def chunk_times(
    workload: Workload, *, first_clause_chars: int, max_chunk_chars: int
) -> tuple[list[str], list[float], list[float]]:
    """The answer's chunks, when each one's synthesis can start (its provisional or confirmed
    emission) and when it is confirmed (the stream ends with its last token)."""
    chunker = SentenceChunker(first_clause_min_chars=first_clause_chars, max_chars=max_chunk_chars)
    chunks: list[str] = []
    starts: list[float] = []
    confirmed: list[float] = []
    provisional_at = 0.0
    deltas = [*workload.tokens, None]
    for index, token in enumerate(deltas):
        at = workload.token_time(min(index, len(workload.tokens) - 1))
        for event in chunker.push(token) if token is not None else chunker.finish():
            if isinstance(event, Provisional):
                provisional_at = at
            elif isinstance(event, Confirmed):
                chunks.append(event.text)
                starts.append(provisional_at if event.provisional else at)
                confirmed.append(at)
    return chunks, starts, confirmed


def ideal_timeline(
    workload: Workload,
    tts: BenchTTS,
    *,
    first_clause_chars: int,
    max_chunk_chars: int,
    lookahead: int,
) -> Ideal:
    """What a server that adds no time at all would achieve with these backends."""
    chunks, starts, complete = chunk_times(
        workload, first_clause_chars=first_clause_chars, max_chunk_chars=max_chunk_chars
    )
    sent_end: list[float] = []
    frames = 0
    frame_ends: list[float] = []
    for j, (chunk, ready) in enumerate(zip(chunks, starts, strict=True)):
        start = ready if j <= lookahead else max(ready, sent_end[j - lookahead - 1])
        speech = tts.speech(chunk)
        frames += len(speech.pieces)
        for piece in speech.pieces:
            frame_ends.append((frame_ends[-1] if frame_ends else 0.0) + duration_s(piece))
        finish = max(start + speech.ready_at[-1], complete[j])
        sent_end.append(max(sent_end[-1] if sent_end else 0.0, finish))
    return Ideal(
        chunks=tuple(chunks),
        text_complete=tuple(complete),
        synthesis_start=tuple(starts),
        first_audio=max(starts[0] + workload.tts_latency, complete[0]),
        last_audio=sent_end[-1],
        frames=frames,
        frame_ends=tuple(frame_ends),
    )
