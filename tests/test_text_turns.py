"""Text-only turns (`start.data.audio: false`): the answer streams as `text` and `sentence`
events and ends with `done`; nothing is synthesized and no audio frame is sent."""

from __future__ import annotations

from typing import Any

import pytest

from tests import conftest
from tests.conftest import ClientFactory, ScriptedLLM, TrackingTTS, audio_of
from voicechat.server.app import create_app
from voicechat.tts.tone import ToneTTS

SENTENCES = ["One is first. ", "Two comes next. ", "Three is last."]


async def test_a_text_only_turn_sends_text_and_sentences_and_no_audio_frame(
    voice_client: ClientFactory,
) -> None:
    tts = TrackingTTS(ToneTTS())
    client, _ = await voice_client(llm=ScriptedLLM(SENTENCES), tts=tts)
    events = await client.turn("go", audio=False, id="quiet")
    assert audio_of(events) == []
    assert tts.started == 0  # the TTS was never asked for anything
    assert "".join(e["data"] for e in events if e["action"] == "text") == "".join(SENTENCES)
    sentences = [e for e in events if e["action"] == "sentence"]
    assert [(e["index"], e["data"]) for e in sentences] == [
        (0, "One is first."),
        (1, "Two comes next."),
        (2, "Three is last."),
    ]
    done = events[-1]
    assert done["turn"] == "quiet"
    assert done["data"] == {"text": "".join(SENTENCES), "sentences": 3, "audio_ms": 0}


async def test_after_a_text_only_turn_the_next_turn_speaks(voice_client: ClientFactory) -> None:
    client, _ = await voice_client(llm=ScriptedLLM(SENTENCES))
    await client.turn("go", audio=False)
    events = await client.turn("go again")
    assert audio_of(events)
    assert events[-1]["data"]["audio_ms"] > 0


async def test_pause_holds_the_sentences_of_a_text_only_turn(voice_client: ClientFactory) -> None:
    llm = ScriptedLLM(SENTENCES, hold_after=1)
    client, _ = await voice_client(llm=llm)
    await client.start("go", audio=False)
    await client.until("sentence")  # the first one; the LLM now waits for `release`
    await client.send("pause")
    await client.until("paused")
    llm.release.set()
    held = await client.until("text", lambda e: e["data"] == SENTENCES[-1])
    assert [e for e in held if e["action"] == "sentence"] == []
    await client.send("resume")
    rest = await client.until("done")
    assert [e["index"] for e in rest if e["action"] == "sentence"] == [1, 2]


async def test_stopping_a_text_only_turn_reports_the_sentences_sent_as_heard(
    voice_client: ClientFactory,
) -> None:
    llm = ScriptedLLM(SENTENCES, hold_after=1)
    client, _ = await voice_client(llm=llm)
    await client.start("go", audio=False)
    await client.until("sentence")
    await client.send("stop")
    [*_, stopped] = await client.until("stopped")
    assert stopped["data"] == {"spoken": "One is first.", "heard": "One is first."}


@pytest.mark.parametrize("audio", ["no", 0, None])
async def test_audio_must_be_true_or_false(voice_client: ClientFactory, audio: object) -> None:
    client, _ = await voice_client(llm=ScriptedLLM(SENTENCES))
    await client.start("go", audio=audio)
    [*_, error] = await client.until("error")
    assert error["data"] == {"code": "bad_request", "message": '"data.audio" must be true or false'}


async def test_the_speech_route_refuses_a_text_only_request(aiohttp_client: Any) -> None:
    app = create_app(conftest.test_settings(), llm=ScriptedLLM(SENTENCES), tts=ToneTTS())
    http = await aiohttp_client(app)
    async with http.post("/v1/speak", json={"prompt": "go", "audio": False}) as response:
        assert response.status == 400
        body = await response.json()
    assert "for text only, use /ws" in body["error"]["message"]
