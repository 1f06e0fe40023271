"""Hostile input and sessions (issue 13, "Input" and "Sessions"): strings are validated at the
edge, a turn id is never reused, a half-open connection is taken over by its resume token,
ghosts never lock anyone out, and a client that never reads cannot dodge the send timeout."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncGenerator, Sequence
from typing import Any

import pytest
from aiohttp import WSMsgType

from tests.conftest import ClientFactory, ScriptedLLM, TrackingTTS, VoiceClient, eventually
from tests.rawws import RawWebSocket
from voicechat.llm.base import ChatMessage
from voicechat.server.gates import SEATS
from voicechat.server.keys import PARKING, SESSIONS
from voicechat.tts.tone import ToneTTS

SENTENCES = ["One is first. ", "Two comes next. ", "Three is here. ", "Four is last."]
LONE = '"\\ud800"'  # JSON for a lone surrogate: valid JSON, not Unicode text


def start_with(field: str, value_json: str) -> str:
    data = {"prompt": "go", "id": "ok"}
    data.pop(field, None)
    body = json.dumps(data)[:-1] + f', "{field}": {value_json}}}'
    return '{"action": "start", "data": ' + body + "}"


# -- input at the edge -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [("id", LONE), ("prompt", LONE), ("voice", LONE), ("id", '"a\\nb"'), ("id", '"a\\u0000"')],
)
async def test_a_bad_string_is_a_bad_request_and_the_session_goes_on(
    voice_client: ClientFactory, field: str, value: str
) -> None:
    client, _ = await voice_client(llm=ScriptedLLM(SENTENCES))
    await client.ws.send_str(start_with(field, value))
    error = await client.next_event()
    assert error["action"] == "error" and error["data"]["code"] == "bad_request"
    assert (await client.turn("again"))[-1]["action"] == "done"


async def test_a_played_report_with_a_lone_surrogate_is_a_bad_request(
    voice_client: ClientFactory,
) -> None:
    client, _ = await voice_client()
    await client.ws.send_str('{"action": "played", "turn": "\\udfff", "seq": 0}')
    assert (await client.next_event())["data"]["code"] == "bad_request"


async def test_speak_refuses_a_lone_surrogate_before_streaming(aiohttp_client: Any) -> None:
    from tests.test_gates import serve

    http = await serve(aiohttp_client)
    body = '{"prompt": "go", "id": "\\ud800"}'
    response = await http.post("/v1/speak", data=body, headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "bad_request"


# -- turn ids --------------------------------------------------------------------------------


async def test_a_start_reusing_the_speaking_turns_id_is_refused(
    voice_client: ClientFactory,
) -> None:
    client, _ = await voice_client(llm=ScriptedLLM(SENTENCES, hold_after=2))
    await client.start("go", id="a")
    await client.until("audio")
    await client.start("again", id="a")
    refusal = await client.until("error")
    assert refusal[-1]["data"]["code"] == "bad_request"
    assert not [e for e in refusal if e["action"] == "stopped"]


class SecondTurnWaits:
    """The first stream speaks and then waits; the second says nothing until released."""

    name = "second-waits"

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.opened = 0

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncGenerator[str, None]:
        self.opened += 1
        if self.opened > 1:
            await self.release.wait()
        for delta in SENTENCES[:2]:
            yield delta
        await self.release.wait()

    async def aclose(self) -> None:
        return None


async def test_a_resume_never_replays_the_stopped_turns_frames(
    voice_client: ClientFactory,
) -> None:
    llm = SecondTurnWaits()
    client, http = await voice_client(llm=llm, tts=ToneTTS())
    ready = client.events[0]
    await client.start("go", id="a")
    await client.until("audio")
    await client.start("other", id="b")  # barge-in: a stops, b has said nothing yet
    await client.until("stopped")
    client.ws._response.connection.transport.abort()  # noqa: SLF001
    await eventually(lambda: len(http.server.app[PARKING]) == 1)
    params = {"resume": ready["data"]["resume"], "turn": "b", "seq": "-1"}
    again = VoiceClient(await http.ws_connect("/ws", params=params))
    assert (await again.next_event())["data"]["resumed"] is True
    llm.release.set()
    events = await again.until("done")
    assert {e.get("turn") for e in events} == {"b"}
    assert [e["seq"] for e in events if e["action"] == "audio"][0] == 0


# -- resume on a half-open connection ----------------------------------------------------------


async def test_a_valid_resume_token_takes_over_a_half_open_connection_at_once(
    voice_client: ClientFactory,
) -> None:
    _, http = await voice_client()
    old = await RawWebSocket.connect(http.host, http.port)
    ready = await old.until("ready")
    # The old connection now goes silent (no FIN, no RST): the server cannot know it is dead.
    params = {"resume": ready["data"]["resume"]}
    new = VoiceClient(await http.ws_connect("/ws", params=params))
    hello = await new.next_event()
    assert hello["data"]["resumed"] is True
    assert hello["data"]["session"] == ready["data"]["session"]
    assert hello["data"]["resume"] != ready["data"]["resume"]  # rotated on every resume
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        await asyncio.wait_for(old.receive_json(), 10)  # the old socket was closed
    old.abort()
    assert (await new.turn("go"))[-1]["action"] == "done"
    stale = VoiceClient(await http.ws_connect("/ws", params=params))
    assert (await stale.next_event())["data"]["resumed"] is False


# -- ghosts ----------------------------------------------------------------------------------


async def test_connect_reset_cycles_never_lock_a_client_out(voice_client: ClientFactory) -> None:
    first, http = await voice_client(max_sessions=3, max_parked_per_ip=2)
    await first.ws.close()
    for _ in range(30):
        ghost = await RawWebSocket.connect(http.host, http.port)
        await ghost.until("ready")
        ghost.abort()
    seats = http.server.app[SEATS]
    await eventually(lambda: not http.server.app[SESSIONS] and len(seats) == 0)
    client = VoiceClient(await http.ws_connect("/ws"))
    assert (await client.next_event())["action"] == "ready"
    assert len(http.server.app[PARKING]) <= 2
    health = await (await http.get("/healthz")).json()
    assert health["sessions"] == 1 and health["parked"] == len(http.server.app[PARKING])
    metrics = await (await http.get("/metrics")).text()
    assert f"voicechat_sessions_parked {float(health['parked'])}" in metrics


async def test_a_session_the_server_closed_for_idling_is_not_parked(
    voice_client: ClientFactory,
) -> None:
    client, http = await voice_client(idle_timeout=0.2)
    closing = await asyncio.wait_for(client.ws.receive(), 10)
    assert closing.type is WSMsgType.CLOSE and closing.data == 4408
    await eventually(lambda: not http.server.app[SESSIONS])
    assert len(http.server.app[PARKING]) == 0


async def test_a_session_closed_for_a_too_large_message_is_not_parked(
    voice_client: ClientFactory,
) -> None:
    client, http = await voice_client(max_message_bytes=1024)
    await client.ws.send_str("x" * 4096)
    closing = await asyncio.wait_for(client.ws.receive(), 10)
    assert closing.type is WSMsgType.CLOSE and closing.data == 1009
    await eventually(lambda: not http.server.app[SESSIONS])
    assert len(http.server.app[PARKING]) == 0


async def test_a_per_address_cap_refuses_one_address_past_it(voice_client: ClientFactory) -> None:
    first, http = await voice_client(max_sessions_per_ip=1)
    second = await http.ws_connect("/ws")
    refusal = await second.receive()
    assert refusal.type is WSMsgType.CLOSE and refusal.data == 1013
    assert (await first.turn("go"))[-1]["action"] == "done"


# -- a client that never reads ---------------------------------------------------------------


async def test_barge_ins_do_not_dodge_the_send_timeout(voice_client: ClientFactory) -> None:
    many = [f"Sentence number {i} is here. " for i in range(400)]
    tts = TrackingTTS(ToneTTS(piece_ms=500))
    first, http = await voice_client(
        llm=ScriptedLLM(many), tts=tts, send_timeout=1.0, control_rate=0
    )
    sessions = http.server.app[SESSIONS]
    await first.ws.close()
    await eventually(lambda: not sessions)
    tiny = socket.socket()  # a small receive window: the server's send buffer fills soon
    tiny.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    tiny.setblocking(False)
    await asyncio.get_running_loop().sock_connect(tiny, (http.host, http.port))
    reader, writer = await asyncio.open_connection(sock=tiny, limit=1024)
    raw = RawWebSocket(reader, writer)
    await raw_handshake(raw, http)
    await eventually(lambda: len(sessions) == 1)

    async def barge_in_forever() -> None:
        for n in range(200):  # never reads a byte from here on
            await raw.send_json({"action": "start", "data": {"prompt": f"go {n}"}})
            await asyncio.sleep(0.5)

    barging = asyncio.create_task(barge_in_forever())
    try:
        await eventually(lambda: not sessions, within=20)
    finally:
        barging.cancel()
        await asyncio.gather(barging, return_exceptions=True)
        writer.close()


async def raw_handshake(raw: RawWebSocket, http: Any) -> None:
    import base64
    import os

    key = base64.b64encode(os.urandom(16)).decode()
    raw._writer.write(  # noqa: SLF001
        f"GET /ws HTTP/1.1\r\nHost: {http.host}:{http.port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = await raw._reader.readuntil(b"\r\n\r\n")  # noqa: SLF001
    assert head.startswith(b"HTTP/1.1 101"), head


# -- floods ----------------------------------------------------------------------------------


async def test_a_flood_of_invalid_messages_is_answered_only_up_to_a_bound(
    voice_client: ClientFactory,
) -> None:
    client, _ = await voice_client(control_rate=10, control_burst=30)
    for _ in range(2000):
        await client.ws.send_str("{not json")
    await client.send("stop")
    events = await client.until("stopped")
    errors = [e for e in events if e["action"] == "error"]
    assert 0 < len(errors) <= 600  # the bucket's burst (300) and what refilled meanwhile


async def test_a_flood_of_played_reports_does_not_hold_up_the_flooders_stop(
    voice_client: ClientFactory,
) -> None:
    client, _ = await voice_client(llm=ScriptedLLM(SENTENCES, hold_after=2))
    await client.start("go")
    first = (await client.until("audio"))[-1]
    played = json.dumps({"action": "played", "turn": first["turn"], "seq": first["seq"]})
    for _ in range(5000):
        await client.ws.send_str(played)
    await client.send("stop")
    stopped = (await client.until("stopped"))[-1]
    assert stopped["turn"] == first["turn"]
