"""Pipecat, side by side: the same workload through a Pipecat pipeline, in-process.

Runs in its own virtual environment (``make bench-pipecat-venv``: ``bench/.venv-pipecat``), and
imports only the standard-library modules of ``bench``. One pipeline per session::

    WorkloadLLM (an LLMService) ─LLMTextFrame─▶ WorkloadTTS (a TTSService: Pipecat's own sentence
    aggregation, audio contexts and interruption) ─TTSAudioRawFrame─▶ Output (records arrivals)

A turn starts with an ``LLMContextFrame`` queued on the worker; it is interrupted the way a
transport interrupts the bot, with an ``InterruptionFrame`` queued on the worker. The output's
``InterruptionFrame`` arrival plays the part of voicechat's ``stopped``.

    bench/.venv-pipecat/bin/python -m bench.pipecat_bench --levels 1,50,200 --workload '{...}'
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import sys
import time
from typing import Any

from loguru import logger
from pipecat.frames.frames import (
    Frame,
    InterruptionFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    TTSAudioRawFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.llm_service import LLMService
from pipecat.services.settings import NOT_GIVEN, LLMSettings, TTSSettings
from pipecat.services.tts_service import TTSService
from pipecat.workers.runner import WorkerRunner

from bench.driver import Event, Pipe, emit, freeze_heap, run_levels, turns_for
from bench.workload import Workload, first_sentence_token, sleep_until, stream_tokens

MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


def unsupported(settings_class: Any) -> Any:
    """Settings with every field the fakes do not use set to None, as Pipecat asks."""
    settings = settings_class()
    for f in dataclasses.fields(settings):
        if getattr(settings, f.name) is NOT_GIVEN:
            setattr(settings, f.name, None)
    return settings


class WorkloadLLM(LLMService):
    """Streams the workload's tokens as ``LLMTextFrame``s between the response start and end."""

    def __init__(self, workload: Workload) -> None:
        super().__init__(settings=unsupported(LLMSettings))
        self._workload = workload

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame):
            await self.push_frame(LLMFullResponseStartFrame())
            async for token in stream_tokens(self._workload):
                await self._push_llm_text(token)
            await self.push_frame(LLMFullResponseEndFrame())
        else:
            await self.push_frame(frame, direction)


class WorkloadTTS(TTSService):
    """16-bit PCM of ``ms_per_char`` per character, in ``piece_ms`` pieces: the first after
    ``tts_latency``, each later one when the audio before it is synthesized at ``rtf``."""

    def __init__(self, workload: Workload) -> None:
        super().__init__(
            push_start_frame=True,
            push_stop_frames=True,
            sample_rate=workload.sample_rate,
            settings=unsupported(TTSSettings),
        )
        self._workload = workload
        self._cache: dict[int, tuple[list[bytes], list[float]]] = {}

    def can_generate_metrics(self) -> bool:
        return False

    def _speech(self, text: str) -> tuple[list[bytes], list[float]]:
        cached = self._cache.get(len(text))
        if cached is None:
            w = self._workload
            total_ms = w.ms_per_char * max(1, len(text))
            pieces, offsets = [], []
            for index in range(math.ceil(total_ms / w.piece_ms)):
                piece_ms = min(w.piece_ms, total_ms - index * w.piece_ms)
                pieces.append(b"\x01\x00" * (w.sample_rate * piece_ms // 1000))
                offsets.append(index * w.piece_ms / 1000)
            cached = self._cache[len(text)] = (pieces, w.piece_times(offsets))
        return cached

    async def run_tts(self, text: str, context_id: str):  # type: ignore[no-untyped-def]
        pieces, ready_at = self._speech(text)
        started = time.perf_counter()
        for piece, at in zip(pieces, ready_at, strict=True):
            await sleep_until(started + at)
            yield TTSAudioRawFrame(piece, self._workload.sample_rate, 1, context_id=context_id)


class Output(FrameProcessor):
    """The end of the pipeline, where a transport would be: turns frames into bench events."""

    def __init__(self) -> None:
        super().__init__()
        self.events: asyncio.Queue[Event] = asyncio.Queue()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        at = time.perf_counter()
        if isinstance(frame, TTSAudioRawFrame):
            self.events.put_nowait(("audio", at, frame.context_id))
        elif isinstance(frame, LLMFullResponseEndFrame):
            self.events.put_nowait(("end", at, None))
        elif isinstance(frame, InterruptionFrame):
            self.events.put_nowait(("stopped", at, None))
        await self.push_frame(frame, direction)


class PipelinePipe:
    def __init__(self, workload: Workload) -> None:
        self.output = Output()
        self.events = self.output.events
        pipeline = Pipeline([WorkloadLLM(workload), WorkloadTTS(workload), self.output])
        self.worker = PipelineWorker(
            pipeline,
            params=PipelineParams(audio_out_sample_rate=workload.sample_rate),
            cancel_on_idle_timeout=False,
            idle_timeout_secs=None,
            enable_rtvi=False,
            check_dangling_tasks=False,
        )
        self.started = asyncio.Event()

        @self.worker.event_handler("on_pipeline_started")
        async def started(worker: Any, frame: Frame) -> None:
            self.started.set()

    async def start_turn(self) -> None:
        await self.worker.queue_frame(LLMContextFrame(LLMContext(messages=list(MESSAGES))))

    async def interrupt(self) -> None:
        await self.worker.queue_frame(InterruptionFrame())


async def main_async(levels: list[int], workload: Workload, turns: int) -> dict[str, Any]:
    ideal_first = workload.token_time(first_sentence_token(workload.tokens)) + workload.tts_latency

    async def make_pipe() -> Pipe:
        return PipelinePipe(workload)

    async def run(pipes: list[Pipe], work: Any) -> None:
        runner = WorkerRunner(handle_sigint=False, check_dangling_tasks=False)
        pipeline_pipes = [p for p in pipes if isinstance(p, PipelinePipe)]
        await runner.add_workers(*(p.worker for p in pipeline_pipes))

        async def drive() -> None:
            for pipe in pipeline_pipes:
                await asyncio.wait_for(pipe.started.wait(), 30)
            await work
            await runner.cancel()

        await asyncio.gather(runner.run(), drive())

    await run_levels(
        [1],
        turns_for=lambda n: 2,
        stagger=0.0,
        ideal_first=ideal_first,
        make_pipe=make_pipe,
        run=run,
    )
    freeze_heap()
    results = await run_levels(
        levels,
        turns_for=lambda n: turns_for(n, turns),
        stagger=2.0,
        ideal_first=ideal_first,
        make_pipe=make_pipe,
        run=run,
    )
    import pipecat

    return {
        "system": "pipecat",
        "version": getattr(pipecat, "__version__", "unknown"),
        "ideal_first_audio_ms": round(ideal_first * 1000, 2),
        "lookahead_ms": round(workload.token_interval * 1000, 2),
        "levels": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--levels", default="1,50,200")
    parser.add_argument("--workload", default="{}")
    parser.add_argument("--turns", type=int, default=20, help="turns per session at level 1")
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    levels = [int(x) for x in args.levels.split(",")]
    emit(asyncio.run(main_async(levels, Workload(**json.loads(args.workload)), args.turns)))


if __name__ == "__main__":
    main()
