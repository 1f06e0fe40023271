"""MP3 helpers: encoding, frame parsing, durations, splitting."""

from __future__ import annotations

import math
from array import array

from voicechat.pipeline.audio import duration_ms, duration_s, encode_mp3, iter_frames, split_frames


def tone(seconds: float, rate: int = 22050) -> bytes:
    count = int(seconds * rate)
    return array("h", (int(9000 * math.sin(i / 7)) for i in range(count))).tobytes()


def test_encoded_mp3_has_no_id3_or_xing_header_and_only_whole_frames() -> None:
    mp3 = encode_mp3(tone(1.0), sample_rate=22050)
    assert mp3[:3] != b"ID3" and b"Xing" not in mp3[:200] and b"Info" not in mp3[:200]
    frames = list(iter_frames(mp3))
    assert frames[0].offset == 0
    assert frames[-1].offset + frames[-1].length == len(mp3)
    assert all(f.sample_rate == 22050 and f.samples == 576 for f in frames)


def test_duration_matches_the_pcm_plus_encoder_padding() -> None:
    for seconds in (0.25, 1.0, 3.0):
        measured = duration_s(encode_mp3(tone(seconds), sample_rate=22050))
        assert seconds <= measured <= seconds + 0.1


def test_duration_of_other_sample_rates() -> None:
    for rate in (16000, 24000, 44100):
        assert abs(duration_ms(encode_mp3(tone(1.0, rate), sample_rate=rate)) - 1000) < 100


def test_split_cuts_at_frame_boundaries_and_loses_nothing() -> None:
    mp3 = encode_mp3(tone(2.0), sample_rate=22050)
    pieces = split_frames(mp3, max_ms=300)
    assert b"".join(pieces) == mp3
    assert all(duration_ms(p) <= 300 for p in pieces)
    assert len(pieces) == math.ceil(duration_ms(mp3) / (300 // 26.12 * 26.12))


def test_frames_are_found_after_garbage_and_an_id3_tag() -> None:
    mp3 = encode_mp3(tone(0.5), sample_rate=22050)
    id3 = b"ID3\x04\x00\x00\x00\x00\x00\x05hello"
    assert duration_ms(id3 + b"junk" + mp3) == duration_ms(mp3)
    assert duration_ms(b"") == 0 and split_frames(b"\x00" * 100, max_ms=100) == []


def test_split_cuts_at_the_frames_iter_frames_finds_in_damaged_data() -> None:
    mp3 = encode_mp3(tone(1.0), sample_rate=22050)
    damaged = bytearray(b"junk" + mp3 + b"\xff\xf3tail")
    damaged[len(damaged) // 2] ^= 0xFF  # a broken frame header, or audio data, mid-stream
    data = bytes(damaged)
    for max_ms in (20, 100, 500, 10_000):
        expected: list[bytes] = []
        start, ms = None, 0.0
        for frame in iter_frames(data):
            frame_ms = 1000 * frame.samples / frame.sample_rate
            if start is None:
                start = frame.offset
            elif ms + frame_ms > max_ms:
                expected.append(data[start : frame.offset])
                start, ms = frame.offset, 0.0
            ms += frame_ms
            end = frame.offset + frame.length
        expected.append(data[start:end])
        assert split_frames(data, max_ms=max_ms) == expected
