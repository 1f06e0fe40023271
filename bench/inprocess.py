"""voicechat in-process, for the side by side with Pipecat: the real ``Session`` (and so the real
turn pipeline, JSON and base64 included) writing to an in-memory socket instead of a WebSocket.

    python -m bench.inprocess --levels 1,50,200 --workload '{...}'   # prints one line of JSON
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any, cast

from aiohttp import web

from bench.driver import Event, Pipe, emit, freeze_heap, run_levels, turns_for
from bench.fakes import BenchLLM, BenchTTS, ideal_timeline
from bench.server import settings_for
from bench.workload import Workload
from voicechat.server.collector import CollectorClock
from voicechat.server.session import Session, session_config

START = json.dumps({"action": "start", "data": {"prompt": "What is the capital of France?"}})
STOP = json.dumps({"action": "stop"})
_KINDS = {"audio": "audio", "done": "end", "stopped": "stopped"}


class MemorySocket:
    """What ``Session`` needs of a ``WebSocketResponse``: ``closed`` and ``send_str``."""

    closed = False

    def __init__(self) -> None:
        self.events: asyncio.Queue[Event] = asyncio.Queue()

    async def send_str(self, text: str) -> None:
        at = time.perf_counter()
        # protocol.dump writes "action" first and "turn" second: no need to parse the JSON.
        action = text[11 : text.index('"', 11)]
        kind = _KINDS.get(action)
        if kind is not None:
            turn_at = text.find('"turn":"')
            key = text[turn_at + 8 : text.index('"', turn_at + 8)] if turn_at > 0 else None
            self.events.put_nowait((kind, at, key))


class MemoryTransport:
    """What ``Session`` asks of its transport: the write buffer (always empty here)."""

    def get_write_buffer_size(self) -> int:
        return 0

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (16 * 1024, 64 * 1024)

    def abort(self) -> None:
        return None


class SessionPipe:
    def __init__(self, session: Session, socket: MemorySocket) -> None:
        self.session = session
        self.events = socket.events

    async def start_turn(self) -> None:
        await self.session.receive_text(START)

    async def interrupt(self) -> None:
        await self.session.receive_text(STOP)


async def main_async(levels: list[int], workload: Workload, turns: int) -> dict[str, Any]:
    settings = settings_for({})  # the WebSocket bench's settings: no pacing (lead 0)
    llm, tts = BenchLLM(workload), BenchTTS(workload)
    ideal = ideal_timeline(
        workload,
        tts,
        first_clause_chars=settings.first_clause_chars,
        max_chunk_chars=settings.max_chunk_chars,
        lookahead=settings.lookahead,
    )
    sessions: list[Session] = []

    async def make_pipe() -> Pipe:
        socket = MemorySocket()
        ws = cast(web.WebSocketResponse, socket)
        transport = cast(asyncio.Transport, MemoryTransport())
        session = Session(
            ws, llm=llm, tts=tts, config=session_config(settings), transport=transport
        )
        sessions.append(session)
        return SessionPipe(session, socket)

    async def run(pipes: list[Pipe], work: Any) -> None:
        await work
        for session in sessions:
            await session.close()
        sessions.clear()

    # Warm-up: render the speech once, as the WebSocket bench does.
    await run_levels(
        [1],
        turns_for=lambda n: 2,
        stagger=0.0,
        ideal_first=ideal.first_audio,
        make_pipe=make_pipe,
        run=run,
    )
    freeze_heap()
    # and, as `voicechat serve` does, collect on the clock (voicechat.server.collector);
    # Pipecat has none
    clock = asyncio.create_task(CollectorClock().run(sessions), name="collector clock")
    try:
        results = await run_levels(
            levels,
            turns_for=lambda n: turns_for(n, turns),
            stagger=2.0,
            ideal_first=ideal.first_audio,
            make_pipe=make_pipe,
            run=run,
        )
    finally:
        clock.cancel()
        await asyncio.wait([clock])
    return {
        "system": "voicechat",
        "ideal_first_audio_ms": round(ideal.first_audio * 1000, 2),
        "levels": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--levels", default="1,50,200")
    parser.add_argument("--workload", default="{}")
    parser.add_argument("--turns", type=int, default=20, help="turns per session at level 1")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    emit(asyncio.run(main_async(levels, Workload(**json.loads(args.workload)), args.turns)))


if __name__ == "__main__":
    main()
