"""Guarantee 5: bad input never kills the connection or the server."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ClientFactory

HUGE = "x" * 5000  # over the 4000-character prompt limit

BAD_MESSAGES = [
    ("malformed_json", "{not json", "bad_json"),
    ("truncated_json", '{"action": "start", "data": {"prompt": "hi"', "bad_json"),
    ("json_array", "[1, 2, 3]", "bad_request"),
    ("json_string", '"start"', "bad_request"),
    ("json_null", "null", "bad_request"),
    ("no_action", '{"data": {"prompt": "hi"}}', "bad_request"),
    ("action_not_string", '{"action": 7}', "bad_request"),
    ("unknown_action", '{"action": "dance"}', "unknown_action"),
    ("start_without_data", '{"action": "start"}', "bad_request"),
    ("start_data_not_object", '{"action": "start", "data": "hi"}', "bad_request"),
    ("missing_prompt", '{"action": "start", "data": {}}', "bad_request"),
    ("empty_prompt", '{"action": "start", "data": {"prompt": ""}}', "bad_request"),
    ("blank_prompt", '{"action": "start", "data": {"prompt": "  \\n "}}', "bad_request"),
    ("prompt_not_string", '{"action": "start", "data": {"prompt": 42}}', "bad_request"),
    ("prompt_list", '{"action": "start", "data": {"prompt": ["a"]}}', "bad_request"),
    ("huge_prompt", json.dumps({"action": "start", "data": {"prompt": HUGE}}), "too_large"),
    (
        "voice_not_string",
        '{"action": "start", "data": {"prompt": "hi", "voice": 1}}',
        "bad_request",
    ),
    (
        "unknown_voice",
        '{"action": "start", "data": {"prompt": "hi", "voice": "nope"}}',
        "bad_request",
    ),
    (
        "id_too_long",
        json.dumps({"action": "start", "data": {"prompt": "hi", "id": "i" * 65}}),
        "bad_request",
    ),
    ("deep_nesting", "[" * 100000 + "]" * 100000, "bad_json"),
]


@pytest.mark.parametrize(
    ("raw", "code"),
    [(raw, code) for _, raw, code in BAD_MESSAGES],
    ids=[n for n, _, _ in BAD_MESSAGES],
)
async def test_bad_message_gets_an_error_and_the_session_goes_on(
    voice_client: ClientFactory, raw: str, code: str
) -> None:
    client, _ = await voice_client()
    await client.ws.send_str(raw)
    error = await client.next_event()
    assert error["action"] == "error"
    assert error["data"]["code"] == code
    assert error["data"]["message"]
    events = await client.turn("What is the capital of France?")
    assert events[-1]["data"]["text"].startswith("The capital of France is Paris.")


async def test_binary_frame_gets_an_error_and_the_session_goes_on(
    voice_client: ClientFactory,
) -> None:
    client, _ = await voice_client()
    await client.ws.send_bytes(b"\x00\x01binary")
    error = await client.next_event()
    assert error["data"]["code"] == "bad_request"
    assert (await client.turn("Count to five."))[-1]["action"] == "done"


@pytest.mark.parametrize("action", ["pause", "resume", "stop"])
async def test_control_with_nothing_playing_is_acknowledged(
    voice_client: ClientFactory, action: str
) -> None:
    client, _ = await voice_client()
    await client.send(action)
    ack = await client.next_event()
    assert ack["action"] == {"pause": "paused", "resume": "resumed", "stop": "stopped"}[action]
    assert ack["turn"] is None
    assert (await client.turn("Count to five."))[-1]["action"] == "done"


async def test_resume_without_pause_is_acknowledged_mid_turn(voice_client: ClientFactory) -> None:
    client, _ = await voice_client()
    await client.start("Count to five.")
    await client.send("resume")
    events = await client.until("done")
    acks = [e for e in events if e["action"] == "resumed"]
    assert len(acks) == 1


async def test_a_burst_of_hundreds_of_messages_is_answered_and_the_session_goes_on(
    voice_client: ClientFactory,
) -> None:
    client, _ = await voice_client(control_rate=0)  # the rate limit: tests/test_limits.py
    burst = ["{bad", '{"action": "pause"}', '{"action": "resume"}', '{"action": "stop"}', "[]"]
    for _ in range(100):
        for raw in burst:
            await client.ws.send_str(raw)
    replies = [await client.next_event() for _ in range(500)]
    assert [r["action"] for r in replies].count("error") == 200
    assert [r["action"] for r in replies].count("stopped") == 100
    events = await client.turn("Count to five.")
    assert events[-1]["data"]["text"] == "One. Two. Three. Four. Five."


async def test_the_server_serves_new_connections_after_bad_input(
    voice_client: ClientFactory,
) -> None:
    client, http = await voice_client()
    await client.ws.send_str("{bad")
    await client.next_event()
    await client.ws.close()
    health = await http.get("/healthz")
    assert health.status == 200
    assert (await health.json())["status"] == "ok"


@pytest.mark.parametrize(
    "raw",
    [
        '{"action": "played"}',
        '{"action": "played", "turn": "t1", "seq": -1}',
        '{"action": "played", "turn": "t1", "seq": "3"}',
        '{"action": "played", "turn": 1, "seq": 3}',
        '{"action": "played", "turn": "t1", "seq": true}',
    ],
)
async def test_a_malformed_played_report_gets_bad_request(
    voice_client: ClientFactory, raw: str
) -> None:
    client, _ = await voice_client()
    await client.ws.send_str(raw)
    assert (await client.next_event())["data"]["code"] == "bad_request"


async def test_played_reports_are_taken_silently(voice_client: ClientFactory) -> None:
    client, _ = await voice_client()
    await client.start("Count to five.")
    first = await client.until("audio")
    await client.ws.send_str(f'{{"action": "played", "turn": "t1", "seq": {first[-1]["seq"]}}}')
    await client.ws.send_str('{"action": "played", "turn": "other", "seq": 99}')
    events = await client.until("done")
    assert not [e for e in events if e["action"] == "error"]
