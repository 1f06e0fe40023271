"""Make the stand-in speech recordings in samples/tts/ offline, with the packaged Piper voice.

    .venv/bin/python samples/make_tts_samples.py

The machine this project is built on cannot reach Microsoft's or OpenAI's speech services, so
these files are not captured from them: Piper speaks the sentence, its 22050 Hz PCM is
resampled to 24000 Hz and encoded in the services' shape (see samples/README.md). Piper's
inference is randomised, so a new run gives different (equally valid) bytes.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from voicechat.config import Settings
from voicechat.pipeline.audio import encode_mp3, iter_frames
from voicechat.tts.piper import create
from voicechat.tts.resample import resample_pcm16

TEXT = "The capital of France is Paris."
OUT = Path(__file__).resolve().parent / "tts"


def piper_pcm(text: str) -> tuple[bytes, int]:
    piper = create(Settings())
    voice = piper._voice(piper.voices()[0])  # the loaded PiperVoice
    pcm = bytearray()
    for phonemes in voice.phonemize(text):
        audio = voice.phoneme_ids_to_audio(voice.phonemes_to_ids(phonemes))
        audio = audio / max(float(np.max(np.abs(audio))), 1e-8)
        pcm += (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    return bytes(pcm), voice.config.sample_rate


def id3_tag(encoder: str) -> bytes:
    """A minimal ID3v2.4 tag with one TSSE (encoder settings) frame."""
    body = b"\x03" + encoder.encode()  # UTF-8 text
    frame = b"TSSE" + struct.pack(">I", len(body)) + b"\x00\x00" + body
    size = len(frame)
    syncsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    return b"ID3\x04\x00\x00" + syncsafe + frame


def info_frame(mp3: bytes) -> bytes:
    """A LAME-style "Info" header frame shaped like the first frame of ``mp3``: a frame
    header, zeroed side information, then the tag (mono MPEG-2: at byte 4 + 9)."""
    first = next(iter_frames(mp3))
    frame = bytearray(first.length)
    frame[:4] = mp3[first.offset : first.offset + 4]
    frame[13:17] = b"Info"
    frame[17:21] = struct.pack(">I", 0x0F)  # flags: frames, bytes, TOC and quality present
    frame[21:25] = struct.pack(">I", sum(1 for _ in iter_frames(mp3)))
    frame[25:29] = struct.pack(">I", len(mp3))
    return bytes(frame)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    pcm, rate = piper_pcm(TEXT)
    pcm24 = resample_pcm16(pcm, from_rate=rate, to_rate=24000)
    # edge-tts asks for audio-24khz-48kbitrate-mono-mp3: raw frames, no tag.
    edge = encode_mp3(pcm24, sample_rate=24000, bitrate_kbps=48)
    (OUT / "edge-speech.mp3").write_bytes(edge)
    # OpenAI's mp3 is a file: an ID3 tag and a header frame before the audio frames.
    frames = encode_mp3(pcm24, sample_rate=24000, bitrate_kbps=64)
    openai = id3_tag("voicechat make_tts_samples.py") + info_frame(frames) + frames
    (OUT / "openai-speech.mp3").write_bytes(openai)
    print(f"wrote {len(edge)} + {len(openai)} bytes to {OUT}")


if __name__ == "__main__":
    main()
