"""MP3 helpers with no I/O: PCM → MP3 (lameenc), frame parsing, durations, splitting.

Only MPEG audio Layer III is parsed; that is what every backend here produces.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

import lameenc

DEFAULT_BITRATE_KBPS: Final = 48

# Bitrates (kbps) by [MPEG-1?][index] for Layer III.
_BITRATES: Final = {
    True: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    False: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
# Sample rates by version bits: 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5.
_SAMPLE_RATES: Final = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


@dataclass(frozen=True, slots=True)
class Mp3Frame:
    offset: int
    length: int
    sample_rate: int
    samples: int


def encode_mp3(
    pcm16: bytes, *, sample_rate: int, bitrate_kbps: int = DEFAULT_BITRATE_KBPS
) -> bytes:
    """Encode mono 16-bit little-endian PCM as a headerless MP3 (no ID3, no Xing frame),
    so that the MP3s of consecutive sentences concatenate into one playable stream."""
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(bitrate_kbps)
    encoder.set_in_sample_rate(sample_rate)
    encoder.set_channels(1)
    encoder.set_quality(5)
    return bytes(encoder.encode(pcm16) + encoder.flush())


@functools.cache
def _header(b1: int, b2: int) -> tuple[int, int, int] | None:
    """(frame length, sample rate, samples) of a Layer III header's 2nd and 3rd bytes, or None.
    Cached: a stream repeats a handful of headers, and this runs for every frame sent."""
    if (b1 & 0xE0) != 0xE0:
        return None
    version = (b1 >> 3) & 0x3
    layer = (b1 >> 1) & 0x3
    bitrate_index = (b2 >> 4) & 0xF
    rate_index = (b2 >> 2) & 0x3
    if version == 1 or layer != 1 or bitrate_index in (0, 15) or rate_index == 3:
        return None  # reserved values, or not Layer III, or free format
    mpeg1 = version == 3
    sample_rate = _SAMPLE_RATES[version][rate_index]
    bitrate = _BITRATES[mpeg1][bitrate_index] * 1000
    padding = (b2 >> 1) & 0x1
    samples = 1152 if mpeg1 else 576
    return (samples // 8) * bitrate // sample_rate + padding, sample_rate, samples


def _parse_header(data: bytes, offset: int) -> Mp3Frame | None:
    if offset + 4 > len(data) or data[offset] != 0xFF:
        return None
    header = _header(data[offset + 1], data[offset + 2])
    if header is None:
        return None
    length, sample_rate, samples = header
    return Mp3Frame(offset=offset, length=length, sample_rate=sample_rate, samples=samples)


def frame_at(data: bytes, offset: int) -> Mp3Frame | None:
    """The MP3 frame whose header starts at ``offset`` (it may extend past ``data``), or None."""
    return _parse_header(data, offset)


def _skip_id3(data: bytes) -> int:
    if len(data) >= 10 and data[:3] == b"ID3":
        size = (data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9]
        return 10 + size
    return 0


def iter_frames(data: bytes) -> Iterator[Mp3Frame]:
    """Yield the MP3 frames in ``data``, resynchronising past garbage."""
    offset = _skip_id3(data)
    while offset + 4 <= len(data):
        frame = _parse_header(data, offset)
        if frame is None or offset + frame.length > len(data):
            offset += 1
            continue
        yield frame
        offset += frame.length


def duration_s(data: bytes) -> float:
    """Playing time of the MP3 frames in ``data``, in seconds."""
    # The frames of iter_frames(), without building them: this runs for every frame sent.
    offset, end, seconds = _skip_id3(data), len(data), 0.0
    while offset + 4 <= end:
        header = _header(data[offset + 1], data[offset + 2]) if data[offset] == 0xFF else None
        if header is None or offset + header[0] > end:
            offset += 1
            continue
        seconds += header[2] / header[1]
        offset += header[0]
    return seconds


def duration_ms(data: bytes) -> int:
    return round(1000 * duration_s(data))


def split_frames(data: bytes, *, max_ms: int) -> list[bytes]:
    """Cut ``data`` at frame boundaries into pieces of at most ``max_ms`` (at least one frame)."""
    # The frames of iter_frames(), without building them: this runs for every piece a TTS
    # yields (docs/benchmarks.md).
    pieces: list[bytes] = []
    offset, end = _skip_id3(data), len(data)
    piece_start = piece_end = -1
    piece_ms = 0.0
    while offset + 4 <= end:
        header = _header(data[offset + 1], data[offset + 2]) if data[offset] == 0xFF else None
        if header is None or offset + header[0] > end:
            offset += 1
            continue
        length, sample_rate, samples = header
        frame_ms = 1000 * samples / sample_rate
        if piece_start < 0:
            piece_start, piece_ms = offset, 0.0
        elif piece_ms + frame_ms > max_ms:
            pieces.append(data[piece_start:offset])
            piece_start, piece_ms = offset, 0.0
        piece_ms += frame_ms
        offset += length
        piece_end = offset
    if piece_start >= 0:
        pieces.append(data[piece_start:piece_end])
    return pieces


def split_pcm(pcm: bytes, *, sample_rate: int, max_ms: int) -> list[bytes]:
    """16-bit mono PCM in pieces of at most ``max_ms`` (whole samples each)."""
    step = max(2, sample_rate * max_ms // 1000 * 2)
    return [pcm[at : at + step] for at in range(0, len(pcm), step)]


def pcm_seconds(pcm: bytes, *, sample_rate: int) -> float:
    return len(pcm) / (2 * sample_rate)
