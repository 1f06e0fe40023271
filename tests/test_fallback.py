"""Fallback chains: each chunk goes to the first backend that can speak it; failed and silent
backends cool down; one sample rate for the whole chain."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Literal

import pytest

from voicechat.config import Settings
from voicechat.errors import ConfigError, NoAudio, TTSFailed
from voicechat.pipeline.audio import iter_frames
from voicechat.pipeline.mp3_decoder import decode_mp3
from voicechat.tts.fallback import FallbackTTS
from voicechat.tts.registry import create_tts
from voicechat.tts.resample import ResampledTTS
from voicechat.tts.tone import ToneTTS

Mode = Literal["ok", "fail", "silent", "empty", "fail_after_audio"]


@dataclass
class FakeTTS:
    """Speaks tones (or fails as told); counts its calls."""

    name: str
    mode: Mode = "ok"
    sample_rate: int = 24000
    own_voices: tuple[str, ...] = ()
    calls: list[tuple[str, str | None]] = field(default_factory=list)
    gate: asyncio.Event | None = None  # wait for it before failing

    def voices(self) -> list[str]:
        return [*self.own_voices, f"{self.name}-voice"]

    async def synthesize(
        self, text: str, *, voice: str | None = None
    ) -> AsyncGenerator[bytes, None]:
        self.calls.append((text, voice))
        if self.gate is not None:
            await self.gate.wait()
        if self.mode == "fail":
            raise TTSFailed(f"{self.name} is down", backend=self.name)
        if self.mode == "silent":
            raise NoAudio(f"{self.name} said nothing", backend=self.name)
        if self.mode == "empty":
            return
        yield ToneTTS(sample_rate=self.sample_rate).render(text)
        if self.mode == "fail_after_audio":
            raise TTSFailed(f"{self.name} broke off", backend=self.name)

    async def aclose(self) -> None:
        return None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Traced:
    audio: bytes
    by: list[tuple[str, str]]


async def speak(chain: FallbackTTS, text: str = "Hello there.", voice: str | None = None) -> Traced:
    by: list[tuple[str, str]] = []
    stream = chain.synthesize_traced(text, voice=voice, trace=lambda b, r: by.append((b, r)))
    return Traced(b"".join([piece async for piece in stream]), by)


def chain_of(*members: FakeTTS, cooldown: float = 60.0) -> tuple[FallbackTTS, Clock]:
    clock = Clock()
    return FallbackTTS(members, cooldown=cooldown, clock=clock), clock


async def test_the_first_backend_speaks_when_it_can() -> None:
    first, second = FakeTTS("first"), FakeTTS("second")
    chain, _ = chain_of(first, second)
    spoken = await speak(chain)
    assert spoken.audio and spoken.by == [("first", "first choice")]
    assert chain.name == "first,second" and chain.active == "first"
    assert second.calls == []


async def test_a_failed_backend_hands_the_chunk_on_and_cools_down() -> None:
    first, second = FakeTTS("first", "fail"), FakeTTS("second")
    chain, clock = chain_of(first, second, cooldown=60)
    spoken = await speak(chain)
    assert spoken.audio == ToneTTS(sample_rate=24000).render("Hello there.")
    assert spoken.by == [("second", "first failed: first is down")]
    assert chain.active == "second" and chain.cooling() == {"first": 60.0}
    again = await speak(chain)  # skipped while cooling: not even asked
    assert len(first.calls) == 1 and again.by[0][0] == "second"
    assert "first is cooling down (first is down)" in again.by[0][1]
    clock.now += 61
    first.mode = "ok"
    assert (await speak(chain)).by == [("first", "first choice")]
    assert chain.active == "first"


async def test_the_cool_down_doubles_while_failures_go_on_and_resets_after_success() -> None:
    first = FakeTTS("first", "fail")
    chain, clock = chain_of(first, FakeTTS("second"), cooldown=10)
    await speak(chain)
    clock.now += 11
    await speak(chain)
    assert chain.cooling() == {"first": 20.0}
    clock.now += 21
    first.mode = "ok"
    await speak(chain)
    first.mode = "fail"
    await speak(chain)
    assert chain.cooling() == {"first": 10.0}


async def test_parallel_chunks_failing_together_count_as_one_failure() -> None:
    gate = asyncio.Event()
    first = FakeTTS("first", "fail", gate=gate)
    chain, _ = chain_of(first, FakeTTS("second"), cooldown=10)
    tasks = [asyncio.create_task(speak(chain, f"Chunk {n}.")) for n in range(3)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks)
    assert all(r.by[0][0] == "second" for r in results)
    assert chain.cooling() == {"first": 10.0}


@pytest.mark.parametrize("mode", ["silent", "empty"])
async def test_a_backend_silent_three_times_in_a_row_is_taken_out(mode: Mode) -> None:
    first = FakeTTS("first", mode)
    chain, _ = chain_of(first, FakeTTS("second"))
    for attempt in range(1, 4):
        spoken = await speak(chain)
        assert spoken.by[0][0] == "second"  # each silent chunk is still spoken
        assert len(first.calls) == attempt
    assert "first" in chain.cooling()
    await speak(chain)
    assert len(first.calls) == 3


async def test_failing_after_audio_went_out_raises_instead_of_speaking_it_twice() -> None:
    first, second = FakeTTS("first", "fail_after_audio"), FakeTTS("second")
    chain, _ = chain_of(first, second)
    with pytest.raises(TTSFailed, match="broke off"):
        await speak(chain)
    assert second.calls == [] and "first" in chain.cooling()


async def test_when_every_backend_is_cooling_all_are_tried() -> None:
    first, second = FakeTTS("first", "fail"), FakeTTS("second", "fail")
    chain, _ = chain_of(first, second)
    with pytest.raises(TTSFailed, match="second is down"):
        await speak(chain)
    first.mode = "ok"
    assert (await speak(chain)).by[0][0] == "first"


async def test_zero_audio_from_every_backend_is_a_failure() -> None:
    chain, _ = chain_of(FakeTTS("first", "empty"), FakeTTS("second", "silent"))
    with pytest.raises(NoAudio):
        await speak(chain)


async def test_a_voice_goes_to_its_backend_and_the_others_stand_in_with_their_own() -> None:
    first, second = FakeTTS("first"), FakeTTS("second", own_voices=("deep",))
    chain, _ = chain_of(first, second)
    assert chain.voices() == ["first-voice", "deep", "second-voice"]
    spoken = await speak(chain, voice="deep")
    assert spoken.by == [("second", "voice 'deep' is second's")]
    assert second.calls == [("Hello there.", "deep")] and first.calls == []
    second.mode = "fail"
    spoken = await speak(chain, voice="deep")
    assert spoken.by[0][0] == "first" and first.calls == [("Hello there.", None)]


async def test_an_unknown_voice_and_unspeakable_text_reach_no_backend() -> None:
    first = FakeTTS("first")
    chain, _ = chain_of(first)
    with pytest.raises(TTSFailed, match="unknown voice"):
        await speak(chain, voice="nobody")
    assert (await speak(chain, " ... ")).audio == b""
    assert first.calls == []


async def test_the_chain_speaks_at_its_first_backends_rate_whoever_speaks() -> None:
    tone = ToneTTS(sample_rate=22050)  # can switch its own rate
    other = FakeTTS("other", sample_rate=16000)  # cannot: wrapped and re-encoded
    chain = FallbackTTS([FakeTTS("first", "fail"), tone, other])
    assert chain.sample_rate == 24000 and tone.sample_rate == 24000
    assert isinstance(chain.backends[2], ResampledTTS)
    assert {f.sample_rate for f in iter_frames((await speak(chain)).audio)} == {24000}
    tone_only = FallbackTTS([FakeTTS("first", "fail"), other])
    spoken = await speak(tone_only)
    assert spoken.by[0][0] == "other"
    assert {f.sample_rate for f in iter_frames(spoken.audio)} == {24000}


def test_a_comma_list_builds_a_chain_from_the_registry() -> None:
    chain = create_tts("edge, tone", Settings(tts_cooldown=5))
    assert isinstance(chain, FallbackTTS)
    assert chain.name == "edge,tone" and chain.sample_rate == 24000
    assert [b.name for b in chain.backends] == ["edge", "tone"]


@pytest.mark.parametrize("names", ["tone,tone", "edge,,tone", "edge,nope"])
def test_a_bad_chain_is_a_config_error(names: str) -> None:
    with pytest.raises(ConfigError):
        create_tts(names, Settings())


async def test_asked_for_pcm_a_member_that_makes_pcm_hands_its_own_over() -> None:
    down, tone = FakeTTS("down", "fail"), ToneTTS(sample_rate=22050)
    chain = FallbackTTS([down, tone])  # tone is told the chain's rate (24 kHz) for its MP3
    pieces = chain.synthesize_pcm("Hello there.", sample_rate=16000)
    pcm = b"".join([piece async for piece in pieces])
    assert pcm == ToneTTS().render_pcm("Hello there.", sample_rate=16000)
    assert len(down.calls) == 1  # the chain's order and failures hold for PCM too


async def test_asked_for_pcm_a_member_that_makes_only_mp3_is_decoded_as_it_streams() -> None:
    mp3_only = FakeTTS("service", sample_rate=24000)
    chain = FallbackTTS([mp3_only])
    pieces = chain.synthesize_pcm("Hello there.", sample_rate=24000)
    pcm = b"".join([piece async for piece in pieces])
    mp3 = ToneTTS(sample_rate=24000).render("Hello there.")
    assert pcm == decode_mp3(mp3, sample_rate=24000)
