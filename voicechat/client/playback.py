"""Where the CLI's speech goes: a :class:`Speaker` plays it as it arrives, a :class:`Recorder`
keeps it for a file.

Playback uses miniaudio: one wheel with no system library to install, it decodes MP3 in-process,
lists the playback devices (so "can this machine play sound?" is a question with an answer), and
pulls audio from a callback thread, so sentence 1 plays while sentence 3 is still arriving. Its
null backend runs a real device at real-time pace without sound, which is how the tests play.
pydub's playback was the other candidate: it needs simpleaudio (unmaintained, compiled against
ALSA headers), pyaudio (PortAudio) or ffplay (not in the imageio-ffmpeg wheel), and plays a whole
segment at a time, so it could neither stream nor pause at once. pydub does what it is good at
in :mod:`voicechat.client.audio_file`: converting the recording to other formats with the
bundled ffmpeg.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass
from typing import Protocol

import miniaudio

log = logging.getLogger("voicechat.playback")

# Devices that accept audio and play nothing: ALSA's "null" plugin and miniaudio's null backend.
_SILENT_DEVICES = ("discard all samples", "null playback device")
BUFFER_MS = 50  # device period: how long a pause or stop may still be heard


@dataclass(frozen=True, slots=True)
class Heard:
    """The listener now hears ``sentence`` of ``turn``; every frame before ``seq`` was played."""

    turn: str
    sentence: int
    seq: int


class Output(Protocol):
    """Takes the MP3 pieces of each turn, in order."""

    plays: bool  # whether the sound is heard now (else it is kept for a file)

    def add(self, turn: str, sentence: int, seq: int, mp3: bytes) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def clear(self) -> None: ...
    async def drained(self) -> None: ...
    async def heard(self) -> Heard: ...
    def close(self) -> None: ...


def playback_backends(name: str | None = None) -> list[miniaudio.Backend] | None:
    """The miniaudio backends to play through, or None when there is no device to play on.

    ``name`` picks a backend (``pulseaudio``, ``alsa``, ``null``, ...); the default tries the
    platform's backends in miniaudio's order and ignores devices that only discard audio."""
    try:
        backends = [miniaudio.Backend[name.upper()]] if name else []
    except KeyError:
        log.warning("unknown audio backend %r", name)
        return None
    try:
        devices = miniaudio.Devices(backends=backends or None)
        playbacks = devices.get_playbacks()
    except miniaudio.MiniaudioError as exc:
        log.info("no audio output: %s", exc)
        return None
    if not name:
        playbacks = [d for d in playbacks if not is_silent_device(d["name"])]
    return backends if playbacks else None


def is_silent_device(name: str) -> bool:
    """Whether a playback device only discards audio (there is no sound card behind it)."""
    return name.lower().startswith(_SILENT_DEVICES)


@dataclass(slots=True)
class _Chunk:
    turn: str
    sentence: int
    seq: int
    pcm: bytes  # 16-bit mono
    offset: int = 0


class Speaker:
    """Plays MP3 pieces through a miniaudio device as they arrive.

    The pieces of one sentence are one MP3 stream (frames may borrow bits from earlier frames),
    so each new piece is decoded together with the sentence's earlier pieces and only the new
    samples are queued: exact, and about 2 ms per second of speech. The device thread takes
    samples from the queue under a lock; it reports progress to the event loop with
    ``call_soon_threadsafe``."""

    plays = True

    def __init__(
        self, *, sample_rate: int, backends: list[miniaudio.Backend] | None = None
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._rate = sample_rate
        self._lock = threading.Lock()
        self._chunks: deque[_Chunk] = deque()
        self._paused = False
        self._key: tuple[str, int] | None = None  # the sentence being decoded
        self._mp3 = bytearray()
        self._decoded = 0  # samples of that sentence already queued
        self._idle = asyncio.Event()
        self._idle.set()
        self._heard: asyncio.Queue[Heard] = asyncio.Queue()
        self.paused_callbacks = 0  # device callbacks answered with silence while paused
        self.samples_played = 0
        self._device = miniaudio.PlaybackDevice(
            output_format=miniaudio.SampleFormat.SIGNED16,
            nchannels=1,
            sample_rate=sample_rate,
            buffersize_msec=BUFFER_MS,
            backends=backends,
            app_name="voicechat",
        )
        self.backend: str = self._device.backend
        feed = self._feed()
        next(feed)
        self._device.start(feed)

    # -- event loop side -------------------------------------------------------------------

    def add(self, turn: str, sentence: int, seq: int, mp3: bytes) -> None:
        if self._key != (turn, sentence):
            self._key, self._mp3, self._decoded = (turn, sentence), bytearray(), 0
        self._mp3 += mp3
        try:
            samples = miniaudio.decode(bytes(self._mp3), nchannels=1, sample_rate=self._rate)
        except miniaudio.DecodeError as exc:
            log.warning("undecodable audio in sentence %d: %s", sentence, exc)
            return
        fresh = samples.samples[self._decoded :]
        self._decoded = len(samples.samples)
        if fresh:
            with self._lock:
                self._chunks.append(_Chunk(turn, sentence, seq, fresh.tobytes()))
                self._idle.clear()

    def pause(self) -> None:
        with self._lock:
            self._paused = True

    def resume(self) -> None:
        with self._lock:
            self._paused = False

    def clear(self) -> None:
        """Drop everything not yet played (stop)."""
        with self._lock:
            self._chunks.clear()
            self._paused = False
        self._key = None
        self._idle.set()

    async def drained(self) -> None:
        """Wait until everything added has been handed to the device."""
        await self._idle.wait()

    async def heard(self) -> Heard:
        return await self._heard.get()

    def close(self) -> None:
        self._device.close()

    # -- device thread side ------------------------------------------------------------------

    def _feed(self) -> Generator[bytes, int, None]:
        frames = yield b""
        while True:
            frames = yield self._take(frames)

    def _take(self, frames: int) -> bytes:
        wanted = 2 * frames
        out = bytearray()
        heard: list[Heard] = []
        with self._lock:
            if self._paused:
                self.paused_callbacks += 1
                return bytes(wanted)
            while len(out) < wanted and self._chunks:
                chunk = self._chunks[0]
                if chunk.offset == 0:
                    heard.append(Heard(chunk.turn, chunk.sentence, chunk.seq))
                piece = chunk.pcm[chunk.offset : chunk.offset + wanted - len(out)]
                out += piece
                chunk.offset += len(piece)
                if chunk.offset >= len(chunk.pcm):
                    self._chunks.popleft()
            self.samples_played += len(out) // 2
            drained = not self._chunks
        self._notify(heard, drained)
        return bytes(out) + bytes(wanted - len(out))

    def _notify(self, heard: list[Heard], drained: bool) -> None:
        try:
            for event in heard:
                self._loop.call_soon_threadsafe(self._heard.put_nowait, event)
            if drained and not self._idle.is_set():
                self._loop.call_soon_threadsafe(self._set_idle_if_empty)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            pass

    def _set_idle_if_empty(self) -> None:
        with self._lock:
            empty = not self._chunks
        if empty:
            self._idle.set()


class Recorder:
    """Keeps the MP3 of a turn for a file; nothing is heard."""

    plays = False

    def __init__(self) -> None:
        self.mp3 = bytearray()
        self._never: asyncio.Queue[Heard] = asyncio.Queue()

    def add(self, turn: str, sentence: int, seq: int, mp3: bytes) -> None:
        self.mp3 += mp3

    def take(self) -> bytes:
        """The MP3 so far, and start afresh (one file per turn)."""
        mp3, self.mp3 = bytes(self.mp3), bytearray()
        return mp3

    def pause(self) -> None:
        pass

    def resume(self) -> None:
        pass

    def clear(self) -> None:
        pass  # what arrived before a stop is kept: it was spoken

    async def drained(self) -> None:
        return None

    async def heard(self) -> Heard:
        return await self._never.get()

    def close(self) -> None:
        pass
