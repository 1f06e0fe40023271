"""Property: any sequence of client frames leaves the server serving.

Valid, invalid, binary and oversized frames in any order; afterwards the same session (or a
new one, when the socket was legitimately closed for an oversized frame) speaks a normal turn.
Every event the server sends on the way is well-formed, and nothing is logged as an error.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import EVENT_TIMEOUT
from tests.conftest import test_settings as make_settings
from voicechat.server.app import create_app
from voicechat.tts.tone import ToneTTS

MAX_MESSAGE_BYTES = 2048
SERVER_ACTIONS = {"ready", "text", "sentence", "audio", "paused", "resumed", "stopped", "done"}
ERROR_CODES = {"bad_json", "bad_request", "unknown_action", "too_large", "llm_failed", "tts_failed"}
PROMPTS = ["Count to five.", "What is the capital of France?", "Break in the middle."]


@dataclass(frozen=True)
class Binary:
    data: bytes


@dataclass(frozen=True)
class Oversized:
    size: int


Frame = str | Binary | Oversized

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)
prompts = st.sampled_from(PROMPTS) | st.text(max_size=60)
frames: st.SearchStrategy[Frame] = st.one_of(
    st.sampled_from(["pause", "resume", "stop"]).map(lambda a: json.dumps({"action": a})),
    st.builds(lambda p: json.dumps({"action": "start", "data": {"prompt": p}}), prompts),
    st.builds(
        lambda t, n: json.dumps({"action": "played", "turn": t, "seq": n}),
        st.sampled_from(["t1", "t2", "x"]),
        st.integers(-3, 50),
    ),
    st.fixed_dictionaries(
        {"action": st.sampled_from(["start", "played", "dance"]) | st.text(max_size=8)},
        optional={"data": json_values, "turn": json_values, "seq": json_values},
    ).map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=100),
    st.binary(max_size=100).map(Binary),
    st.integers(MAX_MESSAGE_BYTES + 1, 4 * MAX_MESSAGE_BYTES).map(Oversized),
)


@contextmanager
def errors_logged() -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.ERROR or record.exc_info:
                records.append(record)

    handler = Collect()
    logging.getLogger().addHandler(handler)
    try:
        yield records
    finally:
        logging.getLogger().removeHandler(handler)


def check_event(event: dict[str, Any]) -> None:
    if event["action"] == "error":
        assert event["data"]["code"] in ERROR_CODES, event
        assert isinstance(event["data"]["message"], str)
    else:
        assert event["action"] in SERVER_ACTIONS, event


async def final_turn(ws: Any) -> None:
    """A normal turn with its own id completes; returns when its ``done`` arrives."""
    await ws.send_str(json.dumps({"action": "start", "data": {"prompt": PROMPTS[0], "id": "z"}}))
    while True:
        message = await ws.receive(timeout=EVENT_TIMEOUT)
        assert message.type is WSMsgType.TEXT, message
        event = json.loads(message.data)
        check_event(event)
        if event["action"] == "done" and event["turn"] == "z":
            assert event["data"]["text"] == "One. Two. Three. Four. Five."
            return


async def exercise(sequence: list[Frame]) -> None:
    settings = make_settings(max_message_bytes=MAX_MESSAGE_BYTES, control_rate=0)
    async with TestClient(TestServer(create_app(settings, tts=ToneTTS()))) as http:
        ws = await http.ws_connect("/ws")
        assert json.loads((await ws.receive(timeout=EVENT_TIMEOUT)).data)["action"] == "ready"
        oversized = False
        for frame in sequence:
            if isinstance(frame, Binary):
                await ws.send_bytes(frame.data)
            elif isinstance(frame, Oversized):
                await ws.send_str("x" * frame.size)
                oversized = True
                break  # the server closes the socket: nothing more can be sent on it
            else:
                await ws.send_str(frame)
        if oversized:
            while (message := await ws.receive(timeout=EVENT_TIMEOUT)).type is WSMsgType.TEXT:
                check_event(json.loads(message.data))
            assert message.type is WSMsgType.CLOSE
            assert message.data == 1009
            ws = await http.ws_connect("/ws")
        await final_turn(ws)
        await ws.close()


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(sequence=st.lists(frames, max_size=12))
def test_any_sequence_of_frames_leaves_the_server_serving(sequence: list[Frame]) -> None:
    with errors_logged() as errors:
        asyncio.run(exercise(sequence))
    assert not errors, [r.getMessage() for r in errors]
