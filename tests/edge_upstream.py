"""A loopback WebSocket server that speaks the protocol of Microsoft's Edge read-aloud service,
as the ``edge-tts`` library expects it, and replays a recorded MP3 from ``samples/tts``.

The exchange, per request: the client connects to ``.../edge/v1?TrustedClientToken=...&
ConnectionId=...&Sec-MS-GEC=...&Sec-MS-GEC-Version=...``, sends a ``speech.config`` and an
``ssml`` text message; the service answers ``turn.start``, ``response``, ``audio.metadata``
(the sentence), binary ``audio`` messages (a 2-byte header length, headers ending in
``Path:audio``, then MP3 bytes), an empty ``audio`` message, and ``turn.end``.
Faults are switched on by the tests.
"""

from __future__ import annotations

import asyncio
import json
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aiohttp import WSMsgType, web

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "tts"
EDGE_PATH = "/consumer/speech/synthesize/readaloud/edge/v1"
VOICES_PATH = "/consumer/speech/synthesize/readaloud/voices/list"
REQUIRED_PARAMS = ("TrustedClientToken", "ConnectionId", "Sec-MS-GEC", "Sec-MS-GEC-Version")
EdgeFault = Literal["close_early", "no_audio", "hang", "hold"]


def _text_message(request_id: str, path: str, body: dict[str, Any]) -> str:
    return (
        f"X-RequestId:{request_id}\r\nContent-Type:application/json; charset=utf-8\r\n"
        f"Path:{path}\r\n\r\n{json.dumps(body)}"
    )


def _audio_message(request_id: str, stream_id: str, mp3: bytes) -> bytes:
    content_type = "Content-Type:audio/mpeg\r\n" if mp3 else ""
    headers = f"X-RequestId:{request_id}\r\n{content_type}X-StreamId:{stream_id}\r\nPath:audio\r\n"
    encoded = headers.encode()
    return len(encoded).to_bytes(2, "big") + encoded + mp3


def _split(message: str) -> tuple[dict[str, str], str]:
    head, _, body = message.partition("\r\n\r\n")
    headers = dict(line.split(":", 1) for line in head.split("\r\n") if ":" in line)
    return headers, body


def spoken_text(ssml: str) -> str:
    """The text inside the SSML's <prosody>, as an XML parser reads it (entities resolved)."""
    root = ET.fromstring(ssml)
    return "".join(root.itertext())


@dataclass
class EdgeUpstream:
    audio: bytes = field(default_factory=lambda: (SAMPLES / "edge-speech.mp3").read_bytes())
    voices: bytes = field(default_factory=lambda: (SAMPLES / "edge-voices.json").read_bytes())
    chunk_bytes: int = 1500  # audio message size: not aligned to MP3 frames, like the service
    handshake_status: int | None = None
    refuse_after: int = 0  # handshakes accepted before handshake_status applies
    voices_status: int | None = None
    fault: EdgeFault | None = None
    release: asyncio.Event = field(default_factory=asyncio.Event)
    configs: list[dict[str, Any]] = field(default_factory=list)
    ssml: list[str] = field(default_factory=list)
    handshakes: int = 0  # connection attempts, refused ones included
    open: int = 0
    peak: int = 0  # most connections open at once
    client_gone: int = 0  # connections the client closed before turn.end
    completed: int = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(EDGE_PATH, self.synthesize)
        app.router.add_get(VOICES_PATH, self.list_voices)
        return app

    async def list_voices(self, request: web.Request) -> web.Response:
        if self.voices_status is not None:
            return web.Response(status=self.voices_status)
        return web.Response(body=self.voices, content_type="application/json")

    async def synthesize(self, request: web.Request) -> web.StreamResponse:
        self.handshakes += 1
        missing = [p for p in REQUIRED_PARAMS if p not in request.query]
        if missing:
            return web.Response(status=400, text=f"missing {missing}")
        if self.handshake_status is not None and self.handshakes > self.refuse_after:
            return web.Response(status=self.handshake_status)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.open += 1
        self.peak = max(self.peak, self.open)
        try:
            if await self._serve(ws):
                self.completed += 1
            else:
                self.client_gone += 1
        except (ConnectionError, asyncio.CancelledError):  # aiohttp cancels us when it sees
            self.client_gone += 1  # the client's socket close
            raise
        finally:
            self.open -= 1
            await ws.close()
        return ws

    async def _serve(self, ws: web.WebSocketResponse) -> bool:
        """One request; False when the client went away first."""
        request_id = ""
        while not request_id:
            message = await ws.receive()
            if message.type is not WSMsgType.TEXT:
                return False
            headers, body = _split(message.data)
            if headers.get("Path") == "speech.config":
                self.configs.append(json.loads(body))
            elif headers.get("Path") == "ssml":
                self.ssml.append(body)
                request_id = headers["X-RequestId"]
        stream_id = uuid.uuid4().hex
        await ws.send_str(_text_message(request_id, "turn.start", {"context": {}}))
        if self.fault == "hang":
            return await self._wait(ws, asyncio.Event())
        await ws.send_str(_text_message(request_id, "response", {"audio": {"streamId": stream_id}}))
        text = spoken_text(self.ssml[-1])
        boundary = {
            "Offset": 1_000_000,
            "Duration": 10_000_000,
            "text": {"Text": text, "Length": len(text), "BoundaryType": "SentenceBoundary"},
        }
        metadata = {"Metadata": [{"Type": "SentenceBoundary", "Data": boundary}]}
        await ws.send_str(_text_message(request_id, "audio.metadata", metadata))
        audio = b"" if self.fault == "no_audio" else self.audio
        for start in range(0, len(audio), self.chunk_bytes):
            if start and self.fault == "hold" and not await self._wait(ws, self.release):
                return False
            chunk = audio[start : start + self.chunk_bytes]
            await ws.send_bytes(_audio_message(request_id, stream_id, chunk))
            if self.fault == "close_early" and start >= len(audio) // 2:
                return True  # the service hangs up without turn.end
        await ws.send_bytes(_audio_message(request_id, stream_id, b""))
        await ws.send_str(_text_message(request_id, "turn.end", {}))
        return True

    async def _wait(self, ws: web.WebSocketResponse, release: asyncio.Event) -> bool:
        """Send nothing until ``release``: True then, False if the client closes first."""
        receiving = asyncio.ensure_future(ws.receive())
        releasing = asyncio.ensure_future(release.wait())
        done, pending = await asyncio.wait(
            {receiving, releasing}, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        return releasing in done
