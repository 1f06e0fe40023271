"""Issue 13, item 14: an unmasked frame from a client closes the connection (RFC 6455, 5.1), on
`/ws` and `/v1/realtime`, and nothing it carried is acted on; masked frames, however cut, work."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from tests.conftest import ClientFactory
from tests.rawws import Closed, RawWebSocket, text_frame
from voicechat.server.client_frames import MaskCheck

START = {"action": "start", "data": {"prompt": "Say something.", "id": "t1"}}


@asynccontextmanager
async def raw_socket(
    http: Any, path: str = "/ws", *, then: bytes = b""
) -> AsyncIterator[RawWebSocket]:
    raw = await RawWebSocket.connect(http.host, http.port, path, then=then)
    try:
        yield raw
    finally:
        await raw.aborted()


async def everything_until_closed(raw: RawWebSocket) -> tuple[list[dict[str, Any]], int]:
    received = []
    with pytest.raises(Closed) as closed:
        while True:
            received.append(await asyncio.wait_for(raw.receive_json(), 10))
    return received, closed.value.code


async def test_an_unmasked_start_closes_the_socket_with_1002_and_starts_nothing(
    voice_client: ClientFactory,
) -> None:
    _, http = await voice_client()
    async with raw_socket(http) as raw:
        await raw.until("ready")
        await raw.send_raw(text_frame(START, masked=False))
        received, code = await everything_until_closed(raw)
    assert code == 1002
    assert [event["action"] for event in received] == []


async def test_an_unmasked_frame_sent_with_the_handshake_is_refused_too(
    voice_client: ClientFactory,
) -> None:
    _, http = await voice_client()
    async with raw_socket(http, then=text_frame(START, masked=False)) as raw:
        received, code = await everything_until_closed(raw)
    assert code == 1002
    assert [event["action"] for event in received] in ([], ["ready"])


async def test_an_unmasked_frame_after_masked_ones_ends_the_realtime_session(
    voice_client: ClientFactory,
) -> None:
    _, http = await voice_client()
    async with raw_socket(http, "/v1/realtime") as raw:
        assert (await raw.receive_json())["type"] == "session.created"
        await raw.send_json({"type": "session.update", "session": {"instructions": "Be brief."}})
        assert (await raw.receive_json())["type"] == "session.updated"
        await raw.send_raw(text_frame({"type": "response.create"}, masked=False))
        received, code = await everything_until_closed(raw)
    assert code == 1002
    assert [event["type"] for event in received] == []


async def test_masked_frames_cut_at_every_byte_and_long_frames_are_followed(
    voice_client: ClientFactory,
) -> None:
    _, http = await voice_client()
    async with raw_socket(http) as raw:
        await raw.until("ready")
        await speak_a_long_frame_then_a_trickled_one(raw)


async def speak_a_long_frame_then_a_trickled_one(raw: RawWebSocket) -> None:
    # A 64-bit length frame (a prompt over the limit: an error, the session goes on) ...
    huge = {"action": "start", "data": {"prompt": "x" * 70_000, "id": "long"}}
    await raw.send_raw(text_frame(huge))
    assert (await raw.until("error"))["data"]["code"] == "too_large"
    # ... then a start sent one byte per write: the mask check keeps the frame boundaries.
    for byte in text_frame(START):
        await raw.send_raw(bytes([byte]))
    assert (await raw.until("done"))["turn"] == "t1"


def test_the_mask_check_finds_the_same_unmasked_frame_however_the_stream_is_cut() -> None:
    masked = [text_frame({"n": n, "pad": "p" * size}) for n, size in enumerate((1, 200, 70_000))]
    stream = b"".join(masked) + text_frame({"bad": True}, masked=False) + masked[0]
    first_bad = sum(len(frame) for frame in masked) + 1  # the byte holding its mask bit
    rng = random.Random(7)
    for _ in range(50):
        check, fed = MaskCheck(), 0
        while fed < len(stream):
            piece = stream[fed : fed + rng.randint(1, 3000)]
            fed += len(piece)
            if not check.feed(piece):
                break
        assert check.broken
        assert fed - len(piece) <= first_bad < fed  # found in the piece holding that byte
    whole = MaskCheck()
    assert whole.feed(b"".join(masked)) and not whole.broken
