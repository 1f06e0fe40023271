"""The voice page with the server's access token and after a dropped connection, in a real
browser (see test_web_page.py): it passes `?token=` on, says clearly when it is refused, and
resumes a turn cut mid-answer so that it plays on as one stream."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncGenerator, Iterator, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.browser import (
    AUDIO_JS,
    EndlessReplayLLM,
    OpenPage,
    ServerThread,
    ask,
    frames_seconds,
    played_reports,
    state,
    until,
)
from tests.conftest import free_port
from voicechat.audio import duration_s
from voicechat.llm.base import ChatMessage

SAME = 1e-3  # seconds: the media clock and the frame headers agree to the microsecond
SECRET = "s3cr3t-Token"
COUNT = "Count to five."  # five one-word sentences, 1.0 s of tone
LONG = "Tell me about the voicechat demo."  # ~11 s; its LLM stream never ends

# What the held LLM says, in three parts: it waits before each of the last two.
PARTS = [
    ["Paris is the capital ", "of France. "],
    ["It sits on the Seine. "],
    ["It has been the capital ", "for most of its history, ", "with a short break."],
]
HOLD_FROM = 2  # the valve keeps audio frames from this seq on from the page


class HeldLLM:
    """Says PARTS[0]; says each next part only once its ``go`` event is set (on the server's
    loop): the turn is mid-answer, with audio sent, for as long as a test needs."""

    name = "held"

    def __init__(self) -> None:
        self.go = [asyncio.Event() for _ in PARTS[1:]]

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncGenerator[str, None]:
        for index, part in enumerate(PARTS):
            if index > 0:
                await self.go[index - 1].wait()
            for delta in part:
                yield delta

    async def aclose(self) -> None:
        return None


class Valve:
    """Routes the page's sockets through Playwright. On the first one, the server's audio
    frames from ``HOLD_FROM`` on (and whatever comes after them but text and sentences) never
    reach the page, as when a network dies with frames in flight; later sockets pass all."""

    def __init__(self) -> None:
        self.held: list[dict[str, Any]] = []
        self.sockets = 0

    def __call__(self, page_side: Any) -> None:
        server_side = page_side.connect_to_server()
        self.sockets += 1
        if self.sockets == 1:
            server_side.on_message(lambda raw: self._pass(page_side, raw))

    def _pass(self, page_side: Any, raw: str | bytes) -> None:
        message = json.loads(raw)
        cut = self.held or (message["action"] == "audio" and message["seq"] >= HOLD_FROM)
        if cut and message["action"] not in ("text", "sentence"):
            self.held.append(message)
        else:
            page_side.send(raw)


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[ServerThread]:
    """The test server; ``indirect`` parametrization passes settings (and ``held=True``)."""
    options = dict(getattr(request, "param", {}))
    llm = HeldLLM() if options.pop("held", False) else EndlessReplayLLM(endless=[LONG])
    server = ServerThread(free_port(), llm=llm, **options).start()
    yield server
    server.stop()


def visible_text(page: object) -> str:
    return str(page.evaluate("document.body.innerText"))  # type: ignore[attr-defined]


@pytest.mark.parametrize("server", [{"token": SECRET}], indirect=True)
def test_with_the_token_in_its_address_the_page_connects_and_never_shows_it(
    open_page: OpenPage,
) -> None:
    page, wire = open_page(f"?token={SECRET}")
    assert parse_qs(urlsplit(wire.urls[0]).query)["token"] == [SECRET]
    assert SECRET not in page.url  # taken out of the address bar (and so out of Referer)
    turn = ask(page, COUNT)
    until(page, "s.turn.state === 'done'")
    played = page.evaluate(AUDIO_JS)["played"]
    assert played == [[0, pytest.approx(frames_seconds(wire, turn), abs=SAME)]]
    assert SECRET not in visible_text(page)
    page.reload()  # the tab keeps the token for itself
    page.wait_for_selector('#status[data-state="connected"]')
    assert SECRET not in page.url and SECRET not in visible_text(page)


@pytest.mark.parametrize("server", [{"token": SECRET}], indirect=True)
def test_without_the_token_the_page_says_it_is_refused_and_backs_off(
    open_page: OpenPage,
) -> None:
    page, wire = open_page(connected=False)
    page.wait_for_selector('#status[data-reason="refused"]')
    status = page.text_content("#status") or ""
    assert status.startswith("cannot connect: refused") and "retrying in" in status
    until(page, "s.attempt >= 3 && s.reason === 'refused'")
    # Every attempt failed at the handshake (401): the attempt count was never reset, so each
    # wait is drawn from a doubling ceiling; no socket was opened but by a scheduled attempt.
    now = state(page)
    assert now["session"] is None and wire.received == []
    assert now["attempt"] <= wire.sockets + 1 and wire.sockets <= now["attempt"] + 1
    assert page.is_disabled("#start")


@pytest.mark.parametrize("player", ["mse", "webaudio"])
@pytest.mark.parametrize("server", [{"held": True}], indirect=True)
def test_a_turn_cut_mid_answer_resumes_and_plays_on_as_one_stream(
    open_page: OpenPage, server: ServerThread, player: str
) -> None:
    llm = server.llm
    assert isinstance(llm, HeldLLM)
    valve = Valve()
    page, wire = open_page(f"?player={player}", relay=valve)
    turn = ask(page, "Tell me about Paris.")
    until(page, f"s.turn.frames === {HOLD_FROM} && s.position > 0")
    server.call(llm.go[0].set)  # a sentence more: its text reaches the page, its audio not
    wire.wait_for("a frame the page did not get", lambda: valve.held)
    assert server.cut_connections() == 1  # no close frame: the server keeps the session
    until(page, "s.resumes === 1")
    server.call(llm.go[1].set)  # the turn goes on, on the new connection
    until(page, "s.turn.state === 'done'")

    readies = [m for m in wire.received if m["action"] == "ready"]
    assert [r["data"]["resumed"] for r in readies] == [False, True]
    assert readies[1]["data"]["session"] == readies[0]["data"]["session"]
    assert readies[1]["data"]["turn"] == {"id": turn, "paused": False}
    query = parse_qs(urlsplit(wire.urls[1]).query)
    assert query["resume"] == [readies[0]["data"]["resume"]]
    assert (query["turn"], query["seq"]) == ([turn], [str(HOLD_FROM - 1)])
    # The wire log is the server's side of the valve. The frames kept from the page came
    # again after the resume, as they were, then the rest: the page got each frame once.
    again = next(i for i, m in enumerate(wire.received) if m["action"] == "ready" and i > 0)
    frames = [(i, m) for i, m in enumerate(wire.received) if m.get("action") == "audio"]
    first = [m for i, m in frames if i < again]
    resent = [m for i, m in frames if i > again]
    held = [m for m in valve.held if m["action"] == "audio"]
    assert [m["seq"] for m in first] == list(range(HOLD_FROM)) + [m["seq"] for m in held]
    assert [m["seq"] for m in resent] == list(range(HOLD_FROM, HOLD_FROM + len(resent)))
    assert resent[: len(held)] == held
    heard = first[:HOLD_FROM] + resent
    now = state(page)
    assert (now["turn"]["frames"], now["turn"]["lastSeq"]) == (len(heard), heard[-1]["seq"])
    assert now["dropped"] == 0

    # One stream, buffered and played through without a gap or a repeat.
    seconds = duration_s(b"".join(base64.b64decode(m["data"]) for m in heard))
    assert wire.of_turn(turn, "done")[0]["data"]["audio_ms"] == round(seconds * 1000)
    if player == "mse":
        audio = page.evaluate(AUDIO_JS)
        assert audio["buffered"] == [[0, pytest.approx(seconds, abs=SAME)]]
        assert audio["played"] == [[0, pytest.approx(seconds, abs=SAME)]]
    else:  # every frame scheduled once, back to back on one clock, and played through
        assert now["player"]["kind"] == "webaudio" and now["player"]["decodeErrors"] == 0
        final = state(page)
        assert final["buffered"] == pytest.approx(seconds, abs=SAME)
        assert final["position"] == pytest.approx(seconds, abs=SAME)
    reports = played_reports(wire, turn)
    assert reports == sorted(set(reports)) and reports[-1] == heard[-1]["seq"]
    # The text and sentence that came after the last frame before the cut are not doubled.
    assert state(page)["turn"]["caption"] == "".join(sum(PARTS, []))
    classes = page.eval_on_selector_all(".turn .sentence", "els => els.map(e => e.className)")
    assert classes == ["sentence heard"] * 3


@pytest.mark.parametrize("server", [{"resume_window": 0.0}], indirect=True)
def test_a_turn_the_server_could_not_keep_is_cut_off_and_silenced(
    open_page: OpenPage, server: ServerThread
) -> None:
    page, wire = open_page()
    turn = ask(page, LONG)
    until(page, "s.position > 0.3 && s.buffered > s.position + 1")
    assert server.cut_connections() == 1
    until(page, "s.resumes === 0 && s.session !== null && s.turn.state === 'lost'")

    readies = [m for m in wire.received if m["action"] == "ready"]
    assert "resume" in parse_qs(urlsplit(wire.urls[1]).query)
    assert readies[1]["data"]["resumed"] is False
    assert readies[1]["data"]["session"] != readies[0]["data"]["session"]
    audio = page.evaluate(AUDIO_JS)
    assert audio["paused"] and audio["src"] is None and audio["buffered"] == []
    meta = page.text_content(f'[data-turn="{turn}"] .meta') or ""
    assert "cut off" in meta and "resuming" not in meta
    assert not page.is_disabled("#start") and page.is_disabled("#stop")
