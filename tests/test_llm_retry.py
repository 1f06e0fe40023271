"""LLM failures through the real openai SDK against the loopback endpoint: retries before the
first token only, plain-words errors, and stopped streams that give their connection back."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx2
import pytest

from tests.conftest import SAMPLES, ClientFactory, eventually
from tests.upstream import Upstream
from voicechat.errors import LLMFailed
from voicechat.llm.base import ChatMessage
from voicechat.llm.openai import OpenAILLM
from voicechat.llm.replay import load_recordings

RECORDINGS = load_recordings(SAMPLES / "llm")
COUNTING = RECORDINGS["counting"].text()
MakeLLM = Callable[..., OpenAILLM]


def ask(prompt: str) -> list[ChatMessage]:
    return [{"role": "system", "content": "be brief"}, {"role": "user", "content": prompt}]


@pytest.fixture
async def make_llm(upstream: tuple[Upstream, str]) -> AsyncIterator[MakeLLM]:
    """``make_llm(**options)`` → an OpenAILLM on the loopback endpoint, closed after."""
    made: list[OpenAILLM] = []

    def make(**options: Any) -> OpenAILLM:
        options.setdefault("retry_backoff", 0.01)
        made.append(
            OpenAILLM(api_key="test-key", base_url=upstream[1], model="gpt-4o-mini", **options)
        )
        return made[-1]

    yield make
    for llm in made:
        await llm.aclose()


async def collect(llm: OpenAILLM, prompt: str = "Count to five.") -> list[str]:
    return [delta async for delta in llm.stream(ask(prompt))]


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_a_failure_before_the_first_token_is_retried_with_backoff(
    upstream: tuple[Upstream, str], make_llm: MakeLLM, status: int
) -> None:
    state, _ = upstream
    state.fail_status, state.fail_count = status, 2
    assert "".join(await collect(make_llm())) == COUNTING
    assert len(state.requests) == 3


@pytest.mark.parametrize("status", [401, 404])
async def test_a_bad_key_or_model_is_never_retried(
    upstream: tuple[Upstream, str], make_llm: MakeLLM, status: int
) -> None:
    state, _ = upstream
    state.fail_status = status
    with pytest.raises(LLMFailed):
        await collect(make_llm())
    assert len(state.requests) == 1


async def test_retries_give_up_after_the_configured_number(
    upstream: tuple[Upstream, str], make_llm: MakeLLM
) -> None:
    state, _ = upstream
    state.fail_status = 503
    with pytest.raises(LLMFailed, match="HTTP 503"):
        await collect(make_llm(retries=2))
    assert len(state.requests) == 3


async def test_a_long_retry_after_is_reported_instead_of_waited_for(
    upstream: tuple[Upstream, str], make_llm: MakeLLM
) -> None:
    state, _ = upstream
    state.fail_status, state.retry_after = 429, "120"
    with pytest.raises(LLMFailed, match="rate limit"):
        await collect(make_llm())
    assert len(state.requests) == 1


async def test_a_stream_that_breaks_before_its_first_token_is_retried(
    upstream: tuple[Upstream, str], make_llm: MakeLLM
) -> None:
    state, _ = upstream
    state.break_first = 1
    assert "".join(await collect(make_llm())) == COUNTING
    assert len(state.requests) == 2


async def test_a_stream_that_breaks_after_text_is_not_retried_and_nothing_repeats(
    upstream: tuple[Upstream, str], make_llm: MakeLLM
) -> None:
    state, _ = upstream
    received: list[str] = []
    with pytest.raises(LLMFailed):
        async for delta in make_llm().stream(ask("Break in the middle.")):
            received.append(delta)
    assert received and RECORDINGS["default"].text().startswith("".join(received))
    assert len(state.requests) == 1


async def test_a_retried_turn_reaches_the_client_whole_and_without_an_error(
    upstream: tuple[Upstream, str], make_llm: MakeLLM, voice_client: ClientFactory
) -> None:
    state, _ = upstream
    state.fail_status, state.fail_count = 503, 1
    client, _ = await voice_client(llm=make_llm())
    events = await client.turn("Count to five.")
    assert not [e for e in events if e["action"] == "error"]
    assert events[-1]["data"]["text"] == COUNTING


async def test_an_exhausted_llm_gives_llm_failed_and_the_session_goes_on(
    upstream: tuple[Upstream, str], make_llm: MakeLLM, voice_client: ClientFactory
) -> None:
    state, _ = upstream
    client, _ = await voice_client(llm=make_llm(retries=1))
    state.fail_status = 429
    events = await client.turn("Count to five.")
    error = next(e for e in events if e["action"] == "error")
    assert error["data"]["code"] == "llm_failed" and "rate limit" in error["data"]["message"]
    assert len(state.requests) == 2
    state.fail_status = None
    assert (await client.turn("Count to five."))[-1]["data"]["text"] == COUNTING


async def test_closed_streams_give_their_connections_back_to_a_pool_of_two(
    upstream: tuple[Upstream, str], make_llm: MakeLLM
) -> None:
    state, _ = upstream
    state.speed = 1.0
    pool = httpx2.AsyncClient(limits=httpx2.Limits(max_connections=2), timeout=5.0)
    llm = make_llm(http_client=pool)
    for _ in range(3):
        stream = llm.stream(ask("Tell me about the voicechat demo."))
        async with contextlib.aclosing(stream):
            assert await anext(stream)
    await eventually(lambda: state.disconnects == 3)
    assert "".join(await collect(llm)) == COUNTING
    await pool.aclose()


async def test_stopped_turns_give_their_connections_back_to_a_pool_of_two(
    upstream: tuple[Upstream, str], make_llm: MakeLLM, voice_client: ClientFactory
) -> None:
    state, _ = upstream
    state.speed = 1.0  # the recorded timing: the long answer takes seconds to stream
    pool = httpx2.AsyncClient(limits=httpx2.Limits(max_connections=2), timeout=5.0)
    client, _ = await voice_client(llm=make_llm(http_client=pool))
    for number in range(1, 4):
        await client.start("Tell me about the voicechat demo.")
        await client.until("text")
        await client.send("stop")
        await client.until("stopped")
        await eventually(lambda number=number: state.disconnects == number)  # type: ignore[misc]
    assert state.completed == 0
    events = await client.turn("Count to five.")  # would wait for a free connection if leaked
    assert events[-1]["data"]["text"] == COUNTING
    assert not [e for e in events if e["action"] == "error"]
    await pool.aclose()
