"""LLM backends: ``replay`` on the recordings, ``openai`` through the real SDK against a
loopback endpoint that streams the same recordings."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import SAMPLES, ClientFactory, eventually, free_port
from voicechat.errors import LLMFailed
from voicechat.llm.base import ChatMessage, chunk_text
from voicechat.llm.openai import OpenAILLM
from voicechat.llm.replay import ReplayLLM, load_recordings

RECORDINGS = load_recordings(SAMPLES / "llm")


def ask(prompt: str) -> list[ChatMessage]:
    return [{"role": "system", "content": "be brief"}, {"role": "user", "content": prompt}]


async def collect(stream: AsyncIterator[str]) -> str:
    return "".join([delta async for delta in stream])


@pytest.fixture
async def openai_llm() -> AsyncIterator[Any]:
    """``openai_llm(base_url, **options)`` → an OpenAILLM, closed after the test."""
    made: list[OpenAILLM] = []

    def make(base_url: str, **options: Any) -> OpenAILLM:
        made.append(
            OpenAILLM(api_key="test-key", base_url=base_url, model="gpt-4o-mini", **options)
        )
        return made[-1]

    yield make
    for llm in made:
        await llm.aclose()


# replay ------------------------------------------------------------------------------------


async def test_replay_streams_the_recording_that_matches_the_prompt() -> None:
    llm = ReplayLLM(RECORDINGS, speed=0)
    text = await collect(llm.stream(ask("  what is the CAPITAL of france? ")))
    assert text == RECORDINGS["capital"].text()
    assert text.startswith("The capital of France is Paris.")


async def test_replay_answers_an_unknown_prompt_with_the_default_recording() -> None:
    llm = ReplayLLM(RECORDINGS, speed=0)
    assert await collect(llm.stream(ask("something else"))) == RECORDINGS["default"].text()


async def test_replay_skips_chunks_without_text() -> None:
    llm = ReplayLLM(RECORDINGS, speed=0)
    assert (
        await collect(llm.stream(ask("Answer with quirky chunks."))) == RECORDINGS["capital"].text()
    )


async def test_replay_of_a_broken_stream_fails_after_its_text() -> None:
    llm = ReplayLLM(RECORDINGS, speed=0)
    received = []
    with pytest.raises(LLMFailed):
        async for delta in llm.stream(ask("Break in the middle.")):
            received.append(delta)
    assert "".join(received) and RECORDINGS["default"].text().startswith("".join(received))


def test_chunk_text_skips_what_carries_no_text() -> None:
    assert chunk_text({"choices": []}) == ""
    assert chunk_text({"choices": [{"delta": None}]}) == ""
    assert chunk_text({"choices": [{"delta": {"role": "assistant"}}]}) == ""
    assert chunk_text({"choices": [], "usage": {"total_tokens": 3}}) == ""
    assert chunk_text({"choices": [{"delta": {"content": "hi"}}]}) == "hi"


# openai through the real SDK -----------------------------------------------------------------


async def test_openai_backend_streams_a_recording_through_the_sdk(
    upstream: Any, openai_llm: Any
) -> None:
    state, url = upstream
    text = await collect(openai_llm(url).stream(ask("What is the capital of France?")))
    assert text == RECORDINGS["capital"].text()
    assert state.requests[0]["stream"] is True
    assert state.requests[0]["messages"][-1]["content"] == "What is the capital of France?"


async def test_openai_backend_skips_empty_choices_null_deltas_and_usage(
    upstream: Any, openai_llm: Any
) -> None:
    _, url = upstream
    text = await collect(openai_llm(url).stream(ask("Answer with quirky chunks.")))
    assert text == RECORDINGS["capital"].text()


@pytest.mark.parametrize(
    ("status", "words"),
    [(401, "API key"), (404, "model"), (429, "rate limit"), (500, "HTTP 500"), (503, "HTTP 503")],
)
async def test_openai_backend_turns_http_errors_into_llm_failed(
    upstream: Any, status: int, words: str, openai_llm: Any
) -> None:
    state, url = upstream
    state.fail_status = status
    with pytest.raises(LLMFailed) as caught:
        await collect(openai_llm(url).stream(ask("hi")))
    assert words in caught.value.message
    assert caught.value.code == "llm_failed" and caught.value.backend == "openai"


async def test_openai_backend_reports_a_refused_connection(openai_llm: Any) -> None:
    port = free_port()
    with pytest.raises(LLMFailed, match="cannot reach"):
        await collect(openai_llm(f"http://127.0.0.1:{port}/v1").stream(ask("hi")))


async def test_openai_backend_reports_a_stream_that_breaks_mid_answer(
    upstream: Any, openai_llm: Any
) -> None:
    _, url = upstream
    received = []
    with pytest.raises(LLMFailed):
        async for delta in openai_llm(url).stream(ask("Break in the middle.")):
            received.append(delta)
    assert received  # the text before the break arrived


async def test_openai_backend_times_out_a_stalled_stream(upstream: Any, openai_llm: Any) -> None:
    state, url = upstream
    state.stall_after = 5
    with pytest.raises(LLMFailed, match="timed out"):
        await collect(openai_llm(url, idle_timeout=0.3).stream(ask("Count to five.")))


async def test_closing_the_stream_closes_the_upstream_connection(
    upstream: Any, openai_llm: Any
) -> None:
    state, url = upstream
    state.speed = 1.0  # recorded timing: the answer takes seconds to stream
    stream = openai_llm(url).stream(ask("Tell me about the voicechat demo."))
    async with contextlib.aclosing(stream):
        first = await anext(stream)
    assert first
    await eventually(lambda: state.disconnects == 1)
    assert state.completed == 0


async def test_a_full_turn_through_the_server_with_the_openai_backend(
    upstream: Any, voice_client: ClientFactory, openai_llm: Any
) -> None:
    _, url = upstream
    client, _ = await voice_client(llm=openai_llm(url))
    events = await client.turn("Count to five.")
    assert events[-1]["data"]["text"] == "One. Two. Three. Four. Five."
    assert events[-1]["data"]["sentences"] == 5


async def test_an_upstream_error_reaches_the_client_and_the_session_goes_on(
    upstream: Any, voice_client: ClientFactory, openai_llm: Any
) -> None:
    state, url = upstream
    client, _ = await voice_client(llm=openai_llm(url))
    state.fail_status = 401
    events = await client.turn("Count to five.")
    errors = [e for e in events if e["action"] == "error"]
    assert errors[0]["data"]["code"] == "llm_failed" and errors[0]["turn"] == "t1"
    assert events[-1]["data"]["sentences"] == 0
    state.fail_status = None
    assert (await client.turn("Count to five."))[-1]["data"]["sentences"] == 5
