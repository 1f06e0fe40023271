"""Real backends: Piper's real-time factor and time to first audio, and the early first-clause cut.

Piper is timed alone (``synthesize`` of a sentence: time to its first piece and to its end, and
the length of its audio), then through the real server with the ``replay`` LLM at its recorded
timing (``samples/llm/*.jsonl``): time to first audio, and what the LLM and Piper account for.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

import aiohttp
from aiohttp import web

from voicechat.config import Settings
from voicechat.llm.replay import Recording
from voicechat.pipeline.audio import duration_s
from voicechat.pipeline.chunker import Confirmed, Provisional, SentenceChunker
from voicechat.server.app import create_app
from voicechat.tts.piper import PiperTTS, create

SENTENCES = {
    "short": "The capital of France is Paris.",
    "medium": "It has been the country's capital for most of its history.",
    "long": (
        "On a calm night far from the coast, when the wind has dropped and the last light has "
        "gone from the sky, the sea turns into a slow black mirror."
    ),
}


async def piper_alone(tts: PiperTTS, text: str, repeats: int) -> dict[str, Any]:
    first, total, audio = [], [], 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        audio = 0.0
        async for piece in tts.synthesize(text):
            if audio == 0.0:
                first.append(time.perf_counter() - started)
            audio += duration_s(piece)
        total.append(time.perf_counter() - started)
    return {
        "chars": len(text),
        "audio_s": round(audio, 3),
        "first_audio_ms": round(1000 * statistics.median(first), 1),
        "synthesis_ms": round(1000 * statistics.median(total), 1),
        "rtf": round(statistics.median(total) / audio, 3),
    }


def first_chunk_at(recording: Recording, *, first_clause_chars: int) -> tuple[str, float]:
    """The first chunk of a recording and when (seconds into the stream) the LLM completed it:
    when it was emitted, provisional or confirmed, as that is when its synthesis starts."""
    chunker = SentenceChunker(first_clause_min_chars=first_clause_chars)
    at = provisional_at = 0.0
    for event in recording.events:
        at += event.delay_ms / 1000
        if isinstance(event.data, dict):
            choices = event.data.get("choices") or [{}]
            delta = (choices[0].get("delta") or {}).get("content") or ""
            for chunk in chunker.push(delta):
                if isinstance(chunk, Provisional):
                    provisional_at = at
                elif isinstance(chunk, Confirmed):
                    return chunk.text, provisional_at if chunk.provisional else at
    chunks = chunker.flush()
    return chunks[0], at


async def first_audio_over_ws(prompt: str, *, first_clause_chars: int, repeats: int) -> list[float]:
    """Time to first audio of ``prompt`` through the real server (replay LLM + Piper)."""
    settings = Settings(llm="replay", tts="piper", first_clause_chars=first_clause_chars)
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/ws"
    times = []
    try:
        async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
            await ws.receive()  # ready
            for _ in range(repeats):
                started = time.perf_counter()
                await ws.send_json({"action": "start", "data": {"prompt": prompt}})
                while json.loads((await ws.receive()).data)["action"] != "audio":
                    pass
                times.append(time.perf_counter() - started)
                await ws.send_json({"action": "stop"})
                while json.loads((await ws.receive()).data)["action"] != "stopped":
                    pass
    finally:
        await runner.cleanup()
    return times


async def end_to_end(
    tts: PiperTTS, name: str, *, first_clause_chars: int, repeats: int
) -> dict[str, Any]:
    settings = Settings()
    recording = Recording.load(settings.replay_dir / f"{name}.jsonl")
    chunk, llm_s = first_chunk_at(recording, first_clause_chars=first_clause_chars)
    piper = await piper_alone(tts, chunk, repeats)
    ttfa = await first_audio_over_ws(
        recording.prompt, first_clause_chars=first_clause_chars, repeats=repeats
    )
    median = statistics.median(ttfa)
    return {
        "recording": name,
        "first_clause_chars": first_clause_chars,
        "first_chunk": chunk,
        "llm_first_chunk_ms": round(1000 * llm_s, 1),
        "piper_first_chunk_ms": piper["first_audio_ms"],
        "ttfa_ms": round(1000 * median, 1),
        "ttfa_runs_ms": [round(1000 * t, 1) for t in ttfa],
        "server_overhead_ms": round(1000 * median - 1000 * llm_s - piper["first_audio_ms"], 1),
    }


async def real_backends(*, repeats: int = 3) -> dict[str, Any]:
    tts = await asyncio.to_thread(create, Settings())
    try:
        await piper_alone(tts, "Warm up.", 1)
        alone = {name: await piper_alone(tts, text, repeats) for name, text in SENTENCES.items()}
        capital = await end_to_end(tts, "capital", first_clause_chars=30, repeats=repeats)
        cut = await end_to_end(tts, "long_first", first_clause_chars=30, repeats=repeats)
        uncut = await end_to_end(tts, "long_first", first_clause_chars=0, repeats=repeats)
    finally:
        await tts.aclose()
    return {
        "piper_alone": alone,
        "short_first_sentence": capital,
        "first_clause_cut": {
            "on": cut,
            "off": uncut,
            "gain_ms": round(uncut["ttfa_ms"] - cut["ttfa_ms"], 1),
        },
    }
