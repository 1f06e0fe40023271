"""Provisional chunks in a turn, end to end through the real server: a provisional chunk starts
synthesizing at once, none of its audio goes out before the chunker confirms it, and a retracted
chunk's synthesis is cancelled and its text spoken with the next chunk."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from typing import Any

import pytest

from tests.conftest import ClientFactory, ScriptedLLM, audio_of, eventually
from voicechat.errors import LLMFailed
from voicechat.llm.base import ChatMessage
from voicechat.tts.tone import ToneTTS

pytestmark = pytest.mark.timeout(30)


class WatchedTTS:
    """The tone TTS, with a record per text: when its first piece was made, whether its
    synthesis was closed; a text in ``stall`` never ends after its first piece."""

    def __init__(self, *, stall: Sequence[str] = ()) -> None:
        self.inner = ToneTTS()
        self.name = self.inner.name
        self.sample_rate = self.inner.sample_rate
        self.stall = set(stall)
        self.first_piece: dict[str, asyncio.Event] = {}
        self.closed: list[str] = []

    def voices(self) -> list[str]:
        return self.inner.voices()

    def made(self, text: str) -> asyncio.Event:
        return self.first_piece.setdefault(text, asyncio.Event())

    async def synthesize(
        self, text: str, *, voice: str | None = None
    ) -> AsyncGenerator[bytes, None]:
        try:
            async for piece in self.inner.synthesize(text, voice=voice):
                yield piece
                self.made(text).set()
                if text in self.stall:
                    await asyncio.Event().wait()  # only a cancellation ends this synthesis
        finally:
            self.closed.append(text)

    async def aclose(self) -> None:
        await self.inner.aclose()


class BrokenLLM:
    """Yields its deltas, then fails as a broken stream would."""

    name = "broken"

    def __init__(self, deltas: Sequence[str]) -> None:
        self.deltas = list(deltas)

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncGenerator[str, None]:
        for delta in self.deltas:
            await asyncio.sleep(0)
            yield delta
        raise LLMFailed("the stream broke", backend=self.name)

    async def aclose(self) -> None:
        return None


def sentences_of(events: Sequence[dict[str, Any]]) -> list[tuple[int, str]]:
    return [(e["index"], e["data"]) for e in events if e["action"] == "sentence"]


async def test_a_retracted_chunk_sends_none_of_its_audio(voice_client: ClientFactory) -> None:
    llm = ScriptedLLM(["Edit config.", "yaml now."], hold_after=1)
    tts = WatchedTTS(stall=["Edit config."])
    client, _ = await voice_client(llm=llm, tts=tts)
    await client.start("which file?")
    # The provisional chunk is synthesizing, and has audio ready, before the LLM goes on.
    await asyncio.wait_for(tts.made("Edit config.").wait(), 10)
    llm.release.set()
    events = await client.until("done")
    assert sentences_of(events) == [(0, "Edit config.yaml now.")]
    assert audio_of(events) and all(frame["sentence"] == 0 for frame in audio_of(events))
    assert "Edit config." in tts.closed  # its stalled synthesis was cancelled


async def test_a_confirmed_provisional_chunk_is_sent_only_after_the_confirming_delta(
    voice_client: ClientFactory,
) -> None:
    llm = ScriptedLLM(["Hello there.", " How are", " you?"], hold_after=1)
    tts = WatchedTTS()
    client, _ = await voice_client(llm=llm, tts=tts)
    await client.start("hi")
    await asyncio.wait_for(tts.made("Hello there.").wait(), 10)
    await eventually(lambda: "Hello there." in tts.closed)  # all its audio is made
    llm.release.set()
    events = await client.until("done")
    assert sentences_of(events) == [(0, "Hello there."), (1, "How are you?")]
    confirming = events.index({"action": "text", "turn": events[0]["turn"], "data": " How are"})
    first_audio = events.index(audio_of(events)[0])
    assert confirming < first_audio
    frames = audio_of(events)
    assert [frame["seq"] for frame in frames] == list(range(len(frames)))
    assert [frame["sentence"] for frame in frames] == sorted(frame["sentence"] for frame in frames)
    assert {frame["sentence"] for frame in frames} == {0, 1}


async def test_a_retraction_joins_the_text_to_the_next_chunk_in_order(
    voice_client: ClientFactory,
) -> None:
    deltas = ["Really?", "!", " Then", " we go.", " Bye", "."]
    client, _ = await voice_client(llm=ScriptedLLM(deltas), tts=WatchedTTS())
    events = await client.turn("go")
    assert sentences_of(events) == [(0, "Really?!"), (1, "Then we go."), (2, "Bye.")]
    assert [frame["sentence"] for frame in audio_of(events)][-1] == 2


async def test_an_llm_failure_speaks_the_provisional_sentence(
    voice_client: ClientFactory,
) -> None:
    llm = BrokenLLM(["Fine so far.", " It works.", " And then"])
    client, _ = await voice_client(llm=llm, tts=WatchedTTS())
    events = await client.turn("go")
    errors = [e for e in events if e["action"] == "error"]
    assert [e["data"]["code"] for e in errors] == ["llm_failed"]
    assert sentences_of(events) == [(0, "Fine so far."), (1, "It works.")]
    assert {frame["sentence"] for frame in audio_of(events)} == {0, 1}
    llm.deltas = ["Fine so far.", " It works."]  # broken right after the mark
    events = await client.turn("again")
    assert sentences_of(events) == [(0, "Fine so far."), (1, "It works.")]
