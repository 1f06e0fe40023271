"""A fallback chain of TTS backends, chosen by name: ``--tts edge,piper``.

Each chunk is spoken by the first backend of the chain that can: one that fails (cannot
connect, errors, times out) is skipped for a cool-down and the chunk goes to the next one.
A backend that answers with no audio is skipped for that chunk, and taken out for its
cool-down once it did so ``silent_limit`` times in a row. Every backend is tried when all
are cooling down. A cool-down doubles with each failure in a row, up to 16 times ``cooldown``.

When a backend fails after some of the chunk's audio went out, the chunk is not started again
by the next one (the listener would hear its beginning twice): the error is raised.

The chain speaks at the sample rate of its first backend; see :mod:`voicechat.tts.resample`.
A voice picks the backend that has it first; the others stand in with their own voice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass

from voicechat.errors import ConfigError, NoAudio, TTSFailed
from voicechat.pipeline.mp3_decoder import Mp3StreamDecoder
from voicechat.pipeline.speakable import has_speech
from voicechat.tts.base import PcmSpeaker, TTSBackend
from voicechat.tts.catalog import VoiceInfo, describe_voices
from voicechat.tts.resample import ResampledTTS, at_rate
from voicechat.tts.speaker import Trace

log = logging.getLogger("voicechat.tts.fallback")

MAX_COOLDOWN_FACTOR = 16


@dataclass(slots=True)
class _Member:
    tts: TTSBackend
    failures: int = 0  # failures in a row: each one doubles the cool-down
    silent: int = 0  # answers without audio in a row
    until: float = 0.0  # skipped until this time
    why: str = ""  # what sent it to cool down

    @property
    def name(self) -> str:
        return self.tts.name


class FallbackTTS:
    def __init__(
        self,
        backends: Sequence[TTSBackend],
        *,
        cooldown: float = 60.0,
        silent_limit: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not backends:
            raise ConfigError("a TTS chain needs at least one backend")
        names = [b.name for b in backends]
        if len(set(names)) != len(names):
            raise ConfigError(f"a TTS chain names a backend twice: {','.join(names)}")
        self.name = ",".join(names)
        self.sample_rate = backends[0].sample_rate
        self._members = [_Member(at_rate(b, self.sample_rate)) for b in backends]
        self._cooldown = cooldown
        self._silent_limit = silent_limit
        self._clock = clock

    @property
    def backends(self) -> list[TTSBackend]:
        return [m.tts for m in self._members]

    @property
    def active(self) -> str:
        """The backend that speaks the next chunk in the default voice."""
        return self._candidates(None)[0][0].name

    def cooling(self) -> dict[str, float]:
        """Backends that are skipped now, with the seconds left."""
        now = self._clock()
        return {m.name: m.until - now for m in self._members if m.until > now}

    def voices(self) -> list[str]:
        return list(dict.fromkeys(v for m in self._members for v in m.tts.voices()))

    async def describe_voices(self) -> list[VoiceInfo]:
        return [v for m in self._members for v in await describe_voices(m.tts)]

    def synthesize(self, text: str, *, voice: str | None = None) -> AsyncGenerator[bytes, None]:
        return self.synthesize_traced(text, voice=voice, trace=lambda backend, reason: None)

    def synthesize_traced(
        self, text: str, *, voice: str | None, trace: Trace
    ) -> AsyncGenerator[bytes, None]:
        """Speak ``text``; ``trace(backend, reason)`` is called before the first audio."""
        return self._speak(text, voice, trace, lambda tts, own: tts.synthesize(text, voice=own))

    def synthesize_pcm(
        self, text: str, *, sample_rate: int, voice: str | None = None
    ) -> AsyncGenerator[bytes, None]:
        """PCM at ``sample_rate``: a member that makes PCM (Piper, tone) hands its own over; the
        MP3 of any other is decoded as it streams."""

        def stream(tts: TTSBackend, own: str | None) -> AsyncGenerator[bytes, None]:
            return member_pcm(tts, text, sample_rate=sample_rate, voice=own)

        return self._speak(text, voice, lambda backend, reason: None, stream)

    async def _speak(
        self,
        text: str,
        voice: str | None,
        trace: Trace,
        stream_of: Callable[[TTSBackend, str | None], AsyncGenerator[bytes, None]],
    ) -> AsyncGenerator[bytes, None]:
        if voice is not None and voice not in self.voices():
            raise TTSFailed(f"unknown voice {voice!r}", backend=self.name)
        if not has_speech(text):
            return
        candidates, cooling = self._candidates(voice)
        # Why the backends before the speaking one did not speak.
        passed = [f"{m.name} is cooling down ({m.why})" for m in cooling]
        if voice is not None and candidates[0] is not self._members[0]:
            passed.append(f"voice {voice!r} is {candidates[0].name}'s")
        error: TTSFailed | None = None
        for member in candidates:
            own_voice = voice if voice in member.tts.voices() else None
            produced = False
            try:
                stream = stream_of(member.tts, own_voice)
                async with contextlib.aclosing(stream) as pieces:
                    async for piece in pieces:
                        if not produced:
                            produced = True
                            trace(member.name, "; ".join(passed) or "first choice")
                        yield piece
                if not produced:
                    raise NoAudio(f"{member.name} returned no audio", backend=member.name)
            except TTSFailed as exc:
                error = exc
            except Exception as exc:  # a backend bug must not silence the chain
                log.exception("TTS backend %s crashed", member.name)
                error = TTSFailed(f"{member.name} failed: {exc}", backend=member.name)
            else:
                member.failures = member.silent = 0
                member.until = 0.0
                return
            self._failed(member, error)
            if produced:
                raise error
            passed.append(f"{member.name} failed: {error.message}")
        assert error is not None  # there is always a candidate
        raise error

    async def probe(self) -> None:
        """At start-up: put the backends that cannot be reached at all (those that can tell,
        with a ``probe()``) in their cool-down, so the first chunk does not wait on them."""

        async def check(member: _Member) -> None:
            probe = getattr(member.tts, "probe", None)
            if probe is None:
                return
            try:
                await probe()
            except TTSFailed as exc:
                self._failed(member, exc)

        await asyncio.gather(*(check(m) for m in self._members))

    def _candidates(self, voice: str | None) -> tuple[list[_Member], list[_Member]]:
        """The members to try, in order (the voice's owners first), and those left out
        because they are cooling down (none when all are: then all are tried)."""
        ordered = sorted(
            self._members, key=lambda m: voice is not None and voice not in m.tts.voices()
        )
        now = self._clock()
        ready = [m for m in ordered if m.until <= now]
        if not ready:
            return ordered, []
        return ready, [m for m in ordered if m.until > now]

    def _failed(self, member: _Member, error: TTSFailed) -> None:
        now = self._clock()
        if isinstance(error, NoAudio):
            member.silent += 1
            if member.silent < self._silent_limit:
                return
            why = f"no audio {member.silent} times in a row"
        else:
            why = error.message
        member.silent = 0
        member.why = why
        if member.until > now:
            return  # already cooling: parallel chunks failing together count once
        member.failures += 1
        factor = min(2 ** (member.failures - 1), MAX_COOLDOWN_FACTOR)
        member.until = now + self._cooldown * factor
        log.warning("TTS %s skipped for %.0f s: %s", member.name, self._cooldown * factor, why)

    async def aclose(self) -> None:
        for member in self._members:
            await member.tts.aclose()


async def member_pcm(
    tts: TTSBackend, text: str, *, sample_rate: int, voice: str | None
) -> AsyncGenerator[bytes, None]:
    """``tts`` speaking ``text`` as PCM at ``sample_rate``, its own PCM if it makes any."""
    inner = tts.inner if isinstance(tts, ResampledTTS) else tts  # no MP3 round trip to resample
    if isinstance(inner, PcmSpeaker):
        async with contextlib.aclosing(
            inner.synthesize_pcm(text, sample_rate=sample_rate, voice=voice)
        ) as pieces:
            async for piece in pieces:
                yield piece
        return
    decoder = Mp3StreamDecoder(sample_rate=sample_rate, backend=inner.name)
    async with contextlib.aclosing(inner.synthesize(text, voice=voice)) as pieces:
        async for mp3 in pieces:
            if pcm := await decoder.add(mp3):
                yield pcm
    if pcm := await decoder.flush():
        yield pcm
