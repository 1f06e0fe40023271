"""The clients: real WebSockets (aiohttp) on loopback, one coroutine per session, timing each turn.

A session alternates two kinds of turn. A *full* turn is started and heard to ``done``: time to
first and last audio. An *interrupted* turn is paused after its first audio frame, held, resumed,
and stopped two frames later (or, with ``listen``, that long after the resume): pause and stop
latency, frames while paused, frames after stopped, and how much audio the client held that a
listener would not have heard yet.
Every frame of a stopped turn that arrives later in the run, however late, is counted.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.fakes import Ideal

START = json.dumps({"action": "start", "data": {"prompt": "What is the capital of France?"}})
PAUSE = json.dumps({"action": "pause"})
RESUME = json.dumps({"action": "resume"})
STOP = json.dumps({"action": "stop"})
SPEECH = ("audio", "sentence")
AUDIO_PREFIX = '{"action":"audio",'
RECEIVE_TIMEOUT = 60.0


@dataclass
class Counters:
    frames_after_stopped: int = 0
    frames_while_paused: int = 0
    order_errors: int = 0  # an audio seq that is not the previous one plus 1
    errors: int = 0  # `error` events
    turns: int = 0
    results: list[dict[str, Any]] = field(default_factory=list)


class Connection:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse, counters: Counters) -> None:
        self.ws = ws
        self.counters = counters
        self.stopped_turns: set[str] = set()

    async def send(self, text: str) -> float:
        sent = time.perf_counter()
        await self.ws.send_str(text)
        return sent

    async def receive(self, within: float | None = None) -> tuple[float, dict[str, Any]]:
        """The next event. ``within``: a deadline for this one (else the turn's, in
        run_session: a timer per message costs the clients, which share the server's cores)."""
        message = await self.ws.receive(timeout=within)
        arrived = time.perf_counter()
        if message.type is not aiohttp.WSMsgType.TEXT:
            raise ConnectionError(f"unexpected frame {message!r}")
        event = parse_event(message.data)
        if event.get("turn") in self.stopped_turns:
            self.counters.frames_after_stopped += 1
        if event["action"] == "error":
            self.counters.errors += 1
        return arrived, event

    async def until(self, action: str, turn: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        """Receive up to the next ``action``, checking the order of the audio on the way."""
        while True:
            arrived, event = await self.receive()
            if event["action"] == "audio":
                self._audio(arrived, event, turn)
            if event["action"] == action:
                return arrived, event

    def _audio(self, arrived: float, event: dict[str, Any], turn: dict[str, Any]) -> None:
        if event["seq"] != turn["frames"]:
            self.counters.order_errors += 1
        turn["frames"] += 1
        turn.setdefault("first_audio_at", arrived)
        turn["last_audio_at"] = arrived

    async def full_turn(self, ideal: Ideal) -> dict[str, Any]:
        turn: dict[str, Any] = {"kind": "full", "frames": 0}
        started = await self.send(START)
        await self.until("done", turn)
        last = turn["last_audio_at"] - started
        return _timings(turn, started, ideal) | {
            "last_audio": last,
            "last_overhead": last - ideal.last_audio,
        }

    async def interrupted_turn(
        self, ideal: Ideal, hold: float, listen: float = 0.0
    ) -> dict[str, Any]:
        turn: dict[str, Any] = {"kind": "interrupted", "frames": 0}
        started = await self.send(START)
        await self.until("audio", turn)
        pause_sent = sent = await self.send(PAUSE)
        arrived, paused = await self.until("paused", turn)
        turn["pause_latency"] = arrived - sent
        turn["frames_while_paused"] = await self._hold(hold, turn)
        paused_for = await self.send(RESUME) - pause_sent
        await self.until("resumed", turn)
        frames, listened = turn["frames"], time.perf_counter() + listen
        while turn["frames"] < frames + 2 or time.perf_counter() < listened:
            arrived, event = await self.receive()
            if event["action"] == "audio":
                self._audio(arrived, event, turn)
            elif event["action"] == "done":
                return _timings(turn, started, ideal)  # ended before the stop: no stop figures
        sent = await self.send(STOP)
        # What a listener that plays what it gets and cannot silence itself would still hear:
        # the audio received so far, less what it has played (from the first frame, not while
        # paused). Pacing (lead) bounds it; without pacing it is whatever the server had.
        played = sent - turn["first_audio_at"] - paused_for
        turn["ahead_at_stop"] = ideal.frame_ends[turn["frames"] - 1] - played
        arrived, stopped = await self.until("stopped", turn)
        turn["stop_latency"] = arrived - sent
        self.stopped_turns.add(stopped["turn"])
        # Drain: the server answers in order, so whatever it sent before this ack is in.
        await self.send(PAUSE)
        await self.until("paused", turn)
        return _timings(turn, started, ideal)

    async def _hold(self, seconds: float, turn: dict[str, Any]) -> int:
        """Stay paused for ``seconds``; return the speech frames received meanwhile."""
        speech = 0
        deadline = time.perf_counter() + seconds
        while (left := deadline - time.perf_counter()) > 0:
            try:
                arrived, event = await self.receive(within=left)
            except TimeoutError:
                break
            if event["action"] in SPEECH:
                speech += 1
                if event["action"] == "audio":
                    self._audio(arrived, event, turn)
        self.counters.frames_while_paused += speech
        return speech


def parse_event(text: str) -> dict[str, Any]:
    """The event in ``text``; of an ``audio`` event only what the bench reads (its base64
    ``data``, last in protocol.dump's order, is left unparsed: it is most of the bytes)."""
    if text.startswith(AUDIO_PREFIX):
        head: dict[str, Any] = json.loads(text[: text.index(',"data":"')] + "}")
        return head
    event: dict[str, Any] = json.loads(text)
    return event


def _timings(turn: dict[str, Any], started: float, ideal: Ideal) -> dict[str, Any]:
    first = turn.pop("first_audio_at") - started
    turn.pop("last_audio_at", None)
    return turn | {"ttfa": first, "overhead": first - ideal.first_audio}


async def run_session(
    http: aiohttp.ClientSession,
    url: str,
    *,
    ideal: Ideal,
    turns: int,
    delay: float,
    hold: float,
    counters: Counters,
    listen: float = 0.0,
) -> None:
    async with http.ws_connect(url, max_msg_size=0) as ws:
        connection = Connection(ws, counters)
        _, ready = await connection.receive(within=RECEIVE_TIMEOUT)
        assert ready["action"] == "ready", ready
        await asyncio.sleep(delay)
        for index in range(turns):
            began = time.perf_counter()
            async with asyncio.timeout(RECEIVE_TIMEOUT):
                if index % 2 == 0:
                    result = await connection.full_turn(ideal)
                else:
                    result = await connection.interrupted_turn(ideal, hold, listen)
            counters.results.append(result | {"index": index, "began": began})
            counters.turns += 1


async def speaking(
    url: str,
    *,
    sessions: int,
    turns: int,
    ideal: Ideal,
    stagger: float,
    hold: float,
    seed: int = 6,
    listen: float = 0.0,
) -> Counters:
    """``sessions`` concurrent sessions of ``turns`` turns each, started over ``stagger`` s;
    an interrupted turn is stopped two frames after its resume, and no sooner than ``listen``
    seconds after it."""
    rng = random.Random(seed)
    counters = Counters()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http, asyncio.TaskGroup() as group:
        for _ in range(sessions):
            delay = rng.uniform(0, stagger) if sessions > 1 else 0.0
            group.create_task(
                run_session(
                    http,
                    url,
                    ideal=ideal,
                    turns=turns,
                    delay=delay,
                    hold=hold,
                    counters=counters,
                    listen=listen,
                )
            )
    return counters


async def hold_idle(url: str, *, sessions: int, on_connected: Any) -> dict[str, Any]:
    """Open ``sessions`` WebSockets and keep them idle; call ``on_connected()`` (which measures)
    once all have their ``ready``; then check every one still answers, and close them."""
    connector = aiohttp.TCPConnector(limit=0)
    opening = asyncio.Semaphore(64)
    sockets: list[aiohttp.ClientWebSocketResponse] = []

    async def open_one(http: aiohttp.ClientSession) -> None:
        async with opening:
            ws = await http.ws_connect(url, max_msg_size=0)
            sockets.append(ws)
            ready = json.loads((await ws.receive(timeout=RECEIVE_TIMEOUT)).data)
            assert ready["action"] == "ready", ready

    async def still_answers(ws: aiohttp.ClientWebSocketResponse) -> bool:
        await ws.send_str(PAUSE)
        reply = json.loads((await ws.receive(timeout=RECEIVE_TIMEOUT)).data)
        return bool(reply["action"] == "paused")

    async with aiohttp.ClientSession(connector=connector) as http:
        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(sessions):
                    group.create_task(open_one(http))
            measured = await on_connected()
            answers = await asyncio.gather(*(still_answers(ws) for ws in sockets))
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets))
    result: dict[str, Any] = measured | {"held": len(sockets), "answered": sum(answers)}
    return result
