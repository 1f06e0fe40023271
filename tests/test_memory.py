"""Conversation memory: each session remembers what was asked and what was heard."""

from __future__ import annotations

from tests.conftest import ClientFactory, ScriptedLLM, TrackingTTS, VoiceClient, eventually
from voicechat.pipeline.history import History
from voicechat.tts.tone import ToneTTS

SENTENCES = ["One is first. ", "Two comes next. ", "Three is here. ", "Four is last."]
SPOKEN = "One is first. Two comes next. Three is here. Four is last."


def test_history_sends_the_system_prompt_then_the_exchanges_then_the_prompt() -> None:
    history = History("be brief", max_turns=5)
    history.record("Hi?", "Hello.")
    assert history.messages_for("And then?") == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "Hi?"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "And then?"},
    ]


def test_history_keeps_only_the_last_exchanges_and_none_with_nothing_heard() -> None:
    history = History("s", max_turns=2)
    for number in range(4):
        history.record(f"q{number}", f"a{number}")
    history.record("unheard", "  ")
    assert [m["content"] for m in history.messages_for("now")] == [
        "s",
        "q2",
        "a2",
        "q3",
        "a3",
        "now",
    ]
    nothing = History("s", max_turns=0)
    nothing.record("q", "a")
    assert len(nothing.messages_for("now")) == 2


async def test_the_next_turn_is_sent_the_first_exchange_with_what_was_spoken(
    voice_client: ClientFactory,
) -> None:
    llm = ScriptedLLM(["**One** is first. ", "Two comes next."])
    client, _ = await voice_client(llm=llm, system_prompt="Speak plainly.")
    await client.turn("Count.")
    await client.turn("Again.")
    assert llm.seen[1] == [
        {"role": "system", "content": "Speak plainly."},
        {"role": "user", "content": "Count."},
        # what the listener heard: the spoken chunks, markdown gone
        {"role": "assistant", "content": "One is first. Two comes next."},
        {"role": "user", "content": "Again."},
    ]


async def test_a_stopped_answer_is_remembered_only_as_far_as_it_was_heard(
    voice_client: ClientFactory,
) -> None:
    llm = ScriptedLLM(SENTENCES, hold_after=2)  # the LLM is still streaming when we stop
    client, _ = await voice_client(llm=llm, tts=TrackingTTS(ToneTTS()))
    await client.start("Count.")
    await client.until("audio")
    await client.send("stop")
    stopped = (await client.until("stopped"))[-1]
    heard = stopped["data"]["heard"]
    assert heard and heard != SPOKEN
    assert stopped["data"]["spoken"].startswith(heard)
    llm.hold_after = None
    await client.turn("Go on.")
    assert llm.seen[1][1:3] == [
        {"role": "user", "content": "Count."},
        {"role": "assistant", "content": heard},
    ]


async def test_the_listeners_played_reports_decide_what_is_remembered(
    voice_client: ClientFactory,
) -> None:
    llm = ScriptedLLM(SENTENCES, hold_after=3)
    client, _ = await voice_client(llm=llm, tts=ToneTTS(piece_ms=100))
    await client.start("Count.")
    sent = await client.until("audio", lambda e: e["sentence"] == 2)  # three sentences sent
    first_frame = next(e for e in sent if e["action"] == "audio")
    await client.ws.send_json({"action": "played", "turn": "t1", "seq": first_frame["seq"]})
    await client.send("stop")
    stopped = (await client.until("stopped"))[-1]
    assert stopped["data"]["spoken"] == "One is first. Two comes next. Three is here."
    assert stopped["data"]["heard"] == "One is first."  # the listener had heard 100 ms
    llm.hold_after = None
    await client.turn("Go on.")
    assert llm.seen[1][2] == {"role": "assistant", "content": "One is first."}


async def test_a_barge_in_remembers_what_was_heard_of_the_interrupted_answer(
    voice_client: ClientFactory,
) -> None:
    llm = ScriptedLLM(SENTENCES, hold_after=2)
    client, _ = await voice_client(llm=llm)
    await client.start("Count.")
    await client.until("audio")
    await client.start("Stop, what is two?")
    stopped = (await client.until("stopped"))[-1]
    assert llm.seen[1][2] == {"role": "assistant", "content": stopped["data"]["heard"]}
    assert llm.seen[1][3] == {"role": "user", "content": "Stop, what is two?"}


async def test_an_answer_stopped_before_any_audio_is_not_remembered(
    voice_client: ClientFactory,
) -> None:
    llm = ScriptedLLM(SENTENCES, hold_after=0)
    client, _ = await voice_client(llm=llm)
    await client.start("Count.")
    await eventually(lambda: llm.opened == 1)  # the LLM holds before its first delta
    await client.send("stop")
    assert (await client.until("stopped"))[-1]["data"]["spoken"] == ""
    llm.hold_after = None
    await client.turn("Again.")
    assert [m["role"] for m in llm.seen[1]] == ["system", "user"]


async def test_memory_is_capped_by_history_turns(voice_client: ClientFactory) -> None:
    llm = ScriptedLLM(["Yes."])
    client, _ = await voice_client(llm=llm, history_turns=2)
    for number in range(4):
        await client.turn(f"Question {number}?")
    assert [m["content"] for m in llm.seen[3] if m["role"] == "user"] == [
        "Question 1?",
        "Question 2?",
        "Question 3?",
    ]


async def test_each_session_has_its_own_memory(voice_client: ClientFactory) -> None:
    llm = ScriptedLLM(["Yes."])
    first, http = await voice_client(llm=llm)
    await first.turn("Mine?")
    second = VoiceClient(await http.ws_connect("/ws"))
    assert (await second.next_event())["action"] == "ready"
    await second.turn("Yours?")
    assert [m["content"] for m in llm.seen[1]][1:] == ["Yours?"]
