"""A WebSocket client on a bare TCP stream, for leaving the way real clients do: mid-turn,
without a close frame (``abort`` resets the connection)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import struct
from typing import Any

TEXT, CLOSE, PING = 0x1, 0x8, 0x9


def text_frame(message: dict[str, Any], *, masked: bool = True) -> bytes:
    """One text frame holding ``message`` as JSON, masked as a client must (or not)."""
    payload = json.dumps(message).encode()
    mask_bit = 0x80 if masked else 0
    header = bytes([0x80 | TEXT])
    if len(payload) < 126:
        header += bytes([mask_bit | len(payload)])
    elif len(payload) < 1 << 16:
        header += bytes([mask_bit | 126]) + struct.pack("!H", len(payload))
    else:
        header += bytes([mask_bit | 127]) + struct.pack("!Q", len(payload))
    if not masked:
        return header + payload
    mask = os.urandom(4)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class Closed(ConnectionError):
    """The server sent a close frame with ``code``."""

    def __init__(self, code: int) -> None:
        super().__init__(f"closed by the server with {code}")
        self.code = code


class RawWebSocket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def connect(
        cls, host: str, port: int, path: str = "/ws", *, then: bytes = b""
    ) -> RawWebSocket:
        """Open the WebSocket; ``then`` goes in the same write as the handshake."""
        reader, writer = await asyncio.open_connection(host, port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
            + then
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    async def send_json(self, message: dict[str, Any]) -> None:
        await self.send_raw(text_frame(message))

    async def send_raw(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    async def receive_json(self) -> dict[str, Any]:
        """The next text frame, parsed. Pings are skipped (this client never answers them);
        a close frame raises :class:`Closed`, and is not answered either."""
        while True:
            first, second = await self._reader.readexactly(2)
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await self._reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await self._reader.readexactly(8))
            payload = await self._reader.readexactly(length)
            opcode = first & 0x0F
            if opcode == TEXT:
                event: dict[str, Any] = json.loads(payload)
                return event
            assert opcode in (PING, CLOSE), opcode
            if opcode == CLOSE:
                raise Closed(struct.unpack("!H", payload[:2])[0] if payload else 1005)

    async def until(self, action: str) -> dict[str, Any]:
        while (event := await self.receive_json())["action"] != action:
            pass
        return event

    def abort(self) -> None:
        """Vanish: reset the TCP connection without a close frame."""
        self._writer.transport.abort()

    async def aborted(self) -> None:
        """:meth:`abort`, and wait until the socket is released."""
        self.abort()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()
