"""The CLI's outputs: miniaudio playback on its null backend (a real device that plays in real
time without sound), the recorder, and file conversion through pydub and the bundled ffmpeg."""

from __future__ import annotations

import asyncio
from pathlib import Path

import miniaudio
import pytest

from tests.conftest import EVENT_TIMEOUT, eventually
from voicechat.client.audio_file import save_audio
from voicechat.client.playback import Heard, Recorder, Speaker, is_silent_device, playback_backends
from voicechat.pipeline.audio import duration_ms, split_frames
from voicechat.tts.tone import ToneTTS

RATE = 22050


def pieces(text: str, *, piece_ms: int = 100) -> list[bytes]:
    return split_frames(ToneTTS().render(text), max_ms=piece_ms)


def decoded_samples(mp3: bytes) -> int:
    return len(miniaudio.decode(mp3, nchannels=1, sample_rate=RATE).samples)


async def heard_events(speaker: Speaker, count: int) -> list[Heard]:
    return [await asyncio.wait_for(speaker.heard(), EVENT_TIMEOUT) for _ in range(count)]


async def test_speaker_plays_every_sample_in_order() -> None:
    speaker = Speaker(sample_rate=RATE, backends=[miniaudio.Backend.NULL])
    try:
        sentences = [pieces("First sentence."), pieces("Second.")]
        seq = 0
        for index, sentence in enumerate(sentences):
            for piece in sentence:
                speaker.add("t1", index, seq, piece)
                seq += 1
        await asyncio.wait_for(speaker.drained(), EVENT_TIMEOUT)
        heard = await heard_events(speaker, seq)
    finally:
        speaker.close()
    assert [h.seq for h in heard] == list(range(seq))
    assert [h.sentence for h in heard] == [0] * len(sentences[0]) + [1] * len(sentences[1])
    # Decoding piece by piece within a sentence loses nothing and adds nothing.
    assert speaker.samples_played == sum(decoded_samples(b"".join(s)) for s in sentences)


async def test_speaker_pause_holds_the_position_and_resume_plays_the_rest() -> None:
    speaker = Speaker(sample_rate=RATE, backends=[miniaudio.Backend.NULL])
    try:
        mp3 = pieces("A sentence long enough to pause in the middle of it.")
        for seq, piece in enumerate(mp3):
            speaker.add("t1", 0, seq, piece)
        await heard_events(speaker, 1)
        speaker.pause()
        position = speaker.samples_played
        asked = speaker.paused_callbacks
        await eventually(lambda: speaker.paused_callbacks >= asked + 2)  # the device ran on
        assert speaker.samples_played == position
        assert position < decoded_samples(b"".join(mp3))
        speaker.resume()
        await asyncio.wait_for(speaker.drained(), EVENT_TIMEOUT)
    finally:
        speaker.close()
    assert speaker.samples_played == decoded_samples(b"".join(mp3))


async def test_speaker_clear_drops_what_was_not_played() -> None:
    speaker = Speaker(sample_rate=RATE, backends=[miniaudio.Backend.NULL])
    try:
        mp3 = pieces("A sentence that will be stopped long before its end. " * 3)
        for seq, piece in enumerate(mp3):
            speaker.add("t1", 0, seq, piece)
        await heard_events(speaker, 1)
        speaker.clear()
        await asyncio.wait_for(speaker.drained(), EVENT_TIMEOUT)
        played = speaker.samples_played
    finally:
        speaker.close()
    assert 0 < played < decoded_samples(b"".join(mp3))


@pytest.mark.parametrize(
    ("name", "silent"),
    [
        ("Discard all samples (playback) or generate zero samples (capture)", True),
        ("NULL Playback Device", True),
        ("Built-in Audio Analog Stereo", False),
        ("default", False),
    ],
)
def test_devices_that_only_discard_audio_do_not_count_as_output(name: str, silent: bool) -> None:
    assert is_silent_device(name) is silent


def test_playback_backends_by_name() -> None:
    assert playback_backends("null") == [miniaudio.Backend.NULL]
    assert playback_backends("no-such-backend") is None


def test_recorder_keeps_each_turn_for_its_file() -> None:
    recorder = Recorder()
    first, second = ToneTTS().render("One."), ToneTTS().render("Two.")
    recorder.add("t1", 0, 0, first)
    recorder.clear()  # a stop keeps what was already spoken
    assert recorder.take() == first
    recorder.add("t2", 0, 0, second)
    assert recorder.take() == second and recorder.take() == b""


def test_save_mp3_writes_the_stream_as_received(tmp_path: Path) -> None:
    mp3 = ToneTTS().render("Hello there.")
    saved = save_audio(mp3, tmp_path / "deep" / "answer.mp3")
    assert saved.path.read_bytes() == mp3
    assert saved.duration_ms == duration_ms(mp3)


@pytest.mark.parametrize("suffix", ["wav", "flac"])
def test_save_converts_through_pydub_and_the_bundled_ffmpeg(tmp_path: Path, suffix: str) -> None:
    mp3 = ToneTTS().render("Hello there, this is a converted file.")
    saved = save_audio(mp3, tmp_path / f"answer.{suffix}")
    data = saved.path.read_bytes()
    assert data[:4] == {"wav": b"RIFF", "flac": b"fLaC"}[suffix]
    decoded = miniaudio.decode(data, nchannels=1, sample_rate=RATE)
    expected = miniaudio.decode(mp3, nchannels=1, sample_rate=RATE)
    assert abs(decoded.duration - expected.duration) < 0.1
    assert abs(saved.duration_ms - 1000 * expected.duration) < 100
