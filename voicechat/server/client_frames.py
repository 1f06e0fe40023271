"""Masked client frames only (RFC 6455, section 5.1): "a server MUST close the connection upon
receiving a frame that is not masked".

aiohttp's frame readers (the C one and the Python one) unmask a frame when it carries a mask and
accept it as it is when not. :class:`ClientWebSocket` follows the frame boundaries of what the
client sends, ahead of aiohttp's reader, and ends the connection with 1002 (protocol error) at the
first frame without a mask; that frame and whatever follows it are never parsed.

This reaches into two of aiohttp's private attributes (the handler's parser slot and unparsed
handshake tail, the response's message queue); ``tests/test_client_frames.py`` fails if an aiohttp
release moves them.
"""

from __future__ import annotations

from typing import Any

from aiohttp import WebSocketError, WSCloseCode, web

MASK_BIT = 0x80


class MaskCheck:
    """Follows a client's frame boundaries; :meth:`feed` is False from the first unmasked frame."""

    __slots__ = ("_header", "_payload_left", "broken")

    def __init__(self) -> None:
        self._header = bytearray()  # the current frame's header, at most 14 bytes
        self._payload_left = 0
        self.broken = False

    def feed(self, data: bytes | bytearray | memoryview) -> bool:
        if self.broken:
            return False
        at, end = 0, len(data)
        while at < end:
            if self._payload_left:
                step = min(self._payload_left, end - at)
                self._payload_left -= step
                at += step
                continue
            self._header.append(data[at])
            at += 1
            if len(self._header) < 2:
                continue
            if not self._header[1] & MASK_BIT:
                self.broken = True
                return False
            length = self._header[1] & 0x7F
            extended = 2 if length == 126 else 8 if length == 127 else 0
            if len(self._header) < 2 + extended + 4:
                continue
            if extended:
                length = int.from_bytes(self._header[2 : 2 + extended], "big")
            self._payload_left = length
            self._header.clear()
        return True


class _MaskedOnlyParser:
    """Sits in the handler's parser slot in front of aiohttp's frame reader."""

    __slots__ = ("_check", "_on_unmasked", "_reader")

    def __init__(self, reader: Any, check: MaskCheck, on_unmasked: Any) -> None:
        self._reader = reader
        self._check = check
        self._on_unmasked = on_unmasked

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if not self._check.feed(data):
            self._on_unmasked()
            return True, b""  # as aiohttp's reader answers a protocol error: the end
        result: tuple[bool, bytes] = self._reader.feed_data(data)
        return result

    def feed_eof(self) -> None:
        self._reader.feed_eof()


class ClientWebSocket(web.WebSocketResponse):
    """A :class:`aiohttp.web.WebSocketResponse` that closes with 1002 on an unmasked frame."""

    def _post_start(self, request: web.BaseRequest, protocol: str | None, writer: Any) -> None:
        handler: Any = request.protocol
        check = MaskCheck()
        # Bytes that came in the handshake's packet are fed to the reader inside _post_start:
        # check them first, and drop them if a frame there is unmasked.
        handshake_tail = handler._message_tail
        if handshake_tail and not check.feed(handshake_tail):
            handler._message_tail = b""
        super()._post_start(request, protocol, writer)
        handler._payload_parser = _MaskedOnlyParser(handler._payload_parser, check, self._unmasked)
        if check.broken:
            self._unmasked()

    def _unmasked(self) -> None:
        # What aiohttp's reader does with any other protocol error: receive() answers it by
        # closing with the error's code.
        assert self._reader is not None  # made by _post_start, before any frame is parsed
        self._reader.set_exception(
            WebSocketError(WSCloseCode.PROTOCOL_ERROR, "a client frame without a mask")
        )
