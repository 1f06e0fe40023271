"""A loopback OpenAI-compatible endpoint: chat completions replayed from ``samples/llm`` as
server-sent events, and ``/v1/audio/speech`` streaming an MP3 from ``samples/tts``, exactly
as the real service sends them, with injectable faults."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aiohttp import web

from voicechat.llm.replay import ReplayLLM, load_recordings

SPEECH_MP3 = Path(__file__).resolve().parent.parent / "samples" / "tts" / "openai-speech.mp3"
SpeechFault = Literal["empty", "hold", "break"]


@dataclass
class Upstream:
    """State and fault switches of the loopback endpoint."""

    recordings_dir: Path
    speed: float = 0.0  # 0: no delays; 1: the recorded timing
    fail_status: int | None = None
    fail_count: int | None = None  # fail only this many requests (None: all while set)
    retry_after: str | None = None  # Retry-After header of the injected failures
    break_first: int = 0  # this many streams break before their first token
    stall_after: int | None = None  # stop sending (but keep the socket) after N events
    requests: list[dict[str, Any]] = field(default_factory=list)
    disconnects: int = 0  # streams the client went away from before the end
    completed: int = 0
    # /v1/audio/speech
    speech_mp3: bytes = field(default_factory=SPEECH_MP3.read_bytes)
    speech_fault: SpeechFault | None = None
    speech_chunk: int = 4096
    speech_requests: list[dict[str, Any]] = field(default_factory=list)
    speech_release: asyncio.Event = field(default_factory=asyncio.Event)
    speech_disconnects: int = 0
    speech_completed: int = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat_completions)
        app.router.add_post("/v1/audio/speech", self.speech)
        return app

    def _injected_failure(self) -> web.Response | None:
        if self.fail_status is None:
            return None
        if self.fail_count is not None:
            if self.fail_count <= 0:
                return None
            self.fail_count -= 1
        headers = {"Retry-After": self.retry_after} if self.retry_after else None
        return web.json_response(
            {"error": {"message": f"injected {self.fail_status}", "type": "test"}},
            status=self.fail_status,
            headers=headers,
        )

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        failure = self._injected_failure()
        if failure is not None:
            return failure
        recording = ReplayLLM(load_recordings(self.recordings_dir)).pick(body["messages"])
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        breaks_early = self.break_first > 0
        self.break_first -= breaks_early
        try:
            for index, event in enumerate(recording.events):
                if self.stall_after is not None and index == self.stall_after:
                    await asyncio.sleep(3600)
                if self.speed and event.delay_ms:
                    await asyncio.sleep(event.delay_ms / 1000 / self.speed)
                if (breaks_early and index == 1) or (
                    isinstance(event.data, dict) and "error" in event.data
                ):
                    assert request.transport is not None
                    request.transport.close()  # the body breaks mid-stream
                    return response
                data = event.data if isinstance(event.data, str) else json.dumps(event.data)
                await response.write(f"data: {data}\n\n".encode())
            await response.write_eof()
            self.completed += 1
        except (ConnectionError, asyncio.CancelledError):
            self.disconnects += 1
            raise
        return response

    async def speech(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.speech_requests.append(body)
        failure = self._injected_failure()
        if failure is not None:
            return failure
        response = web.StreamResponse(headers={"Content-Type": "audio/mpeg"})
        await response.prepare(request)
        audio = b"" if self.speech_fault == "empty" else self.speech_mp3
        try:
            for start in range(0, len(audio), self.speech_chunk):
                if start and self.speech_fault == "break":
                    assert request.transport is not None
                    request.transport.close()
                    return response
                await response.write(audio[start : start + self.speech_chunk])
                if start == 0 and self.speech_fault == "hold":
                    await _hold(request, self.speech_release)
            await response.write_eof()
            self.speech_completed += 1
        except (ConnectionError, asyncio.CancelledError):
            self.speech_disconnects += 1
            raise
        return response


async def _hold(request: web.Request, release: asyncio.Event) -> None:
    """Send nothing until ``release``; raise ConnectionResetError when the client goes away
    meanwhile (aiohttp does not cancel handlers, so the socket's state is watched)."""
    while not release.is_set():
        transport = request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the client went away")
        await asyncio.sleep(0.01)
