"""Backends that fail, hang or send garbage, and clients that stop reading."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncGenerator

from tests.conftest import ClientFactory, ScriptedLLM, TrackingTTS, audio_of, eventually
from voicechat.errors import TTSFailed
from voicechat.server.keys import SESSIONS
from voicechat.tts.tone import ToneTTS

SENTENCES = ["One is first. ", "Two fails here. ", "Three is fine."]


class FaultyTTS(ToneTTS):
    """Tone speech, except for sentences containing ``fault_word``: those raise, hang or
    return garbage, ``times`` times (then speak normally)."""

    def __init__(self, mode: str, *, fault_word: str = "fails", times: int = 99) -> None:
        super().__init__()
        self.mode = mode
        self.fault_word = fault_word
        self.times = times
        self.calls = 0

    async def synthesize(
        self, text: str, *, voice: str | None = None
    ) -> AsyncGenerator[bytes, None]:
        if self.fault_word in text and self.times > 0:
            self.times -= 1
            self.calls += 1
            if self.mode == "raise":
                raise TTSFailed("injected failure", backend=self.name)
            if self.mode == "crash":
                raise RuntimeError("injected bug")
            if self.mode == "hang":
                await asyncio.sleep(3600)
            if self.mode == "garbage":
                yield b"this is not an mp3 at all" * 100
                return
            if self.mode == "silent":
                return
        async for piece in super().synthesize(text, voice=voice):
            yield piece


async def run_turn(
    voice_client: ClientFactory, tts: ToneTTS, **settings: object
) -> list[dict[str, object]]:
    client, _ = await voice_client(llm=ScriptedLLM(SENTENCES), tts=tts, **settings)
    return await client.turn("go")


def errors_of(events: list[dict[str, object]]) -> list[dict[str, object]]:
    return [e for e in events if e["action"] == "error"]


async def test_a_failing_sentence_is_retried_once_then_reported_and_the_turn_goes_on(
    voice_client: ClientFactory,
) -> None:
    tts = FaultyTTS("raise")
    events = await run_turn(voice_client, tts)
    assert tts.calls == 2  # the first try and one retry
    (error,) = errors_of(events)
    assert error["data"] == {"code": "tts_failed", "message": "injected failure", "sentence": 1}
    assert {f["sentence"] for f in audio_of(events)} == {0, 2}
    assert events[-1]["data"]["sentences"] == 2


async def test_a_sentence_that_fails_once_is_spoken_by_the_retry(
    voice_client: ClientFactory,
) -> None:
    tts = FaultyTTS("raise", times=1)
    events = await run_turn(voice_client, tts)
    assert errors_of(events) == []
    assert {f["sentence"] for f in audio_of(events)} == {0, 1, 2}


async def test_the_turn_can_end_at_a_failing_sentence_instead(voice_client: ClientFactory) -> None:
    events = await run_turn(voice_client, FaultyTTS("raise"), tts_failure="end")
    assert [e["data"]["code"] for e in errors_of(events)] == ["tts_failed"]
    assert {f["sentence"] for f in audio_of(events)} == {0}
    assert events[-1]["action"] == "done" and events[-1]["data"]["sentences"] == 1


async def test_a_hanging_tts_is_timed_out(voice_client: ClientFactory) -> None:
    events = await run_turn(voice_client, FaultyTTS("hang"), tts_timeout=0.2)
    (error,) = errors_of(events)
    assert "sent nothing for 0.2 s" in str(error["data"])
    assert {f["sentence"] for f in audio_of(events)} == {0, 2}


async def test_garbage_instead_of_mp3_counts_as_no_audio(voice_client: ClientFactory) -> None:
    tts = FaultyTTS("garbage")
    events = await run_turn(voice_client, tts)
    (error,) = errors_of(events)
    assert "no audio" in str(error["data"])
    assert tts.calls == 2


async def test_a_silent_tts_counts_as_a_failure(voice_client: ClientFactory) -> None:
    events = await run_turn(voice_client, FaultyTTS("silent"))
    assert [e["data"]["sentence"] for e in errors_of(events)] == [1]


async def test_a_tts_bug_is_reported_as_tts_failed(voice_client: ClientFactory) -> None:
    events = await run_turn(voice_client, FaultyTTS("crash"))
    assert [e["data"]["code"] for e in errors_of(events)] == ["tts_failed"]
    assert events[-1]["action"] == "done"


async def test_an_llm_that_breaks_mid_answer_ends_the_turn_with_an_error_and_done(
    voice_client: ClientFactory,
) -> None:
    client, _ = await voice_client()
    events = await client.turn("Break in the middle.")
    (error,) = errors_of(events)
    assert error["data"]["code"] == "llm_failed"
    done = events[-1]
    assert done["action"] == "done" and done["data"]["sentences"] >= 1
    assert (await client.turn("Count to five."))[-1]["data"]["sentences"] == 5


class HugeTTS(ToneTTS):
    """Real MP3, but a lot of it per sentence: 200 ms frames, ~20 minutes per sentence."""

    async def synthesize(
        self, text: str, *, voice: str | None = None
    ) -> AsyncGenerator[bytes, None]:
        second = self.render("x" * 33)  # about one second of tone
        for _ in range(1200):
            yield second
            await asyncio.sleep(0)


async def test_a_client_that_does_not_read_slows_the_turn_then_is_disconnected(
    voice_client: ClientFactory,
) -> None:
    tts = TrackingTTS(HugeTTS())
    llm = ScriptedLLM(["One. ", "Two. ", "Three. ", "Four. ", "Five. ", "Six."])
    client, http = await voice_client(llm=llm, tts=tts, send_timeout=0.5)
    transport = client.ws._response.connection.transport  # noqa: SLF001 - stop reading for real
    transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    transport.pause_reading()
    await client.start("go")
    sessions = http.server.app[SESSIONS]
    # The server's writes block once the socket buffers are full; after send_timeout without
    # progress the session is dropped and everything it ran is cancelled.
    await eventually(lambda: not sessions, within=60)
    await eventually(lambda: tts.running == 0 and llm.closed == llm.opened)
    assert tts.started <= 3  # generation waited: the sentence being sent and 2 ahead
    transport.abort()  # our side of the dead connection
