"""Speech as the formats of OpenAI's ``/v1/audio/speech``, encoded while it streams.

A turn's audio is MP3 (the TTS contract, :mod:`voicechat.tts.base`). For ``mp3`` it goes out
as it is. For every other format it is decoded as it comes (:class:`SentenceDecoder`,
miniaudio; each sentence's MP3 is a stream of its own) to 24 kHz 16-bit mono PCM, OpenAI's
``pcm``, and then:

* ``pcm`` as it is, ``wav`` behind a streaming header (:func:`wav_header`);
* ``opus`` (Ogg), ``aac`` (ADTS), ``flac``, and any format at a ``speed`` other than 1, through
  the ffmpeg binary of ``imageio-ffmpeg`` (already a dependency, used by pydub), one process a
  response fed on stdin and read on stdout (:class:`FfmpegEncoder`). ffmpeg's encoders
  (libopus, its native AAC and FLAC, ``atempo`` for speed) are the well-kept ones everybody
  uses; PyAV would bundle the same libraries as a second, larger wheel.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, Protocol

from voicechat.errors import TTSFailed
from voicechat.pipeline.mp3_decoder import Mp3StreamDecoder

PCM_RATE: Final = 24000  # OpenAI's pcm: 24 kHz, 16-bit little-endian, mono
READ_BYTES: Final = 4096

Write = Callable[[bytes], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class SpeechFormat:
    name: str
    content_type: str
    ffmpeg_args: tuple[str, ...]  # ffmpeg's output options for this format


FORMATS: Final = {
    f.name: f
    for f in (
        SpeechFormat("mp3", "audio/mpeg", ("-c:a", "libmp3lame", "-b:a", "64k", "-f", "mp3")),
        SpeechFormat(
            "opus",
            "audio/opus",
            ("-c:a", "libopus", "-b:a", "32k", "-page_duration", "100000", "-f", "ogg"),
        ),
        SpeechFormat("aac", "audio/aac", ("-c:a", "aac", "-b:a", "64k", "-f", "adts")),
        SpeechFormat("flac", "audio/flac", ("-c:a", "flac", "-f", "flac")),
        SpeechFormat("wav", "audio/wav", ("-f", "s16le")),  # our header, ffmpeg's samples
        SpeechFormat("pcm", "audio/pcm", ("-f", "s16le")),
    )
}


def wav_header(*, sample_rate: int = PCM_RATE) -> bytes:
    """A RIFF/WAVE header for 16-bit mono PCM of unknown length: both sizes are 0xFFFFFFFF,
    which decoders read as "until the end of the stream"."""
    unknown = 0xFFFFFFFF
    fmt = struct.pack("<HHIIHH", 1, 1, sample_rate, sample_rate * 2, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", unknown)
        + b"WAVEfmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", unknown)
    )


class SentenceDecoder:
    """MP3 frames in, tagged with their sentence; PCM out as it decodes. Each sentence's MP3
    is a stream of its own (:class:`~voicechat.pipeline.mp3_decoder.Mp3StreamDecoder`)."""

    def __init__(self, *, sample_rate: int = PCM_RATE) -> None:
        self._stream = Mp3StreamDecoder(sample_rate=sample_rate)
        self._sentence: int | None = None

    async def add(self, sentence: int, mp3: bytes) -> bytes:
        """The PCM that ``mp3`` (of ``sentence``) makes ready: the rest of the previous
        sentence when it starts a new one, and what of this one can be given out."""
        rest = b""
        if sentence != self._sentence:
            rest = await self.flush()
            self._sentence = sentence
        return rest + await self._stream.add(mp3)

    async def flush(self) -> bytes:
        """The sentence ended: all of its PCM not given out yet."""
        return await self._stream.flush()


class TurnPcm:
    """A turn's audio frames as PCM: the backend's own PCM as it is (a turn with
    ``pcm_rate``, see :class:`~voicechat.pipeline.turn.TurnOptions`), MP3 decoded sentence by
    sentence (:class:`SentenceDecoder`)."""

    def __init__(self, pcm_rate: int | None) -> None:
        self._decoder = None if pcm_rate is not None else SentenceDecoder()

    async def add(self, sentence: int, frame: bytes) -> bytes:
        return frame if self._decoder is None else await self._decoder.add(sentence, frame)

    async def flush(self) -> bytes:
        """The turn ended: the PCM not given out yet."""
        return b"" if self._decoder is None else await self._decoder.flush()


class PcmEncoder(Protocol):
    """Takes 24 kHz PCM, writes the encoded format."""

    async def feed(self, pcm: bytes) -> None: ...

    async def finish(self) -> None:
        """All PCM was fed: write the rest."""
        ...

    async def aclose(self) -> None:
        """Release what is held (a process), whether or not :meth:`finish` ran."""
        ...


class RawPcm:
    """``pcm``, or ``wav`` with ``header``: the samples as they are."""

    def __init__(self, write: Write, *, header: bytes = b"") -> None:
        self._write = write
        self._header = header

    async def feed(self, pcm: bytes) -> None:
        if self._header:
            pcm, self._header = self._header + pcm, b""
        await self._write(pcm)

    async def finish(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


def atempo_filter(speed: float) -> str:
    """ffmpeg's ``atempo`` takes 0.5-2 per stage; 0.25 and 4 need two."""
    stages: list[float] = []
    while speed > 2.0:
        stages.append(2.0)
        speed /= 2.0
    while speed < 0.5:
        stages.append(0.5)
        speed /= 0.5
    stages.append(speed)
    return ",".join(f"atempo={stage:.6g}" for stage in stages)


class FfmpegEncoder:
    """One ffmpeg process: PCM on stdin, ``fmt`` on stdout, written as it comes. It starts
    with the first PCM (so that a response with no audio is never begun) and its reader is a
    task of ``group``, the caller's."""

    def __init__(
        self, fmt: SpeechFormat, write: Write, group: asyncio.TaskGroup, *, speed: float = 1.0
    ) -> None:
        self._fmt = fmt
        self._write = write
        self._group = group
        self._speed = speed
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def _start(self) -> asyncio.subprocess.Process:
        import imageio_ffmpeg

        filters = ("-af", atempo_filter(self._speed)) if self._speed != 1.0 else ()
        process = await asyncio.create_subprocess_exec(
            *(imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin"),
            *("-f", "s16le", "-ar", str(PCM_RATE), "-ac", "1", "-i", "pipe:0"),
            *filters,
            *("-ar", str(PCM_RATE), "-ac", "1", "-flush_packets", "1"),
            *self._fmt.ffmpeg_args,
            "pipe:1",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        self._process = process
        self._reader = self._group.create_task(self._pump(process), name="ffmpeg reader")
        return process

    async def _pump(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        while data := await process.stdout.read(READ_BYTES):
            await self._write(data)

    async def feed(self, pcm: bytes) -> None:
        process = self._process or await self._start()
        assert process.stdin is not None
        process.stdin.write(pcm)
        await process.stdin.drain()

    async def finish(self) -> None:
        process = self._process
        if process is None or self._reader is None:
            return
        assert process.stdin is not None
        process.stdin.close()
        await self._reader
        if await process.wait() != 0:
            raise TTSFailed(f"ffmpeg failed to encode {self._fmt.name}", backend="ffmpeg")

    async def aclose(self) -> None:
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            # Bounded: a killed process is reaped at once.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await process.wait()
        if self._reader is not None:
            self._reader.cancel()


def pcm_encoder(
    fmt: SpeechFormat, write: Write, group: asyncio.TaskGroup, *, speed: float = 1.0
) -> PcmEncoder:
    """The encoder of ``fmt`` at ``speed``: raw PCM and WAV need no process at speed 1."""
    header = wav_header() if fmt.name == "wav" else b""
    if fmt.name in ("pcm", "wav") and speed == 1.0:
        return RawPcm(write, header=header)
    if header:
        return FfmpegEncoder(fmt, RawPcm(write, header=header).feed, group, speed=speed)
    return FfmpegEncoder(fmt, write, group, speed=speed)
