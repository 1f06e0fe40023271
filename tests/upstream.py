"""A loopback OpenAI-compatible endpoint that replays the recordings in ``samples/llm``
as server-sent events, exactly as the real service streams them, with injectable faults."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from voicechat.llm.replay import ReplayLLM, load_recordings


@dataclass
class Upstream:
    """State and fault switches of the loopback endpoint."""

    recordings_dir: Path
    speed: float = 0.0  # 0: no delays; 1: the recorded timing
    fail_status: int | None = None
    stall_after: int | None = None  # stop sending (but keep the socket) after N events
    requests: list[dict[str, Any]] = field(default_factory=list)
    disconnects: int = 0  # streams the client went away from before the end
    completed: int = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat_completions)
        return app

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        if self.fail_status is not None:
            return web.json_response(
                {"error": {"message": f"injected {self.fail_status}", "type": "test"}},
                status=self.fail_status,
            )
        recording = ReplayLLM(load_recordings(self.recordings_dir)).pick(body["messages"])
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            for index, event in enumerate(recording.events):
                if self.stall_after is not None and index == self.stall_after:
                    await asyncio.sleep(3600)
                if self.speed and event.delay_ms:
                    await asyncio.sleep(event.delay_ms / 1000 / self.speed)
                if isinstance(event.data, dict) and "error" in event.data:
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
